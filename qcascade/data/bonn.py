"""The Bonn University epilepsy EEG database (Andrzejak et al., Phys. Rev. E 64, 061907, 2001).

Five sets of 100 single-channel segments, 4097 samples (23.6 s) at 173.61 Hz, one integer per line::

    A_Z/Z001.txt  scalp, healthy, eyes open         C_N/N001.TXT  intracranial, seizure-free, opposite hippocampus
    B_O/O001.txt  scalp, healthy, eyes closed       D_F/F001.txt  intracranial, seizure-free, epileptogenic zone
                                                    E_S/S001.txt  intracranial, seizure activity

:func:`discover_bonn` reads the zip as shipped (no extraction) or its extracted folders and returns
one unit ``{"bonn": [Recording, ...]}``: one in-memory, single-electrode recording per segment,
resampled to 512 Hz. Set E is ictal over the whole segment (its own seizure id); the other sets are
seizure-free. Segments carry no patient label, so cross-validation is grouped by segment:
``info["fold_group"]`` (0..k-1) is assigned per set (so also per class), seeded, and a segment's
group does not depend on which other sets are loaded.

Resampling: ``resample_poly(x, 174, 59)``; 174/59 = 2.949153 approximates 512/173.61 = 2.949139
with a relative error of +4.6e-6 (a 10 Hz rhythm comes out at 9.99995 Hz; 23.6 s is off by 0.1 ms).
4097 samples become 12083.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from qcascade.data.swec import SFREQ, Recording
from qcascade.errors import DataError

log = logging.getLogger(__name__)

NATIVE_SFREQ = 173.61
N_NATIVE = 4097
UP, DOWN = 174, 59  # 174/59 ~ 512/173.61, relative error 4.6e-6 (see module docstring)
N_RESAMPLED = -(-N_NATIVE * UP // DOWN)  # resample_poly's output length, 12083
SETS = {"A": "Z", "B": "O", "C": "N", "D": "F", "E": "S"}  # set -> file prefix (folder "<set>_<prefix>")
ICTAL_SETS = ("E",)
DEFAULT_SETS = ("C", "D", "E")
UNIT = "bonn"
_NAME = re.compile(r"(?:^|/)([A-E])_([ZONFS])/([ZONFS])(\d{3})\.txt$", re.IGNORECASE)


def _parse(text: bytes, source: str) -> np.ndarray:
    """``(4097,)`` int32 samples of one segment file; DataError naming ``source`` otherwise."""
    lines = text.decode("ascii", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    try:
        values = np.array([int(v) for v in lines], np.int32)
    except ValueError:
        bad = next(i for i, v in enumerate(lines) if not re.fullmatch(r"\s*[-+]?\d+\s*", v))
        raise DataError(f"{source}: line {bad + 1} is not an integer: {lines[bad][:40]!r}") from None
    if len(values) != N_NATIVE:
        raise DataError(f"{source}: {len(values)} samples, expected {N_NATIVE} (23.6 s at {NATIVE_SFREQ} Hz)")
    return values


def _check_sha(zip_path: Path) -> None:
    """Compare with ``SHA256SUMS`` beside the zip when that file lists it (the shipped copy does)."""
    sums = zip_path.parent / "SHA256SUMS"
    if not sums.is_file():
        return
    want = {parts[1].lstrip("*"): parts[0].lower() for line in sums.read_text().splitlines()
            if len(parts := line.split()) == 2}
    if zip_path.name not in want:
        return
    got = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    if got != want[zip_path.name]:
        raise DataError(f"{zip_path}: sha256 {got[:16]}... does not match {sums} ({want[zip_path.name][:16]}...)")


def _source(data_dir: Path) -> tuple[str, Path]:
    """``("zip", file)`` or ``("dir", folder)`` for a data directory, a zip file, or a folder with one zip."""
    data_dir = Path(data_dir)
    if data_dir.is_file():
        return "zip", data_dir
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: Bonn data directory not found")
    if any(p.is_dir() and re.fullmatch(r"[A-E]_[ZONFS]", p.name, re.IGNORECASE) for p in data_dir.iterdir()):
        return "dir", data_dir
    zips = sorted(data_dir.glob("*.zip"))
    if len(zips) != 1:
        raise DataError(f"{data_dir}: expected the Bonn zip or its extracted folders A_Z..E_S, "
                        f"found {len(zips)} zip file(s) and no set folders")
    return "zip", zips[0]


def read_segments(data_dir, sets: Sequence[str] = DEFAULT_SETS,
                  per_set: int | None = None) -> dict[str, np.ndarray]:
    """Native-rate segments of ``sets``: ``{segment id e.g. "S001": (4097,) int32}``, sorted by id.

    Args:
        data_dir: folder holding the zip (as shipped) or its extracted folders, or the zip itself.
        sets: set letters among A-E.
        per_set: keep only the first ``per_set`` segments (by id) of each set (small test runs);
            None keeps all.

    Raises:
        DataError: missing folder or set, bad zip, sha256 mismatch, malformed file (names the file).
    """
    sets = tuple(s.upper() for s in sets)
    unknown = [s for s in sets if s not in SETS]
    if unknown or not sets:
        raise DataError(f"Bonn sets {list(sets)}: each must be one of {sorted(SETS)}")
    kind, path = _source(Path(data_dir))
    found: dict[str, list[tuple[str, str]]] = {s: [] for s in sets}  # set -> [(segment id, name)]
    if kind == "zip":
        _check_sha(path)
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{path}: not a readable zip file ({exc})") from None
        names = archive.namelist()
    else:
        archive, names = None, [p.relative_to(path).as_posix() for p in sorted(path.glob("*/*")) if p.is_file()]
    for name in names:
        m = _NAME.search(name)
        if m and m.group(1).upper() in found and SETS[m.group(1).upper()] == m.group(2).upper() == m.group(3).upper():
            found[m.group(1).upper()].append((f"{m.group(3).upper()}{m.group(4)}", name))
    missing = [s for s, files in found.items() if not files]
    if missing:
        raise DataError(f"{path}: no files of Bonn set(s) {missing} (expected e.g. "
                        f"{missing[0]}_{SETS[missing[0]]}/{SETS[missing[0]]}001.txt)")
    out = {}
    with archive if archive is not None else contextlib.nullcontext():
        for s in sets:
            for seg_id, name in sorted(found[s])[:per_set]:
                where = f"{path}:{name}" if archive is not None else str(path / name)
                try:
                    raw = archive.read(name) if archive is not None else (path / name).read_bytes()
                except (zipfile.BadZipFile, OSError, EOFError) as exc:  # CRC errors, truncated members
                    raise DataError(f"{where}: unreadable ({exc})") from None
                out[seg_id] = _parse(raw, where)
    return out


def resample_to_512(x: np.ndarray) -> np.ndarray:
    """``(4097,)`` samples at 173.61 Hz -> ``(12083,)`` float32 at 512 Hz (ratio 174/59)."""
    from scipy.signal import resample_poly

    return resample_poly(np.asarray(x, np.float64), UP, DOWN).astype(np.float32)


def assign_fold_groups(segment_ids: Iterable[str], n_folds: int = 10, seed: int = 0) -> dict[str, int]:
    """Fold group (0..n_folds-1) per segment, stratified by set and seeded.

    Each set's segments are shuffled with a generator seeded by ``(seed, set)`` and dealt round
    robin, so every fold holds the same number (+-1) of each set, hence of each class.
    """
    if n_folds < 2:
        raise DataError(f"Bonn: n_folds must be >= 2, got {n_folds}")
    by_prefix: dict[str, list[str]] = {}
    for sid in segment_ids:
        by_prefix.setdefault(sid[0], []).append(sid)
    out = {}
    for prefix, ids in sorted(by_prefix.items()):
        if len(ids) < n_folds:
            raise DataError(f"Bonn: set with prefix {prefix} has {len(ids)} segments, fewer than {n_folds} folds")
        order = np.random.default_rng([seed, ord(prefix)]).permutation(sorted(ids))
        out.update({str(sid): i % n_folds for i, sid in enumerate(order)})
    return out


def discover_bonn(data_dir, sets: Sequence[str] = DEFAULT_SETS, n_folds: int = 10,
                  seed: int = 0, per_set: int | None = None) -> dict[str, list[Recording]]:
    """One unit ``{"bonn": [Recording, ...]}``: in-memory ``(12083, 1)`` float32 segments at 512 Hz.

    ``record_id`` is ``"bonn_<segment id>"`` (e.g. ``"bonn_S001"``); set-E recordings have
    ``ictal_spans = [(0, 12083)]`` and ``seizure_ids = (record_id,)``; ``info`` holds ``set``,
    ``native_sfreq`` and ``fold_group``. ``per_set``: see :func:`read_segments`.
    """
    segments = read_segments(data_dir, sets, per_set)
    groups = assign_fold_groups(segments, n_folds, seed)
    letter = {prefix: s for s, prefix in SETS.items()}
    recs = []
    for seg_id, native in segments.items():
        rid, set_name = f"{UNIT}_{seg_id}", letter[seg_id[0]]
        ictal = set_name in ICTAL_SETS
        recs.append(Recording(UNIT, rid, None, SFREQ, N_RESAMPLED, 1, [(0, N_RESAMPLED)] if ictal else [],
                              (rid,) if ictal else (), data=resample_to_512(native)[:, None],
                              info={"set": set_name, "native_sfreq": NATIVE_SFREQ, "fold_group": groups[seg_id]}))
    if not any(r.seizure_ids for r in recs) or all(r.seizure_ids for r in recs):
        log.warning("Bonn sets %s hold only one class; cross-validation needs ictal (E) and seizure-free sets",
                    list(sets))
    return {UNIT: recs}


def fold_splits(recordings: Sequence[Recording], test_group: int,
                val_group: int | None = None) -> dict[str, list[Recording]]:
    """Train/val/test split by ``info["fold_group"]`` (default val: the next group, cyclically).

    Raises:
        DataError: a recording has no fold group, or the test group is empty.
    """
    groups = sorted({r.info.get("fold_group", -1) for r in recordings})
    if -1 in groups:
        raise DataError("fold_splits: every recording needs info['fold_group']")
    if test_group not in groups:
        raise DataError(f"fold group {test_group} not found (have {groups})")
    if val_group is None:
        val_group = groups[(groups.index(test_group) + 1) % len(groups)]
    out: dict[str, list[Recording]] = {"train": [], "val": [], "test": []}
    for rec in recordings:
        g = rec.info["fold_group"]
        out["test" if g == test_group else "val" if g == val_group else "train"].append(rec)
    return out
