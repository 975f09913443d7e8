"""Process-level set-up of a run: TensorFlow's thread pools."""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

__all__ = ["limit_tf_threads"]


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
