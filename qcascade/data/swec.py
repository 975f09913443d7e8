"""SWEC-ETHZ iEEG recordings: discovery of the short- and long-term layouts and lazy chunked reading.

Short-term layout: ``<root>/ID<n>/Sz<k>.mat``, variable ``EEG`` shaped samples x electrodes at 512 Hz,
3 min pre-ictal + seizure + 3 min post-ictal, so the ictal span is ``[180 fs, n_samples - 180 fs)``.
Some patients come split (``ID4a``, ``ID4b``); each folder is a patient of its own unless
``merge_suffixed=True`` (the electrode count must then agree).

Long-term layout: ``<root>/IDxx/IDxx_<h>h.mat`` (h from 1), variable ``EEG`` shaped electrodes x
samples, plus ``IDxx/IDxx_info.mat`` with ``fs`` (512 or 1024), ``seizure_begin`` and
``seizure_end`` in seconds from the start of hour 1; hour h starts at ``(h - 1) * segment_s``.

Every :class:`Recording` is read lazily at 512 Hz (:meth:`Recording.iter_chunks`): MAT v5/v7 and
v7.3 alike (see :mod:`qcascade.data.matio` for what each format costs in memory), 1024 Hz files
decimated by :mod:`qcascade.data.resample`. Published third-party loaders read the hourly files
with ``scipy.io.loadmat`` (so at least some are v5/v7, not HDF5); both are handled.

Bad-data policy (each raises :class:`~qcascade.errors.DataError` naming the file):
    * missing ``EEG`` or info variables, missing info file, truncated/corrupt file;
    * orientation: taken from the shape (electrodes << samples); a transposed file is read with a
      logged warning, a shape that cannot tell samples from electrodes is refused;
    * an electrode that is all non-finite or constant over the first ``probe_s`` seconds is *dead*:
      masked (zero-filled) with a logged warning;
    * other NaN/Inf samples: error by default (``nan_policy="raise"``), or zero-filled with a
      warning (``nan_policy="zero"``);
    * differing electrode counts between one patient's files.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from qcascade.data.matio import load_small_vars, open_matrix
from qcascade.data.resample import decimate_stream, n_decimated
from qcascade.errors import DataError

log = logging.getLogger(__name__)

SFREQ = 512.0  # every recording is delivered at this rate
MAX_ELECTRODES = 256  # above this, a dimension is taken for samples when guessing orientation
_PATIENT_DIR = re.compile(r"^ID\d+[a-z]?$")


@dataclass
class Recording:
    """One file (or in-memory array) of one patient, loaded lazily.

    Attributes:
        patient_id: e.g. ``"ID4"``.
        record_id: unique within the cohort, e.g. ``"ID4_Sz2"`` or ``"ID04_17h"``.
        path: the MAT file, or None for an in-memory recording (``data``).
        sfreq: native sampling rate of the file (512 * an integer).
        n_samples: number of samples at 512 Hz (after resampling).
        n_electrodes: electrodes in the file.
        ictal_spans: ``[(start, stop), ...]`` sample indices at 512 Hz, stop exclusive.
        seizure_ids: the seizures (unique within the patient) that touch this recording.
        time_axis: MATLAB axis of ``EEG`` that holds time (0 = rows).
        nan_policy: ``"raise"`` or ``"zero"`` for sporadic NaN/Inf samples.
        data: ``(n_samples, n_electrodes)`` float32 for in-memory recordings.
        info: free metadata (e.g. synthetic ground truth ``soz_electrodes``).
    """

    patient_id: str
    record_id: str
    path: Path | None
    sfreq: float
    n_samples: int
    n_electrodes: int
    ictal_spans: list[tuple[int, int]]
    seizure_ids: tuple[str, ...] = ()
    time_axis: int = 0
    nan_policy: str = "raise"
    data: np.ndarray | None = field(default=None, repr=False)
    info: dict = field(default_factory=dict, repr=False)
    probe_s: float = 10.0
    _dead: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def factor(self) -> int:
        return int(round(self.sfreq / SFREQ))

    @property
    def n_samples_native(self) -> int:
        return self.info.get("n_samples_native", self.n_samples)

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else f"<memory:{self.record_id}>"

    def _read_native(self, chunk_native: int) -> Iterator[tuple[int, np.ndarray]]:
        if self.data is not None:
            for start in range(0, self.n_samples, chunk_native):
                yield start, np.array(self.data[start:start + chunk_native], np.float32)  # copy: cleaned in place
            return
        with open_matrix(self.path, "EEG") as reader:
            for start in range(0, self.n_samples_native, chunk_native):
                stop = min(start + chunk_native, self.n_samples_native)
                yield start, reader.read(self.time_axis, start, stop)

    def dead_electrodes(self) -> np.ndarray:
        """``(n_electrodes,)`` bool: all non-finite or constant over the first ``probe_s`` seconds."""
        if self._dead is None:
            n_probe = max(2, int(self.probe_s * self.sfreq))
            _, head = next(self._read_native(n_probe))
            finite = np.isfinite(head)
            all_bad = ~finite.any(axis=0)
            vals = np.where(finite, head, np.nan)
            with warnings.catch_warnings():  # all-NaN columns are reported through all_bad
                warnings.simplefilter("ignore", RuntimeWarning)
                flat = np.nanmax(vals, axis=0) == np.nanmin(vals, axis=0)
            self._dead = all_bad | flat
            if self._dead.any():
                log.warning("%s: electrode(s) %s are all-NaN or flat over the first %.0f s; masked",
                            self.source, np.flatnonzero(self._dead).tolist(), self.probe_s)
        return self._dead

    def iter_chunks(self, chunk_samples: int = 30 * 512) -> Iterator[np.ndarray]:
        """Yield ``(about chunk_samples, n_electrodes)`` float32 chunks at 512 Hz, covering the recording.

        Dead electrodes are zero-filled; sporadic NaN/Inf follow ``nan_policy``.

        Raises:
            DataError: non-finite samples with ``nan_policy="raise"``, or an unreadable file.
        """
        counts = {"zero_filled": 0}
        yield from decimate_stream(self._clean_native(chunk_samples * self.factor, counts), self.factor,
                                   self.n_electrodes)
        if counts["zero_filled"]:
            log.warning("%s: zero-filled %d NaN/Inf samples", self.source, counts["zero_filled"])

    def _clean_native(self, chunk_native: int, counts: dict) -> Iterator[np.ndarray]:
        """Native-rate chunks with dead electrodes zeroed and NaN/Inf handled per ``nan_policy``."""
        dead = self.dead_electrodes()
        for start, raw in self._read_native(chunk_native):
            raw[:, dead] = 0.0
            bad = ~np.isfinite(raw)
            if bad.any():
                if self.nan_policy != "zero":
                    rows, cols = np.nonzero(bad)
                    raise DataError(
                        f"{self.source}: NaN/Inf sample(s) on electrode(s) {sorted(set(cols.tolist()))[:10]}, "
                        f"first at sample {start + rows[0]} ({(start + rows[0]) / self.sfreq:.2f} s); "
                        "set data.nan_policy: zero in the run config to zero-fill them")
                counts["zero_filled"] += int(bad.sum())
                raw[bad] = 0.0
            yield raw

    def load(self) -> np.ndarray:
        """The whole recording, ``(n_samples, n_electrodes)`` float32 at 512 Hz (small files only)."""
        return np.concatenate(list(self.iter_chunks()), axis=0)


def resolve_time_axis(path: Path, shape: tuple[int, int], expected: int, layout: str) -> int:
    """Which MATLAB axis of ``EEG`` is time, guessed from the shape and checked against the layout.

    Raises:
        DataError: the shape cannot tell samples from electrodes.
    """
    small, large = min(shape), max(shape)
    if small > MAX_ELECTRODES or large < 4 * small:
        names = "samples x electrodes" if expected == 0 else "electrodes x samples"
        raise DataError(f"{path}: cannot tell samples from electrodes in EEG of shape {shape} "
                        f"({layout} files are {names}); file too short or malformed")
    axis = 0 if shape[0] > shape[1] else 1
    if axis != expected:
        log.warning("%s: EEG has shape %s but %s files are %s; reading it transposed", path, shape,
                    layout, "samples x electrodes" if expected == 0 else "electrodes x samples")
    return axis


def _factor(path: Path, sfreq: float) -> int:
    factor = int(round(sfreq / SFREQ))
    if factor < 1 or abs(factor * SFREQ - sfreq) > 1e-6:
        raise DataError(f"{path}: sampling rate {sfreq} Hz is not a multiple of {SFREQ:.0f} Hz")
    return factor


def _patient_dirs(root: Path, patients) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data directory not found")
    dirs = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and _PATIENT_DIR.match(p.name)}
    if patients:
        missing = [p for p in patients if p not in dirs]
        if missing:
            raise DataError(f"{root}: patient folder(s) {missing} not found (have {sorted(dirs)})")
        return [dirs[p] for p in patients]
    if not dirs:
        raise DataError(f"{root}: no patient folders (ID<n>) found")
    return list(dirs.values())


def _file_geometry(path: Path, sfreq: float, expected_axis: int, layout: str):
    """``(decimation factor, EEG shape, time axis, native samples, samples at 512 Hz)`` of one file."""
    factor = _factor(path, sfreq)
    shape = _shape_of(path)
    axis = resolve_time_axis(path, shape, expected=expected_axis, layout=layout)
    return factor, shape, axis, shape[axis], n_decimated(shape[axis], factor)


def _shape_of(path: Path) -> tuple[int, int]:
    with open_matrix(path, "EEG") as reader:
        return reader.shape


def _check_electrodes(recs: list[Recording]) -> None:
    first = recs[0]
    for rec in recs[1:]:
        if rec.n_electrodes != first.n_electrodes:
            raise DataError(f"{rec.path}: {rec.n_electrodes} electrodes, but {first.path} has "
                            f"{first.n_electrodes}; all files of patient {rec.patient_id} must agree")


def discover_short(root: Path, patients=None, sfreq: float = 512.0, pre_ictal_s: float = 180.0,
                   post_ictal_s: float = 180.0, nan_policy: str = "raise",
                   merge_suffixed: bool = False) -> dict[str, list[Recording]]:
    """Find short-term recordings ``<root>/ID<n>/Sz<k>.mat`` (reads only the file headers).

    Args:
        root: dataset folder.
        patients: folder names to keep (default: all).
        sfreq: sampling rate of the files (the short-term set is 512 Hz).
        pre_ictal_s, post_ictal_s: seconds before/after the seizure in each file.
        nan_policy: ``"raise"`` or ``"zero"`` for sporadic NaN/Inf samples.
        merge_suffixed: treat ``ID4a``/``ID4b`` as one patient ``ID4``.

    Returns:
        ``{patient_id: [Recording, ...]}`` ordered by seizure number.
    """
    out: dict[str, list[Recording]] = {}
    for pdir in _patient_dirs(root, patients):
        files = sorted((int(m.group(1)), p) for p in pdir.iterdir()
                       if (m := re.fullmatch(r"Sz(\d+)\.mat", p.name)))
        if not files:
            raise DataError(f"{pdir}: no Sz<k>.mat files")
        pid = re.sub(r"[a-z]$", "", pdir.name) if merge_suffixed else pdir.name
        for k, path in files:
            factor, shape, axis, n_native, n = _file_geometry(path, sfreq, expected_axis=0, layout="short-term")
            start, stop = int(round(pre_ictal_s * SFREQ)), n - int(round(post_ictal_s * SFREQ))
            if stop <= start:
                raise DataError(f"{path}: {n_native / sfreq:.1f} s is too short for {pre_ictal_s:.0f} s "
                                f"pre-ictal + {post_ictal_s:.0f} s post-ictal")
            out.setdefault(pid, []).append(Recording(
                pid, f"{pdir.name}_Sz{k}", path, sfreq, n, shape[1 - axis], [(start, stop)],
                (f"{pdir.name}_Sz{k}",), axis, nan_policy, info={"n_samples_native": n_native}))
    for recs in out.values():
        _check_electrodes(recs)
    return out


def read_info(path: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """Read a long-term ``IDxx_info.mat``: ``(fs, seizure_begin_s, seizure_end_s)``.

    Raises:
        DataError: file missing, variables missing, or inconsistent seizure times.
    """
    if not Path(path).is_file():
        raise DataError(f"{path}: info file missing (needed for fs and seizure times)")
    v = load_small_vars(path, ("fs", "seizure_begin", "seizure_end"))
    begin, end = v["seizure_begin"].astype(float).ravel(), v["seizure_end"].astype(float).ravel()
    if v["fs"].size != 1:
        raise DataError(f"{path}: fs must be a scalar, got shape {v['fs'].shape}")
    if begin.shape != end.shape or np.any(end <= begin) or not np.all(np.isfinite(begin)):
        raise DataError(f"{path}: seizure_begin/seizure_end differ in length or have end <= begin")
    return float(v["fs"].ravel()[0]), begin, end


def discover_long(root: Path, patients=None, segment_s: float = 3600.0,
                  nan_policy: str = "raise") -> dict[str, list[Recording]]:
    """Find long-term recordings ``<root>/IDxx/IDxx_<h>h.mat`` with their ``IDxx_info.mat``.

    Args:
        root: dataset folder.
        patients: folder names to keep (default: all).
        segment_s: seconds per file (3600 in SWEC; smaller in tests).
        nan_policy: ``"raise"`` or ``"zero"`` for sporadic NaN/Inf samples.

    Returns:
        ``{patient_id: [Recording, ...]}`` ordered by hour; one Recording per hourly file.
    """
    out: dict[str, list[Recording]] = {}
    for pdir in _patient_dirs(root, patients):
        pid = pdir.name
        fs, begin, end = read_info(pdir / f"{pid}_info.mat")
        files = sorted((int(m.group(1)), p) for p in pdir.iterdir()
                       if (m := re.fullmatch(rf"{re.escape(pid)}_(\d+)h\.mat", p.name)))
        if not files:
            raise DataError(f"{pdir}: no {pid}_<h>h.mat files")
        covered = np.zeros(len(begin), bool)
        recs = []
        for hour, path in files:
            factor, shape, axis, n_native, n = _file_geometry(path, fs, expected_axis=1, layout="long-term")
            t0, duration = (hour - 1) * segment_s, n_native / fs
            spans, sz_ids = [], []
            for i, (b, e) in enumerate(zip(begin, end)):
                lo, hi = max(b, t0), min(e, t0 + duration)
                s0, s1 = int(round((lo - t0) * SFREQ)), min(n, int(round((hi - t0) * SFREQ)))
                if s1 > s0:
                    spans.append((s0, s1))
                    sz_ids.append(f"{pid}_sz{i + 1}")
                    covered[i] = True
            recs.append(Recording(pid, f"{pid}_{hour}h", path, fs, n, shape[1 - axis], spans,
                                  tuple(sz_ids), axis, nan_policy, info={"n_samples_native": n_native,
                                                                          "start_s": t0}))
        _check_fs_plausible(pdir / f"{pid}_info.mat", fs, recs, segment_s)
        if not covered.all():
            log.warning("%s: seizure(s) %s fall in no file present", pdir,
                        (np.flatnonzero(~covered) + 1).tolist())
        _check_electrodes(recs)
        out[pid] = recs
    return out


def _check_fs_plausible(info: Path, fs: float, recs: list[Recording], segment_s: float, tol: float = 0.02) -> None:
    """Refuse an info-file ``fs`` that makes the hour files the wrong length.

    Hour ``h`` starts at ``(h - 1) * segment_s``, so every file but the last lasts ``segment_s``
    and none lasts longer. A wrong ``fs`` (1024 for 512 Hz files) halves or doubles every duration
    and would silently mislabel every seizure span.
    """
    last = recs[-1].record_id
    for rec in recs:
        duration = rec.info["n_samples_native"] / fs
        too_long = duration > segment_s * (1 + tol)
        too_short = rec.record_id != last and duration < segment_s * (1 - tol)
        if too_long or too_short:
            implied = rec.info["n_samples_native"] / segment_s
            raise DataError(f"{info}: fs = {fs:g} Hz makes {rec.path.name} last {duration:.1f} s, but hour files "
                            f"are {segment_s:g} s long (its {rec.info['n_samples_native']} samples imply "
                            f"{implied:.0f} Hz); correct fs in {info.name}")
