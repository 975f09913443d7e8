"""Bad input and faults (issue 15): one test per case a new user hit.

Each case asserts exit code 2, a one-line ``qcascade: error:`` naming the file or key, and that
nothing outside the run directory changed. Nothing here trains a model: validation happens first.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from qcascade import pipeline, validate
from qcascade.cli import main as qcascade_main
from qcascade.cli import train_entry
from qcascade.config import load_config
from qcascade.data.matwrite import write_mat
from qcascade.errors import ConfigError
from qcascade.hls.identifiers import validate_hls_config
from qcascade.io_utils import atomic_write_text
from qcascade.rundir import MARKER, Step, prepare_run_dir
from qcascade.runlock import LOCK_NAME, RunLock

PAYLOADS = ['x"; exec touch PWNED; set _x "', "a;b", "a[exec ls]", "a$HOME", "xcu250\nexec touch PWNED",
            "a{b}", "a'b", "a`id`"]


def tree(root: Path, skip: Path | None = None) -> dict:
    """Every file (and symlink) under ``root`` outside ``skip``, with its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if skip is not None and (p == skip or skip in p.parents):
            continue
        if p.is_symlink():
            out[str(p)] = ("link", os.readlink(p))
        elif p.is_file():
            out[str(p)] = p.read_bytes()
    return out


def error_line(capsys) -> str:
    """The one-line error; fails if the message spans lines or is missing."""
    err = capsys.readouterr().err.strip()
    assert "qcascade: error:" in err, err
    msg = err[err.index("qcascade: error:"):]
    assert "\n" not in msg, f"multi-line error: {msg!r}"
    return msg


@pytest.fixture
def user_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("precious")
    (folder / "data").mkdir()
    (folder / "data" / "results.csv").write_text("1,2,3")
    return folder


# ---------------------------------------------------------------- --force deletes only runs
def test_force_refuses_a_folder_of_user_files(tmp_path, user_folder, capsys):
    before = tree(tmp_path)
    assert train_entry(["--out", str(user_folder), "--force"]) == 2
    msg = error_line(capsys)
    assert str(user_folder) in msg and "not a qcascade run directory" in msg
    assert tree(tmp_path) == before


def test_force_refuses_the_current_directory(tmp_path, user_folder, capsys, monkeypatch):
    monkeypatch.chdir(user_folder)
    before = tree(tmp_path)
    assert train_entry(["--out", ".", "--force"]) == 2
    assert "working directory" in error_line(capsys)
    assert tree(tmp_path) == before
    # Even a run directory that is the working directory (or holds it) is not deleted.
    (user_folder / MARKER).write_text("run\n")
    before = tree(tmp_path)
    assert train_entry(["--out", ".", "--force"]) == 2
    assert train_entry(["--out", str(tmp_path), "--force"]) == 2
    assert tree(tmp_path) == before


def test_force_refuses_a_symlink(tmp_path, capsys):
    real = tmp_path / "real_run"
    prepare_run_dir(real, load_config(overrides={"train": {"epochs_stage1": 1}}), force=False)
    (real / "keep.txt").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(real)
    before = tree(tmp_path)
    assert train_entry(["--out", str(link), "--force"]) == 2
    assert "symlink" in error_line(capsys)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("flags", [["--from-step", "step_trian_simple"], ["--until-step", "nope"],
                                   ["--patient", "ID9"]])
def test_force_with_a_later_mistake_deletes_nothing(tmp_path, capsys, flags):
    run = tmp_path / "run"
    prepare_run_dir(run, load_config(overrides={"train": {"epochs_stage1": 1}}), force=False)
    (run / "ID1").mkdir()
    (run / "ID1" / "steps.json").write_text('{"completed": [], "timings_s": {}}')
    before = tree(tmp_path)
    assert train_entry(["--out", str(run), "--force", *flags]) == 2
    msg = error_line(capsys)
    assert flags[1] in msg
    assert tree(tmp_path) == before


def test_force_replaces_a_marked_run_but_keeps_the_lock_file(tmp_path):
    run = tmp_path / "run"
    prepare_run_dir(run, load_config(overrides={"train": {"epochs_stage1": 1}}), force=False)
    (run / "old").mkdir()
    (run / "old" / "x.npz").write_bytes(b"x")
    assert prepare_run_dir(run, load_config(), force=True) is False
    assert not (run / "old").exists() and (run / MARKER).is_file() and (run / "config.hash").is_file()


# ---------------------------------------------------------------- validation before any write
@pytest.mark.parametrize("flags, needle", [(["--patient", "ID9"], "ID9"), (["--from-step", "step_x"], "step_x"),
                                           (["--until-step", "step_y"], "step_y")])
