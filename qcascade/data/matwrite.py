"""Writing numeric variables as MATLAB files (v5 via scipy, v7.3 via h5py), atomically.

Used by the synthetic cohort, the tests and the benchmark to produce files in the SWEC layouts, so
the real readers in :mod:`qcascade.data.matio` are exercised.
"""

from __future__ import annotations

import struct
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from qcascade.io_utils import atomic_path


_MATLAB_CLASS = {"f8": "double", "f4": "single", "i1": "int8", "u1": "uint8", "i2": "int16",
                 "u2": "uint16", "i4": "int32", "u4": "uint32", "i8": "int64", "u8": "uint64"}


def mat73_userblock() -> bytes:
    """The 512-byte user block MATLAB puts in front of a v7.3 (HDF5) MAT file."""
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Jan  1 00:00:00 1970 HDF5 schema 1.00 ."
    head = text.ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0200) + b"IM"
    return head.ljust(512, b"\x00")


def write_mat(path: Path, variables: dict[str, np.ndarray], version: str = "5", compress: bool = False) -> Path:
    """Write numeric ``variables`` (MATLAB orientation) to a MAT file atomically.

    Args:
        path: destination ``.mat``.
        variables: name -> array; scalars become 1x1, 1-D arrays become column vectors.
        version: ``"5"`` (scipy.io.savemat) or ``"7.3"`` (HDF5 via h5py, arrays stored transposed
            as MATLAB does, with the ``MATLAB_class`` attribute).
        compress: zlib (v5) or gzip level 1 (v7.3) compression.
    """
    arrays = {k: _as_matlab_2d(v) for k, v in variables.items()}
    with atomic_path(path, suffix=".mat") as tmp:
        if version == "5":
            scipy.io.savemat(str(tmp), arrays, do_compression=compress, appendmat=False, oned_as="column")
        elif version == "7.3":
            with h5py.File(tmp, "w", userblock_size=512) as f:
                for name, arr in arrays.items():
                    kwargs = {"compression": "gzip", "compression_opts": 1} if compress and arr.size > 4096 else {}
                    ds = f.create_dataset(name, data=arr.T, **kwargs)
                    ds.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASS[arr.dtype.str[1:]])
            with open(tmp, "r+b") as fh:
                fh.write(mat73_userblock())
        else:
            raise ValueError(f"version must be '5' or '7.3', got {version!r}")
    return Path(path)


def _as_matlab_2d(value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.dtype.str[1:] not in _MATLAB_CLASS:
        arr = arr.astype(np.float64)
    return arr
