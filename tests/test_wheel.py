"""The wheel, installed in a fresh venv outside the checkout, runs the whole ``--quick`` flow (slow).

The fast check of the wheel's contents is ``tests/test_convert.py::test_the_wheel_ships_templates_targets_and_flow_scripts``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = re.compile(r"NewConnectionError|Temporary failure in name resolution|Network is unreachable|"
                     r"Max retries exceeded|Connection refused")


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_quick_outside_the_checkout(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path / "dist")],
                   cwd=ROOT, check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("qcascade-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    py = venv / "bin" / "python"
    # Without the caller's PYTHONPATH: a checkout on it (its egg-info) makes pip skip the install as satisfied.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL")}
    inst = subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True,
                          timeout=3600, env=env)
    if inst.returncode != 0 and OFFLINE.search(inst.stderr):
        pytest.skip(f"no package index reachable: {OFFLINE.search(inst.stderr).group(0)}")
    assert inst.returncode == 0, inst.stderr[-3000:]
    work = tmp_path / "elsewhere"  # neither the checkout nor its parent: nothing found by relative paths
    work.mkdir()
    out = tmp_path / "wheelrun"
    run = subprocess.run([str(venv / "bin" / "qcascade"), "train", "--quick", "--out", str(out)], cwd=work, env=env,
                         capture_output=True, text=True, timeout=3600)
    assert run.returncode == 0, run.stderr[-4000:]
    unit = out / "ID1"
    m = json.loads((unit / "metrics.json").read_text())
    assert m["test"]["cascade"]["f1"] is not None and "csim" not in m
    cs = json.loads((unit / "csim.json").read_text())
    assert cs["cascade"]["gate_agreement_cpp_vs_python"] == 1.0
    assert (unit / "hls" / "cascade_top" / "cascade_top.cpp").exists() and (unit / "hw_summary.json").exists()
    # The installed package ran, not the checkout.
    where = subprocess.run([str(py), "-c", "import qcascade; print(qcascade.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert str(venv) in where and str(ROOT) not in where
