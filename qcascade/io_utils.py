"""Atomic file output: a reader never sees a half-written file, and a crash leaves the old one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    Args:
        path: final destination.
        suffix: ending of the temporary file name (Keras picks the format from ``.h5``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp.", suffix=suffix, dir=path.parent)
    # mkstemp creates 0600; a result file gets the mode any tool would give it (0666 & ~umask).
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_UMASK: list[int] = []


def _umask() -> int:
    """The process umask, read once (reading means setting it: not done again while threads write)."""
    if not _UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK.append(mask)
    return _UMASK[0]


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (numpy scalars are converted)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_to_builtin) + "\n")


def _to_builtin(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def atomic_save_npz(path: str | os.PathLike, *arrays, **named) -> Path:
    """``np.savez`` to ``path`` atomically (through a file object: savez would append ``.npz``)."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, *arrays, **named)
    return Path(path)


def atomic_save_npy(path: str | os.PathLike, array) -> Path:
    """``np.save`` to ``path`` atomically."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)
    return Path(path)


def save_keras_h5(model, path: str | os.PathLike) -> None:
    """Write ``model`` (architecture, QKeras objects and weights, no optimizer) as HDF5.

    What ``model.save(path)`` writes for a ``.h5`` path, minus three messages that are harmless
    for our uncompiled models: ``Model.save``'s "HDF5 is legacy" warning (the ``.h5`` format is the
    one ``qkeras.utils.load_qmodel`` and hls4ml read), the legacy saver's "compiled metrics have
    yet to be built" log line (it tries to build metrics of a model that was never compiled), and
    ``keras.constraints.serialize``'s warning about QKeras quantizers in constraint slots.
    """
    import warnings

    from keras.src.saving.legacy import hdf5_format

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The `keras\.constraints\.serialize\(\)` API",
                                category=UserWarning)
        hdf5_format.save_model_to_hdf5(model, str(path), overwrite=True, include_optimizer=False)


def atomic_save_keras(model, path: str | os.PathLike) -> Path:
    """:func:`save_keras_h5` to ``path`` atomically."""
    with atomic_path(path, suffix=".h5") as tmp:
        tmp.unlink()  # h5py refuses to overwrite some empty files; let Keras create it
        save_keras_h5(model, tmp)
    return Path(path)


def atomic_save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically, then close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return Path(path)
