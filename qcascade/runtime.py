"""Process-level set-up of a run: TensorFlow's thread pools and NumPy's page size."""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

__all__ = ["limit_tf_threads", "numpy_base_pages"]

HUGEPAGE_ENV = "NUMPY_MADVISE_HUGEPAGE"


def limit_tf_threads(n: int) -> None:
    """TensorFlow's intra- and inter-op threads for this process and the fold workers it starts
    (``train.tf_threads``; 0 leaves TensorFlow's default).

    TensorFlow reads ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS`` when its runtime starts,
    and spawned workers inherit them; where TensorFlow already ran in this process (a test
    session), its pools stay as they are.
    """
    if not n:
        return
    for key in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[key] = str(n)
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:  # the runtime has started: the pools are fixed for this process
            log.debug("TensorFlow already running in this process: train.tf_threads applies to workers only")


def numpy_base_pages() -> None:
    """NumPy's large arrays on ordinary pages in this process and the processes it starts, unless
    the user set ``NUMPY_MADVISE_HUGEPAGE`` (then as they set it).

    NumPy asks the kernel for transparent huge pages on every array of 4 MiB or more. Where the
    kernel compacts memory to serve that request (``defrag`` ``madvise``, the default), the first
    write to a fresh array takes several times as long as on ordinary pages, and every fold
    process builds its window arrays anew (docs/evaluation.md, "Time"). The page size changes no
    computed value.
    """
    if HUGEPAGE_ENV in os.environ:
        return
    os.environ[HUGEPAGE_ENV] = "0"  # read by NumPy when a spawned worker imports it
    import numpy as np

    set_madvise = getattr(np.core.multiarray, "_set_madvise_hugepage", None)  # NumPy < 2 (pinned)
    if set_madvise is not None:
        set_madvise(False)