def test_patient_and_step_typos_write_nothing(tmp_path, capsys, flags, needle):
    out = tmp_path / "run"
    assert train_entry(["--out", str(out), "--quick", *flags]) == 2
    assert needle in error_line(capsys)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_quick_does_not_hide_a_bad_user_value(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("train:\n  epochs_stage2: -1\n")
    before = tree(tmp_path)
    assert train_entry(["--config", str(cfg), "--quick", "--out", str(tmp_path / "run")]) == 2
    msg = error_line(capsys)
    assert "train.epochs_stage2" in msg and "cfg.yaml" in msg
    assert tree(tmp_path) == before and not (tmp_path / "run").exists()


def test_duplicate_yaml_key_is_an_error(tmp_path, capsys):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("train:\n  tau: 0.5\n  epochs_stage1: 2\n  tau: 0.7\n")
    assert train_entry(["--config", str(cfg), "--out", str(tmp_path / "run")]) == 2
    msg = error_line(capsys)
    assert "cfg.yaml" in msg and "duplicate key 'tau'" in msg and "line 4" in msg
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("yaml_text, key", [
    ("quant:\n  dwsep_bits: 3\n", "quant.dwsep_bits"),
    ("quant:\n  bias_bits: 5\n", "quant.bias_bits"),
    ("data:\n  n_times: 100000\n", "data.n_times"),
    ("data:\n  n_times: 500\n", "data.n_times"),
    ("data:\n  n_chans: 100000\n", "data.n_chans"),
    ("train:\n  batch_size: 1000000\n", "train.batch_size"),
    ("hls:\n  part: \"xcu250\\nexec touch PWNED\"\n", "hls.part"),
    ("data:\n  nan_policy: ignore\n", "data.nan_policy"),
])
def test_sizes_and_bit_widths_are_checked_at_config_time(tmp_path, capsys, yaml_text, key):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml_text)
    assert train_entry(["--config", str(cfg), "--out", str(tmp_path / "run")]) == 2
    msg = error_line(capsys)
    assert key in msg and "cfg.yaml" in msg
    assert not (tmp_path / "run").exists()


def test_memory_estimate_refuses_absurd_windows(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(validate, "physical_memory_bytes", lambda: 8 * 2**30)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("data:\n  n_times: 8192\n")
    assert train_entry(["--config", str(cfg), "--out", str(tmp_path / "run")]) == 2
    msg = error_line(capsys)
    assert "data.n_times=8192" in msg and "GiB" in msg
    assert not (tmp_path / "run").exists()
    est = validate.estimate_memory_bytes(load_config(), None)
    assert est["processes"] == 3  # two fold workers + the main process
    validate.check_memory(load_config(), None, available=8 * 2**30)  # the default run fits an 8 GiB machine
    fine = validate.estimate_memory_bytes(load_config(None, {"data": {"train_ictal_stride_s": 1.0}}), None)
    assert est["windows"] > fine["windows"]  # the sub-stride ictal training windows are counted


# ---------------------------------------------------------------- --out OS errors
def test_out_under_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    before = tree(tmp_path)
    assert train_entry(["--out", str(tmp_path / "afile" / "run")]) == 2
    assert "afile" in error_line(capsys)
    assert tree(tmp_path) == before


def test_read_only_out(tmp_path, capsys, monkeypatch):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if os.geteuid() == 0:  # root writes anywhere: stand in for the kernel's answer
        monkeypatch.setattr(os, "access", lambda *a, **k: False)
    try:
        assert train_entry(["--out", str(parent / "run")]) == 2
        assert "not writable" in error_line(capsys)
        assert not (parent / "run").exists()
    finally:
        parent.chmod(0o755)


@pytest.mark.parametrize("char", ['"', ";", "[", "$", "\n", "`", "\\", "{"])
def test_run_path_that_generated_scripts_cannot_carry(tmp_path, capsys, char):
    out = tmp_path / f"run{char}x"
    assert train_entry(["--out", str(out)]) == 2
    assert "--out" in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_result_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    os.umask(old)
    path = atomic_write_text(tmp_path / "report.md", "x")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~old


# ---------------------------------------------------------------- locking
def test_second_run_into_a_busy_run_dir_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    prepare_run_dir(run, load_config(), force=False)
    before = tree(tmp_path, skip=run / LOCK_NAME)
    with RunLock(run):
        assert train_entry(["--out", str(run)]) == 2
        msg = error_line(capsys)
    assert f"pid {os.getpid()}" in msg and "in use" in msg
    assert tree(tmp_path, skip=run / LOCK_NAME) == before


def test_stale_lock_of_a_dead_run_is_taken_over(tmp_path, caplog):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 999999, "host": "h", "started": "then"}))
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert "pid 999999" in caplog.text and "no longer running" in caplog.text


