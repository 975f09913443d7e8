"""MATLAB file access that reads a 2-D recording in time slices, for MAT v5/v7 and v7.3 (HDF5).

SWEC-ETHZ hourly files hold ~2 GB each, so a recording is never loaded whole when the format allows
otherwise:

* **v7.3** (HDF5): h5py reads hyperslabs. MATLAB writes column-major arrays, so h5py sees the
  MATLAB shape reversed (``(rows, cols)`` in MATLAB is ``(cols, rows)`` in HDF5).
* **v5/v7, uncompressed**: the numeric payload is one contiguous column-major block, which is
  memory-mapped; any slice is read lazily by the OS.
* **v7, compressed** (zlib, MATLAB's default for ``-v7``): the payload is decompressed as a stream.
  When time runs along MATLAB columns (long-term ``electrodes x samples``) a time slice is a
  contiguous run of the stream, so memory stays bounded; when time runs along rows (short-term
  ``samples x electrodes``) the whole variable is decompressed once (short-term files are small).

Only the header parsing of MAT v5 is implemented here (tags, array flags, dimensions, name); the
format is the documented MAT-File Format (MathWorks) and is cross-checked against ``scipy.io`` in
the tests.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from qcascade.errors import DataError

_MI_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
_NUMERIC_CLASSES = set(range(6, 16))  # mxDOUBLE .. mxUINT64
_ZBLOCK = 1 << 20


def is_hdf5(path: Path) -> bool:
    """True for a MAT v7.3 (HDF5) file."""
    try:
        return h5py.is_hdf5(str(path))
    except OSError:
        return False


def load_small_vars(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load small variables (e.g. ``fs``, ``seizure_begin``) whole, in MATLAB orientation.

    Raises:
        DataError: the file is missing, unreadable, or lacks one of ``names``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if is_hdf5(path):
            with h5py.File(path, "r") as f:
                missing = [n for n in names if n not in f]
                if missing:
                    raise DataError(f"{path}: variable(s) {missing} missing (has {sorted(f.keys())})")
                return {n: np.asarray(f[n][()]).T for n in names}
        found = scipy.io.loadmat(str(path), variable_names=list(names))
    except DataError:
        raise
    except Exception as exc:  # scipy/h5py raise many types for damaged files
        raise DataError(f"{path}: cannot read MAT file ({type(exc).__name__}: {exc})") from None
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(f"{path}: variable(s) {missing} missing (has {list_variables(path)})")
    return {n: np.asarray(found[n]) for n in names}


def list_variables(path: Path) -> list[str]:
    """Names of the top-level variables of a MAT file (empty if unreadable)."""
    try:
        if is_hdf5(path):
            with h5py.File(path, "r") as f:
                return sorted(k for k in f.keys() if not k.startswith("#"))
        return [name for name, _, _ in scipy.io.whosmat(str(path))]
    except Exception:
        return []


class MatrixReader:
    """A 2-D numeric MATLAB variable, read as ``(n_times, n_other)`` float32 slices along one axis.

    Use :func:`open_matrix`. ``shape`` is the MATLAB shape ``(rows, cols)``.
    """

    shape: tuple[int, int]
    path: Path

    def read(self, time_axis: int, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` along MATLAB axis ``time_axis`` as ``(stop - start, n_other)`` float32.

        Compressed v5 files must be read in increasing, non-overlapping order.
        """
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "MatrixReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_matrix(path: Path, name: str = "EEG") -> MatrixReader:
    """Open variable ``name`` of a MAT file for sliced reading.

    Raises:
        DataError: file missing, truncated or corrupt, variable missing, not a real 2-D numeric array.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if is_hdf5(path):
        return _H5Matrix(path, name)
    return _open_v5(path, name)


class _H5Matrix(MatrixReader):
    def __init__(self, path: Path, name: str):
        self.path = path
        try:
            self._file = h5py.File(path, "r")
        except OSError as exc:
            raise DataError(f"{path}: corrupt or truncated HDF5/MAT v7.3 file ({exc})") from None
        if name not in self._file:
            keys = sorted(k for k in self._file.keys() if not k.startswith("#"))
            self._file.close()
            raise DataError(f"{path}: variable '{name}' missing (has {keys})")
        self._ds = self._file[name]
        if not isinstance(self._ds, h5py.Dataset) or self._ds.ndim != 2 or self._ds.dtype.kind not in "iuf":
            self._file.close()
            raise DataError(f"{path}: variable '{name}' is not a real 2-D numeric matrix")
        self.shape = tuple(int(n) for n in self._ds.shape[::-1])

    def read(self, time_axis: int, start: int, stop: int) -> np.ndarray:
        try:
            if time_axis == 1:  # MATLAB columns are the first HDF5 axis
                out = self._ds[start:stop, :]
            else:
                out = self._ds[:, start:stop].T
        except (OSError, RuntimeError) as exc:
            raise DataError(f"{self.path}: cannot read samples {start}:{stop} (truncated or corrupt? {exc})") from None
        return np.ascontiguousarray(out, dtype=np.float32)

    def close(self) -> None:
        self._file.close()


class _MemmapMatrix(MatrixReader):
    def __init__(self, path: Path, shape, dtype: np.dtype, offset: int):
        self.path, self.shape = path, shape
        # Column-major (rows, cols) is row-major (cols, rows).
        self._mm = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(shape[1], shape[0]))

    def read(self, time_axis: int, start: int, stop: int) -> np.ndarray:
        out = self._mm[start:stop, :] if time_axis == 1 else self._mm[:, start:stop].T
        return np.array(out, dtype=np.float32, order="C")  # a writable copy, never the read-only map

    def close(self) -> None:
        self._mm = None


class _ZlibMatrix(MatrixReader):
    """Sequential reader of a zlib-compressed v5 variable; see the module docstring for memory use."""

    def __init__(self, path: Path, shape, dtype: np.dtype, comp_offset: int, comp_len: int, skip: int):
        self.path, self.shape, self._dtype = path, shape, dtype
        self._args = (comp_offset, comp_len, skip)
        self._whole: np.ndarray | None = None
        self._restart()

    def _restart(self) -> None:
        comp_offset, comp_len, skip = self._args
        self._stream = _ZStream(self.path, comp_offset, comp_len)
        self._stream.read_exact(skip)
        self._next_col = 0

    def read(self, time_axis: int, start: int, stop: int) -> np.ndarray:
        n_rows, n_cols = self.shape
        if time_axis == 0:
            if self._whole is None:
                raw = self._stream.read_exact(n_rows * n_cols * self._dtype.itemsize)
                self._whole = np.frombuffer(raw, self._dtype).reshape(n_cols, n_rows).T.astype(np.float32)
            return self._whole[start:stop].copy()
        if start < self._next_col:
            self._restart()
        if start > self._next_col:
            self._stream.skip((start - self._next_col) * n_rows * self._dtype.itemsize)
        raw = self._stream.read_exact((stop - start) * n_rows * self._dtype.itemsize)
        self._next_col = stop
        return np.frombuffer(raw, self._dtype).reshape(stop - start, n_rows).astype(np.float32)

    def close(self) -> None:
        self._stream.close()
        self._whole = None


class _ZStream:
    """Exact-length reads from a zlib stream stored at ``[offset, offset + length)`` of a file."""

    def __init__(self, path: Path, offset: int, length: int):
        self.path = path
        self._fh = open(path, "rb")
        self._fh.seek(offset)
        self._left = length
        self._z = zlib.decompressobj()
        self._buf = bytearray()

    def _fill(self, need: int) -> None:
        while len(self._buf) < need and not self._z.eof:
            if self._z.unconsumed_tail:
                data = self._z.unconsumed_tail
            elif self._left > 0:
                data = self._fh.read(min(_ZBLOCK, self._left))
                if not data:
                    raise DataError(f"{self.path}: truncated file (compressed variable ends early)")
                self._left -= len(data)
            else:
                raise DataError(f"{self.path}: truncated or corrupt compressed variable")
            try:
                # Bounded output per call keeps memory independent of the recording length.
                self._buf += self._z.decompress(data, max(need - len(self._buf), _ZBLOCK))
            except zlib.error as exc:
                raise DataError(f"{self.path}: corrupt compressed data ({exc})") from None

    def read_upto(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at the end of the stream."""
        self._fill(n)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_exact(self, n: int) -> bytes:
        out = self.read_upto(n)
        if len(out) < n:
            raise DataError(f"{self.path}: truncated or corrupt compressed variable (ends early)")
        return out

    def skip(self, n: int) -> None:
        while n > 0:
            step = min(n, 16 * _ZBLOCK)
            self.read_exact(step)
            n -= step

    def close(self) -> None:
        self._fh.close()


