"""The complex model's electrode subset as a kernel constraint of its first conv.

``model.complex_electrodes: k`` lets the complex model read only k electrodes. The mixed first
conv gives every electrode its own kernel rows, so reading an electrode subset is the same
function as keeping the other rows at zero: the model's input, layers, hls4ml conversion and C++
top level stay as they are, and the converted design multiplies those inputs by zero weights.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="qcascade")
class ElectrodeMask(tf.keras.constraints.Constraint):
    """Clip a ``(kernel, n_chans, filters)`` kernel as QKeras' default constraint does, then zero
    the rows of electrodes outside the subset.

    Args:
        mask: ``(n_chans,)`` bool, the electrodes the model reads.
        clip: the QKeras clip bound, ``max(1, quantizer.max())``.
    """

    def __init__(self, mask: Sequence[bool], clip: float):
        self.mask = [bool(m) for m in mask]
        self.clip = float(clip)

    def __call__(self, w):
        keep = tf.constant(np.asarray(self.mask, np.float32).reshape(1, -1, 1), dtype=w.dtype)
        return tf.clip_by_value(w, -self.clip, self.clip) * keep

    def get_config(self) -> dict:
        return {"mask": self.mask, "clip": self.clip}


def qkeras_clip(quantizer) -> float:
    """The bound of the ``Clip`` constraint QKeras gives a quantized kernel without one."""
    return float(max(1.0, quantizer.max())) if hasattr(quantizer, "max") else 1.0


# Keras' legacy (.h5) deserialisation, which QKeras' loader and the BatchNorm folding use, looks
# objects up by class name, not by the registered "qcascade>ElectrodeMask".
tf.keras.utils.get_custom_objects().setdefault("ElectrodeMask", ElectrodeMask)
