"""A synthetic patient of any length in the SWEC long-term layout, written with bounded memory.

:func:`qcascade.data.synthetic.write_swec_long` concatenates a cohort in memory first, which does
not scale to days of 64-electrode recordings. :func:`write_long_patient` writes
``<root>/<pid>/<pid>_<h>h.mat`` (MAT v7.3, ``EEG`` electrodes x samples at ``fs``) block by block
plus ``<pid>_info.mat`` (``fs``, ``seizure_begin``, ``seizure_end`` in seconds from the start of hour 1),
for the long-term benchmark and the tests.

Signal: white background noise on every electrode; during a seizure, the first ``n_soz`` electrodes
carry a 6 Hz rhythm of several times the background amplitude (easy to detect on purpose: this
data measures throughput and memory, not clinical accuracy).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from qcascade.data.matwrite import mat73_userblock, write_mat
from qcascade.io_utils import atomic_path, atomic_write_json


def seizure_times(hours: float, n_seizures: int, duration_s: float = 60.0, seed: int = 0) -> np.ndarray:
    """``(n_seizures, 2)`` begin/end seconds, one seizure per equal share of the recording (jittered)."""
    rng = np.random.default_rng(seed)
    share = hours * 3600.0 / n_seizures
    begin = np.array([k * share + rng.uniform(0.2, 0.8) * (share - duration_s) for k in range(n_seizures)])
    return np.stack([begin, begin + duration_s], axis=1)


def write_long_patient(root, pid: str = "ID01", hours: float = 6.0, n_electrodes: int = 64,
                       fs: float = 1024.0, segment_s: float = 3600.0, n_seizures: int | None = None,
                       seizure_s: float = 60.0, n_soz: int = 4, dtype=np.int16, seed: int = 0) -> Path:
    """Write one long-term patient folder block by block; returns ``<root>/<pid>``.

    Args:
        root: dataset folder (created).
        pid: patient folder name (``ID<n>``).
        hours: recording length; the last file may be shorter than ``segment_s``.
        n_electrodes: electrodes per file.
        fs: sampling rate of the files (512 or 1024).
        segment_s: seconds per file (3600 in SWEC; less in tests).
        n_seizures: seizures (default: one per 4 h, at least 3).
        seizure_s: seizure length, seconds.
        n_soz: electrodes that carry the seizure rhythm.
        dtype: sample type in the files (``int16`` halves the disk of a day of data; float32 works too).
        seed: seeds noise and seizure times.
    """
    pdir = Path(root) / pid
    pdir.mkdir(parents=True, exist_ok=True)
    n_seizures = n_seizures or max(3, int(hours // 4))
    sz = seizure_times(hours, n_seizures, seizure_s, seed)
    rng = np.random.default_rng(seed + 1)
    total = int(round(hours * 3600 * fs))
    seg, block = int(round(segment_s * fs)), int(fs * 10)
    for h, start in enumerate(range(0, total, seg), start=1):
        n = min(seg, total - start)
        with atomic_path(pdir / f"{pid}_{h}h.mat", suffix=".mat") as tmp:
            with h5py.File(tmp, "w", userblock_size=512) as f:
                # MATLAB's electrodes x samples is samples x electrodes in HDF5.
                ds = f.create_dataset("EEG", (n, n_electrodes), dtype, chunks=(min(n, 16384), n_electrodes))
                ds.attrs["MATLAB_class"] = np.bytes_("int16" if np.dtype(dtype) == np.int16 else "single")
                for b0 in range(0, n, block):
                    b1 = min(n, b0 + block)
                    x = rng.standard_normal((b1 - b0, n_electrodes), dtype=np.float32) * 20.0
                    t = (start + np.arange(b0, b1)) / fs
                    ictal = np.zeros(len(t), bool)
                    for lo, hi in sz:
                        ictal |= (t >= lo) & (t < hi)
                    if ictal.any():
                        x[ictal, :n_soz] += (120.0 * np.sin(2 * np.pi * 6.0 * t[ictal]))[:, None].astype(np.float32)
                    ds[b0:b1] = x.astype(dtype) if np.dtype(dtype).kind == "f" else np.round(x).astype(dtype)
            with open(tmp, "r+b") as fh:
                fh.write(mat73_userblock())
    write_mat(pdir / f"{pid}_info.mat", {"fs": np.array([[float(fs)]]), "seizure_begin": sz[:, 0],
                                         "seizure_end": sz[:, 1]}, "5")
    atomic_write_json(Path(root) / "ground_truth.json",
                      {"patients": {pid: {"n_electrodes": n_electrodes, "soz_electrodes": list(range(n_soz)),
                                          "hours": hours, "seizures_s": sz.tolist()}}})
    return pdir