def _read_tag(buf: bytes, pos: int, endian: str) -> tuple[int, int, int]:
    """Return ``(mi_type, n_bytes, data_pos)``; handles the 4-byte "small data element" form."""
    mi_type, n_bytes = struct.unpack_from(endian + "II", buf, pos)
    if mi_type >> 16:
        return mi_type & 0xFFFF, mi_type >> 16, pos + 4
    return mi_type, n_bytes, pos + 8


def _parse_matrix_header(buf: bytes, endian: str, path: Path):
    """Parse a miMATRIX body start: returns ``(name, shape, dtype, payload_offset, payload_bytes)``."""
    try:
        _, _, p = _read_tag(buf, 0, endian)
        flags = struct.unpack_from(endian + "I", buf, p)[0]
        p += 8
        _, n_dim_bytes, p = _read_tag(buf, p, endian)
        dims = struct.unpack_from(endian + f"{n_dim_bytes // 4}i", buf, p)
        p += n_dim_bytes + (-n_dim_bytes) % 8
        _, n_name, q = _read_tag(buf, p, endian)
        name = buf[q:q + n_name].decode("latin-1")
        p = q + (4 if q - p == 4 else n_name + (-n_name) % 8)
        data_type, n_data, data_pos = _read_tag(buf, p, endian)
    except struct.error:
        raise DataError(f"{path}: truncated or corrupt MAT v5 variable header") from None
    mx_class, is_complex = flags & 0xFF, bool(flags & 0x0800)
    ok = mx_class in _NUMERIC_CLASSES and not is_complex and len(dims) == 2 and data_type in _MI_DTYPES
    return name, tuple(dims), ok, np.dtype(endian + _MI_DTYPES.get(data_type, "f8")), data_pos, n_data


