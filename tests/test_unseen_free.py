"""``train.gate_unseen_free_simple: choose``: the choice between the cascade's simple model and one
trained without the seizures its electrode does not see, and a tiny run that deploys the latter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from qcascade.config import load_config
from qcascade.errors import ConfigError
from qcascade.gate import cascade_decide
from qcascade.gate_args import deployed_gate
from qcascade.report_settings import unseen_free_line
from qcascade.simple_unseen_free import choose_unseen_free, gate_row

ROOT = Path(__file__).resolve().parents[1]


def _row(hidden=0, meets=True, macs=100.0, f1=0.9):
    return {"tau": 0.0, "f1": f1, "routing_rate": 0.1, "macs_per_window": macs, "meets_margin": meets,
            "hidden_val": hidden}


def test_the_unseen_free_model_is_chosen_only_when_it_hides_no_more_and_costs_less():
    assert choose_unseen_free(_row(macs=200), _row(macs=100))["chosen"] == "unseen_free"
    assert choose_unseen_free(_row(macs=200), _row(macs=100, hidden=1))["chosen"] == "own"  # hiding outranks cost
    assert choose_unseen_free(_row(hidden=1, macs=100), _row(macs=900))["chosen"] == "unseen_free"
    assert choose_unseen_free(_row(macs=200), _row(macs=100, meets=False))["chosen"] == "own"  # the margin next
    assert choose_unseen_free(_row(macs=100, f1=0.8), _row(macs=100, f1=0.9))["chosen"] == "unseen_free"
    tie = choose_unseen_free(_row(), _row())
    assert tie["chosen"] == "own" and set(tie["candidates"]) == {"own", "unseen_free"}


def test_gate_row_counts_the_deployed_gates_validation_cost_and_hidden_seizures():
    """A validation recording with two seizures: the simple model sees the first only. At tau 0 the
    gate routes the changes of its decision, so the second seizure is hidden unless a probe finds it."""
    n = 200
    t = np.arange(n)
    first, second = (t >= 20) & (t < 40), (t >= 120) & (t < 150)
    y = (first | second).astype(int)
    zs = np.stack([np.zeros(n), np.where(first, 4.0, -4.0)], 1)
    zc = np.stack([np.zeros(n), np.where(y == 1, 3.0, -3.0)], 1)
    va = SimpleNamespace(y=y, record_ids=np.array(["r"] * n), start_s=np.arange(float(n)))
    kw = dict(rule="confirm_changes", record_ids=va.record_ids, start_s=va.start_s)
    for probe, hidden in ((0, 1), (8, 0)):
        g = {"tau": 0.0, "sweep": [{"tau": 0.0, "meets_margin": probe > 0}], "deployed_kw": {**kw, "probe_every": probe}}
        row = gate_row(va, zs, zc, g, 1000, 50000)
        routed = cascade_decide(zs, zc, 0.0, probe_every=probe, **kw)["routed"]
        assert row["hidden_val"] == hidden and row["meets_margin"] == (probe > 0)
        assert row["routing_rate"] == pytest.approx(routed.mean())
        assert row["macs_per_window"] == pytest.approx(1000 + routed.mean() * 50000)


def test_the_setting_is_checked(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train: {gate_unseen_free_simple: always}\n")
    with pytest.raises(ConfigError, match="gate_unseen_free_simple"):
        load_config(p)
    p.write_text("train: {gate_unseen_free_simple: 'off'}\n")
    assert load_config(p).train.gate_unseen_free_simple == "off"


def test_report_line_names_each_fold_and_its_cost():
    c = {"chosen": "unseen_free", "candidates": {"own": _row(macs=900.0), "unseen_free": _row(macs=300.0)}}
    m = {"folds": [{"fold": 0, "unseen_free_simple": c}, {"fold": 1, "unseen_free_simple": None}]}
    line = unseen_free_line(m)
    assert "deployed in 1 of 1 such fold(s)" in line and "fold 0: unseen_free (900 -> 300)" in line
    assert unseen_free_line({"folds": [{"fold": 0}]}) == ""


# ----------------------------------------------------------------------------- a tiny run
# With gate_unseen_ratio 1 the tiny patient's second training seizure counts as unseen (its simple
# model calls 0.75 of its windows ictal, the complex model all). Both simple models then route the
# same validation windows, and ties go to the cascade's own: the wrapper makes the choice deploy the
# unseen-free one so that the deployment of the chosen model is what is checked.
TINY = {"data": {"synthetic": {"n_patients": 1, "n_seizures": 3}}, "model": {"train_candidates": False},
        "train": {"epochs_stage1": 1, "epochs_stage2": 1, "epochs_stage3": 1, "folds": "first",
                  "gate_unseen_ratio": 1.0},
        "hls": {"enabled": False}}
FORCE = """
import sys
from qcascade import simple_unseen_free as suf
from qcascade.cli import train_entry
real = suf.choose_unseen_free
suf.choose_unseen_free = lambda own, free: {**real(own, free), "chosen": "unseen_free"}
sys.exit(train_entry(sys.argv[1:]))
"""


def _cli(args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", FORCE, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stderr


@pytest.fixture(scope="module")
def forced_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unseen_free")
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    log = _cli(["--config", str(tmp / "tiny.yaml"), "--out", str(tmp / "run")], tmp)
    return tmp, log


def test_a_fold_that_chooses_the_unseen_free_model_deploys_it(forced_run):
    from qcascade.artifacts import Deployment, ValidationScores, WindowScores
    from qcascade.models import load_model

    tmp, log = forced_run
    unit = tmp / "run" / "ID1"
    dep = Deployment.load(unit)
    choice = dep.choices["unseen_free_simple"]
    record = json.loads((unit / "checkpoints" / "simple_unseen_free" / "record.json").read_text())
    assert choice["chosen"] == "unseen_free" and choice["left_out"] == record["left_out"] == ["ID1_Sz2"]
    assert record["ictal_windows_left_out"] > 0 and "trained without ['ID1_Sz2']" in log
    free = choice["candidates"]["unseen_free"]
    assert dep.tau == free["tau"]
    # the deployed simple model is the unseen-free one: its weights give the stored validation logits,
    # and the cascade's own (stage 3) do not
    from qcascade.cohort import discover_cohort
    from qcascade.folds import UnitContext
    from qcascade.models.folding import fold_batchnorm
    from qcascade.steps_data import windows
    from qcascade.steps_fit import load_weights, model_factory

    cfg = load_config(tmp / "run" / "config.yaml")
    ctx = UnitContext(cfg, tmp / "run", "ID1", discover_cohort(cfg, tmp / "run")["ID1"])
    x = windows(ctx)["val"].X[:, :, dep.selected_electrode:dep.selected_electrode + 1]
    stored = ValidationScores.load(unit).simple

    def folded_logits(path):
        model = model_factory(ctx, "simple_A")()
        load_weights(model, path)
        return fold_batchnorm(model, cfg.quant).predict(x, verbose=0)

    np.testing.assert_allclose(folded_logits(unit / "checkpoints" / "simple_unseen_free" / "simple.npz"), stored,
                               atol=1e-5)
    assert not np.allclose(folded_logits(unit / "checkpoints" / "stage3" / "simple.npz"), stored, atol=1e-3)
    np.testing.assert_allclose(load_model(unit / dep.simple_path).predict(x, verbose=0), stored, atol=1e-5)
    ws = WindowScores.load(unit)
    dt = cascade_decide(ws.simple, ws.complex, dep.tau, **deployed_gate(dep, ws, cfg.quant, sentinel_up=ws.sentinel))
    assert np.array_equal(dt["pred"], ws.pred) and np.array_equal(dt["routed"], ws.routed)
    m = json.loads((unit / "metrics.json").read_text())
    assert (m["folds"][0]["unseen_free_simple"] if m.get("folds") else m["choices"]["unseen_free_simple"])["chosen"] \
        == "unseen_free"
    assert "deployed in 1 of 1 such fold(s)" in (unit / "report.md").read_text()


def test_a_resumed_calibration_reuses_the_unseen_free_model(forced_run):
    tmp, _ = forced_run
    unit = tmp / "run" / "ID1"
    before = json.loads((unit / "deploy" / "deploy.json").read_text())
    log = _cli(["--config", str(tmp / "run" / "config.yaml"), "--out", str(tmp / "run"), "--from-step",
                "step_calibrate", "--until-step", "step_calibrate"], tmp)
    assert "trained without" not in log and "choose -> unseen_free" in log
    after = json.loads((unit / "deploy" / "deploy.json").read_text())
    assert after["choices"]["unseen_free_simple"] == before["choices"]["unseen_free_simple"]
    assert after["tau"] == before["tau"]
