"""Command-line behaviour a user sees before any heavy work starts."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qcascade.cli import main as qcascade_main
from qcascade.cli import train_entry
from qcascade.pipeline import STEPS

ROOT = Path(__file__).resolve().parents[1]


def test_list_steps_names_every_step(capsys):
    assert train_entry(["--list-steps"]) == 0
    out = capsys.readouterr().out
    for step in STEPS:
        assert step.name in out


@pytest.mark.parametrize("yaml_text, needle", [
    ("train:\n  tau: 1.2\n", "train.tau"),
    ("train:\n  epochs_stage2: -3\n", "train.epochs_stage2"),
    ("trainning:\n  tau: 0.5\n", "trainning"),
])
def test_bad_config_fails_before_any_work(tmp_path, capsys, yaml_text, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    out = tmp_path / "run"
    assert train_entry(["--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "bad.yaml" in err
    assert not out.exists()


def test_missing_data_dir_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    rc = train_entry(["--dataset", "swec-short", "--data-dir", str(tmp_path / "nope"), "--out", str(out)])
    assert rc == 2
    assert "nope" in capsys.readouterr().err


def test_existing_foreign_folder_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert train_entry(["--out", str(out), "--until-step", "step_prepare_data"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "thesis.tex").read_text() == "precious"


def test_report_on_handmade_hls_folder_prints_schema(capsys):
    folder = ROOT / "tests" / "data" / "hls_reports" / "vitis_ultrascale"
    assert qcascade_main(["report", "--hls-dir", str(folder), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep) >= {"csynth", "vsynth", "cosim", "csim"}
    assert isinstance(rep["csynth"]["latency_worst"], int)


def test_synth_on_a_run_without_top_level_says_which_step_is_missing(tmp_path, capsys):
    # (missing vendor tools with a generated top level: tests/test_synth.py)
    rc = qcascade_main(["synth", "--run", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cascade_manifest.json" in err and "csim" in err


def test_console_script_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "qcascade.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for sub in ("analyze", "train", "convert", "csim", "synth", "report"):
        assert sub in proc.stdout


def test_every_subcommand_runs_with_numpy_base_pages():
    """The CLI's common guard turns NumPy's huge-page advice off before the subcommand runs
    (docs/evaluation.md, "NumPy's huge-page advice off")."""
    import os

    code = ("import argparse\n"
            "import numpy as np\n"
            "from qcascade.cli import _run_guarded\n"
            "_run_guarded(lambda a: print(int(np.core.multiarray._get_madvise_hugepage())) or 0, argparse.Namespace())\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "0"