# ---------------------------------------------------------------- damaged checkpoints
def _fake_steps(calls):
    def write(ctx):
        calls.append("step_write")
        ck = ctx.path("checkpoints", "stage1", "simple.npz")
        np.savez(ck, np.arange(1000.0))
        ctx.path("checkpoints", "stage1", "state.json").write_text(json.dumps({"epoch": 3}))

    def read(ctx):
        calls.append("step_read")
        with np.load(ctx.unit_dir / "checkpoints" / "stage1" / "simple.npz") as z:
            assert z["arr_0"].sum() > 0
        json.loads((ctx.unit_dir / "checkpoints" / "stage1" / "state.json").read_text())

    return [Step("step_write", write), Step("step_read", read)]


@pytest.mark.parametrize("damaged", ["simple.npz", "state.json"])
def test_damaged_checkpoint_is_named_and_a_rerun_recomputes(tmp_path, capsys, monkeypatch, damaged):
    calls = []
    monkeypatch.setattr(pipeline, "STEPS", _fake_steps(calls))
    monkeypatch.setattr(pipeline, "_discover", lambda cfg, run_dir: {"ID1": []})
    monkeypatch.setattr("qcascade.report.write_summary", lambda run_dir, units: {})
    run = tmp_path / "run"
    assert train_entry(["--out", str(run)]) == 0
    assert calls == ["step_write", "step_read"]
    path = run / "ID1" / "checkpoints" / "stage1" / damaged
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    before = tree(tmp_path, skip=run)
    calls.clear()
    assert train_entry(["--out", str(run), "--from-step", "step_read"]) == 2
    msg = error_line(capsys)
    assert str(path) in msg and "step_write" in msg and "rerun" in msg
    assert calls == []  # found before step_read ran: the file changed since step_write wrote it
    assert json.loads((run / "ID1" / "steps.json").read_text())["completed"] == []
    assert tree(tmp_path, skip=run) == before
    assert train_entry(["--out", str(run)]) == 0  # a plain rerun recomputes from step_write
    assert calls == ["step_write", "step_read"]


def test_damage_found_while_a_step_reads_names_the_writer(tmp_path, monkeypatch):
    """A file damaged without a size/time change is found when the reading step fails."""
    from qcascade.errors import RunDirError
    from qcascade.rundir import run_steps

    calls = []
    steps = _fake_steps(calls)
    ctx = SimpleNamespace(unit_dir=tmp_path, path=lambda *p: _mk(tmp_path.joinpath(*p)))
    run_steps(steps, ctx, tmp_path)
    path = tmp_path / "checkpoints" / "stage1" / "simple.npz"
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # corrupt the stored array, same size
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(RunDirError, match=r"simple\.npz: damaged .*step step_read failed reading it.*step_write"):
        run_steps(steps, ctx, tmp_path, from_step="step_read")


