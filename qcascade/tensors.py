"""NumPy windows handed to TensorFlow without a copy where the buffer allows it.

``tf.convert_to_tensor`` copies every NumPy array, and copies it again unless its buffer is
64-byte aligned. Window batches are large (256 windows of 512 x 128 float32 are 67 MB) and the
same validation windows are predicted every epoch; the copies were about a tenth of a fold's
time (docs/evaluation.md, "Time").
"""

from __future__ import annotations

import numpy as np

from qcascade.data.aligned import is_aligned

__all__ = ["as_tensor"]


def as_tensor(X):
    """A float32 ``tf.Tensor`` of ``X``; shares ``X``'s buffer when ``X`` is float32 and aligned
    (:func:`qcascade.data.aligned.is_aligned`), else a copy.

    A shared tensor sees later writes to ``X``: use it before ``X`` changes (each call site
    predicts or copies into a variable at once).
    """
    import tensorflow as tf

    if isinstance(X, np.ndarray) and X.dtype == np.float32 and X.size and is_aligned(X):
        return tf.experimental.dlpack.from_dlpack(X.__dlpack__())
    return tf.convert_to_tensor(X, tf.float32)
