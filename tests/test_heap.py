"""The heap trim after the data step (qcascade/heap.py) and the hardware steps' place in the build."""

import sys

import numpy as np

from qcascade.cli import train_entry
from qcascade.heap import trim_heap
from qcascade.pipeline import STEPS


def test_trim_heap_hands_memory_back_on_glibc():
    blocks = [np.ones(1 << 12) for _ in range(4000)]  # 128 MB in 32-KB blocks (below mmap's threshold)
    del blocks
    out = trim_heap()
    assert isinstance(out, bool)
    if sys.platform.startswith("linux") and "glibc" in " ".join(__import__("platform").libc_ver()):
        assert out, "malloc_trim(0) found nothing to hand back after freeing 128 MB"


def test_the_data_step_trims_the_heap_once_per_unit(tmp_path, monkeypatch):
    import qcascade.steps_data as sd

    calls = []
    monkeypatch.setattr(sd, "trim_heap", lambda: calls.append(1) or True)
    assert train_entry(["--out", str(tmp_path / "run"), "--patient", "ID1", "--until-step", "step_prepare_data"]) == 0
    assert calls == [1]


def test_hardware_steps_come_before_the_fold_loop():
    """They read fold 0's deployed models only; before step_folds they overlap the workers' folds."""
    names = [s.name for s in STEPS]
    assert names.index("step_convert") < names.index("step_csim") < names.index("step_folds")
    assert names[-1] == "step_report"  # reads the pooled metrics.json that step_folds writes