def _mk(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def test_damaged_step_log_is_set_aside(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(pipeline, "STEPS", _fake_steps(calls))
    monkeypatch.setattr(pipeline, "_discover", lambda cfg, run_dir: {"ID1": []})
    monkeypatch.setattr("qcascade.report.write_summary", lambda run_dir, units: {})
    run = tmp_path / "run"
    assert train_entry(["--out", str(run)]) == 0
    (run / "ID1" / "steps.json").write_text('{"completed": ["step_wr')
    assert train_entry(["--out", str(run)]) == 2
    msg = error_line(capsys)
    assert "steps.json" in msg and "damaged" in msg
    calls.clear()
    assert train_entry(["--out", str(run)]) == 0
    assert calls == ["step_write", "step_read"]


# ---------------------------------------------------------------- implausible data
def test_info_file_fs_that_does_not_fit_the_hour_files(tmp_path, capsys, monkeypatch):
    seg, fs_true = 20, 512
    data = tmp_path / "data"
    cfg = tmp_path / "lt.yaml"
    cfg.write_text(f"data: {{dataset: swec-long, data_dir: {data}, long_term: {{segment_s: {seg}}}}}\n")
    rng = np.random.default_rng(0)
    for h in (1, 2):
        write_mat(data / "ID01" / f"ID01_{h}h.mat", {"EEG": rng.normal(size=(4, seg * fs_true))}, "5")
    info = data / "ID01" / "ID01_info.mat"
    write_mat(info, {"fs": 1024, "seizure_begin": np.array([5.0]), "seizure_end": np.array([12.0])}, "5")
    before = tree(tmp_path)
    out = tmp_path / "run"
    assert train_entry(["--config", str(cfg), "--out", str(out)]) == 2
    msg = error_line(capsys)
    assert str(info) in msg and "fs = 1024" in msg and "512 Hz" in msg
    assert tree(tmp_path) == before and not out.exists()


def test_nan_in_data_names_the_config_key(tmp_path, capsys):
    data, fs = tmp_path / "data", 512
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        eeg = rng.normal(size=(370 * fs, 4))
        if k == 1:
            eeg[1000, 2] = np.nan
        write_mat(data / "ID1" / f"Sz{k}.mat", {"EEG": eeg}, "5")
    out = tmp_path / "run"
    before = tree(tmp_path, skip=out)
    rc = train_entry(["--dataset", "swec-short", "--data-dir", str(data), "--out", str(out),
                      "--until-step", "step_prepare_data"])
    assert rc == 2
    msg = error_line(capsys)
    assert "Sz1.mat" in msg and "data.nan_policy: zero" in msg
    assert tree(tmp_path, skip=out) == before
    cfg = load_config(overrides={"data": {"nan_policy": "zero"}})
    assert cfg.data.nan_policy == "zero"


# ---------------------------------------------------------------- nothing injected into TCL / C++
HLS_FIELDS = [("Part",), ("ClockPeriod",), ("ClockUncertainty",), ("IOType",), ("ProjectName",), ("Namespace",),
              ("Model", "Strategy"), ("Model", "Precision"), ("LayerName", "logits", "Precision", "result"),
              ("LayerName", "logits", "Implementation"), ("LayerName", "logits", "SomeNewKey")]


@pytest.mark.parametrize("field", HLS_FIELDS, ids=lambda f: ".".join(f))
@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_hls_config_field_refuses_injected_text(field, payload):
    cfg: dict = {"Part": "xcu250-figd2104-2L-e", "ClockPeriod": 5.0, "IOType": "io_stream",
                 "Model": {"ReuseFactor": 1, "Strategy": "Latency"}, "LayerName": {"logits": {}}}
    validate_hls_config(cfg, "ok.yaml")  # the untouched config passes
    node = cfg
    for key in field[:-1]:
        node = node.setdefault(key, {})
    node[field[-1]] = payload
    with pytest.raises(ConfigError, match=r"bad\.yaml: .*" + field[-1]):
        validate_hls_config(cfg, "bad.yaml")


def test_hls_config_keys_refuse_injected_text():
    for bad in PAYLOADS:
        with pytest.raises(ConfigError):
            validate_hls_config({"LayerName": {bad: {"ReuseFactor": 1}}}, "bad.yaml")
        with pytest.raises(ConfigError):
            validate_hls_config({"LayerName": {"logits": {"Precision": {bad: "fixed<16,6>"}}}}, "bad.yaml")


def test_hand_edited_hls_config_is_refused_by_convert(tmp_path, capsys, monkeypatch):
    """The issue's case: Part set to TCL in a run's editable hls/simple_config.yaml."""
    from qcascade import steps_hw

    run = tmp_path / "run"
    prepare_run_dir(run, load_config(), force=False)
    unit = run / "ID1"
    (unit / "hls").mkdir(parents=True)
    (unit / "steps.json").write_text('{"completed": ["step_prepare_data"], "timings_s": {}}')
    edited = unit / "hls" / "simple_config.yaml"
    edited.write_text("Part: 'x\"; exec touch PWNED; set _x \"'\nClockPeriod: 5.0\nIOType: io_stream\n"
                      "ProjectName: qc_simple\nNamespace: qc_simple_ns\nHLSConfig: {Model: {ReuseFactor: 1}}\n")
    monkeypatch.setattr(pipeline, "_discover", lambda cfg, run_dir: {"ID1": []})
    monkeypatch.setattr(steps_hw, "deployed_models", lambda ctx: (None, None))
    monkeypatch.setattr(steps_hw, "deployment", lambda ctx: SimpleNamespace(selected_electrode=0))
    monkeypatch.setattr(steps_hw, "windows", lambda ctx: {"train": SimpleNamespace(X=np.zeros((4, 512, 128)))})
    monkeypatch.setattr(steps_hw, "_model_hash", lambda ctx: "0" * 16)
    (unit / "hls" / "simple").mkdir()
    (unit / "hls" / "simple" / "project.tcl").write_text("set part \"xcu250-figd2104-2L-e\"\n")
    before = tree(tmp_path)
    assert qcascade_main(["convert", "--run", str(run)]) == 2
    msg = error_line(capsys)
    assert str(edited) in msg and "Part" in msg
    # Refused before the previous project was deleted, and nothing was written anywhere.
    assert tree(tmp_path) == before


@pytest.mark.parametrize("payload", PAYLOADS)
def test_toplevel_and_flow_script_fields_refuse_injected_text(tmp_path, payload):
    from qcascade.hls import synth
    from qcascade.hls import toplevel as tl
    from qcascade.hls.identifiers import check_identifier, check_part, check_precision, check_token

    for check in (check_identifier, check_part, check_token, check_precision):
        with pytest.raises(ConfigError):
            check("field", payload)
    for field in ("simple_project", "complex_namespace", "config_hash"):
        kwargs = dict(simple_prj=tmp_path, simple_project="qc_simple", simple_namespace="qc_simple_ns",
                      complex_prj=tmp_path, complex_project="qc_complex", complex_namespace="qc_complex_ns",
                      electrode=0, tau=0.5, n_times=512, n_chans=4, config_hash="abc123")
        kwargs[field] = payload
        with pytest.raises(ConfigError, match=field):
            tl.generate_toplevel(tmp_path / "top", **kwargs)
    manifest = {"top": "cascade_top", "config_hash": "abc", "part": "xcu250-figd2104-2L-e", "clock_period": 5.0,
                "clock_uncertainty": "12.5%", "designs": {"simple": "models/qc_simple",
                                                          "complex": "models/qc_complex", "cascade": "."},
                **{r: {"project": f"qc_{r}", "copy_dir": f"models/qc_{r}"} for r in ("simple", "complex")}}
    for key in ("part", "clock_uncertainty", "config_hash", "clock_period"):
        bad = dict(manifest, **{key: payload})
        with pytest.raises(ConfigError):
            synth.write_flow_scripts(tmp_path / "flow", bad)
    assert not list(tmp_path.rglob("design.tcl"))


def test_gxx_commands_carry_no_run_path(tmp_path):
    from qcascade.hls.csim import csim_commands

    out = tmp_path / "we ird"
    manifest = {r: {"project": f"qc_{r}", "copy_dir": f"models/qc_{r}"} for r in ("simple", "complex")}
    args = [a for group in csim_commands(out, manifest, "g++") for _, cmd in group for a in cmd]
    assert not any(str(tmp_path) in a for a in args)
    assert '-DWEIGHTS_DIR="models/qc_simple/firmware/weights"' in args
    manifest["simple"]["project"] = 'qc"; system("id'
    with pytest.raises(ConfigError):
        csim_commands(out, manifest, "g++")


def test_damaged_config_hash_is_rebuilt_from_config_yaml(tmp_path, caplog):
    run = tmp_path / "run"
    cfg = load_config()
    prepare_run_dir(run, cfg, force=False)
    good = (run / "config.hash").read_text()
    (run / "config.hash").write_bytes(b"\x00\xff")
    assert prepare_run_dir(run, cfg, force=False) is True  # resumed, not "a different config"
    assert (run / "config.hash").read_text() == good and "config.hash: damaged" in caplog.text


def test_a_run_made_before_a_key_existed_keeps_the_behaviour_it_was_made_with(tmp_path):
    """A saved config.yaml without ``train.gate_sentinel_interictal_only`` is a run from before the
    key (the sentinel on every window): it must not pass for a run at today's default (true)."""
    import yaml

    from qcascade.errors import RunDirError

    run = tmp_path / "run"
    old = load_config(overrides={"train": {"gate_sentinel_interictal_only": False}})
    prepare_run_dir(run, old, force=False)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["train"]["gate_sentinel_interictal_only"]  # as written before the key existed
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    (run / "config.hash").write_text("000000000000\n")  # and the hash no help
    with pytest.raises(RunDirError, match="different config"):
        prepare_run_dir(run, load_config(), force=False)
    assert prepare_run_dir(run, old, force=False) is True


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("section, key, wrap", [("hls", "part", False), ("data", "patients", True),
                                                ("hls", "strategy", False), ("hls", "clock_period_ns", False)])
def test_run_config_strings_refuse_injected_text(tmp_path, capsys, payload, section, key, wrap):
    cfg = tmp_path / "cfg.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump({section: {key: [payload] if wrap else payload}}))
    assert train_entry(["--config", str(cfg), "--out", str(tmp_path / "run")]) == 2
    assert f"{section}.{key}" in error_line(capsys)
    assert not (tmp_path / "run").exists()