def _open_v5(path: Path, name: str) -> MatrixReader:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        header = fh.read(128)
        if len(header) < 128 or header[126:128] not in (b"IM", b"MI"):
            raise DataError(f"{path}: not a MAT file (bad header; truncated or corrupt?)")
        endian = "<" if header[126:128] == b"IM" else ">"
        pos, seen = 128, []
        while pos + 8 <= size:
            fh.seek(pos)
            mi_type, n_bytes = struct.unpack(endian + "II", fh.read(8))
            body = pos + 8
            if body + n_bytes > size:
                raise DataError(f"{path}: truncated file (variable at byte {pos} needs {n_bytes} bytes)")
            if mi_type == _MI_COMPRESSED:
                stream = _ZStream(path, body, n_bytes)
                try:
                    inner_type, _ = struct.unpack(endian + "II", stream.read_exact(8))
                    head = stream.read_upto(256) if inner_type == _MI_MATRIX else b""
                finally:
                    stream.close()
                if len(head) >= 16:
                    var, shape, ok, dtype, data_pos, n_data = _parse_matrix_header(head, endian, path)
                    seen.append(var)
                    if var == name:
                        _check_numeric(path, name, ok, shape, n_data, dtype)
                        return _ZlibMatrix(path, shape, dtype, body, n_bytes, 8 + data_pos)
                pos = body + n_bytes
            else:
                if mi_type == _MI_MATRIX:
                    fh.seek(body)
                    head = fh.read(min(n_bytes, 256))
                    var, shape, ok, dtype, data_pos, n_data = _parse_matrix_header(head, endian, path)
                    seen.append(var)
                    if var == name:
                        _check_numeric(path, name, ok, shape, n_data, dtype)
                        return _MemmapMatrix(path, shape, dtype, body + data_pos)
                pos = body + n_bytes + (-n_bytes) % 8
    raise DataError(f"{path}: variable '{name}' missing (has {seen})")


def _check_numeric(path: Path, name: str, ok: bool, shape, n_data: int, dtype: np.dtype) -> None:
    if not ok:
        raise DataError(f"{path}: variable '{name}' is not a real 2-D numeric matrix")
    if n_data != shape[0] * shape[1] * dtype.itemsize:
        raise DataError(f"{path}: variable '{name}' payload size does not match its shape {shape}")

