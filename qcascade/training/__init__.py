"""Training of the cascaded seizure detector: loss, custom loop, stages, tau, baselines.

The TensorFlow code lives in the submodules (``loss``, ``loop``, ``stages``, ``tau``,
``baselines``). :class:`TrainConfig` (the ``train:`` config section) lives in
:mod:`qcascade.config_train` with the config; it is re-exported here for callers.
"""

from qcascade.config_train import TrainConfig

__all__ = ["TrainConfig"]
