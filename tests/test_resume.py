"""A run killed during stage 2 continues from stage 2 when the same command is run again."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "data": {"synthetic": {"n_patients": 1, "n_seizures": 3}},
    "model": {"train_candidates": False},
    "train": {"epochs_stage1": 1, "epochs_stage2": 6, "epochs_stage3": 1},
    "hls": {"enabled": False},
}


def _cmd(cfg: Path, out: Path) -> list[str]:
    return [sys.executable, str(ROOT / "train_qkeras.py"), "--config", str(cfg), "--out", str(out),
            "--until-step", "step_finetune"]


def _completed(out: Path) -> list[str]:
    f = out / "ID1" / "steps.json"
    return json.loads(f.read_text())["completed"] if f.exists() else []


def test_kill_during_stage2_resumes_at_stage2(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(_cmd(cfg, out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 600
    while "step_select_electrode" not in _completed(out):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline, "stage 1 did not finish in time"
        time.sleep(0.5)
    time.sleep(3.0)  # inside stage 2 (six epochs of the complex model)
    assert "step_train_complex" not in _completed(out), "stage 2 finished before the kill: make it longer"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stage1_ckpt = out / "ID1" / "checkpoints" / "stage1" / "state.json"
    stamp = stage1_ckpt.stat().st_mtime_ns

    log_size = (out / "run.log").stat().st_size  # step lines go to the run's full log (appended)
    done = subprocess.run(_cmd(cfg, out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    resumed_log = (out / "run.log").read_bytes()[log_size:].decode()
    assert "step_train_simple: already done, skipped" in resumed_log
    assert "step_train_complex ..." in resumed_log
    assert _completed(out) == ["step_prepare_data", "step_train_simple", "step_select_electrode",
                               "step_train_complex", "step_finetune"]
    assert stage1_ckpt.stat().st_mtime_ns == stamp  # stage 1 was not redone
