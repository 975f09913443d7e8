"""Train/validation/test splits that never let a test seizure reach training or normalisation.

* Patient-specific leave-one-seizure-out (LOSO): test = the recordings holding one seizure, val =
  those holding another, train = the rest. A seizure crossing two long-term files takes both.
* Cross-patient leave-one-patient-out (LOPO): test = all recordings of one patient, val = another
  patient, train = everyone else.

Provenance is checked again by :func:`qcascade.data.windows.check_no_leak` when windows are built.
"""

from __future__ import annotations

import logging
from typing import Iterator, Sequence

from qcascade.data.swec import Recording
from qcascade.errors import DataError

log = logging.getLogger(__name__)


def seizure_ids(recordings: Sequence[Recording]) -> list[str]:
    """Seizure ids in order of first appearance."""
    out: list[str] = []
    for rec in recordings:
        out += [s for s in rec.seizure_ids if s not in out]
    return out


def _resolve(which, recordings: Sequence[Recording], seizures: list[str]) -> str:
    if isinstance(which, int):
        return seizures[which]
    if which in seizures:
        return which
    for rec in recordings:  # a record id names its (first) seizure
        if rec.record_id == which and rec.seizure_ids:
            return rec.seizure_ids[0]
    raise DataError(f"seizure or record '{which}' not found (seizures: {seizures})")


def make_patient_splits(recordings: Sequence[Recording], test_seizure=-1, val_seizure=-2,
                        seizure_free: str = "train") -> dict[str, list[Recording]]:
    """Leave-one-seizure-out split of one patient's recordings.

    Args:
        recordings: one patient's recordings.
        test_seizure: seizure id, record id, or index into :func:`seizure_ids` (default: last).
        val_seizure: same, or None for no validation split (default: second to last).
        seizure_free: where recordings without any seizure go: ``"train"``, ``"test"`` or ``"drop"``.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``.

    Raises:
        DataError: fewer than 2 seizures (3 with validation), or test == val.
    """
    seizures = seizure_ids(recordings)
    need = 2 if val_seizure is None else 3
    if len(seizures) < need:
        pid = recordings[0].patient_id if recordings else "?"
        raise DataError(f"patient {pid}: {len(seizures)} seizure(s); leave-one-seizure-out needs >= {need}")
    test = _resolve(test_seizure, recordings, seizures)
    val = None if val_seizure is None else _resolve(val_seizure, recordings, seizures)
    if val == test:
        raise DataError(f"test and validation seizure are both '{test}'")
    out: dict[str, list[Recording]] = {"train": [], "val": [], "test": []}
    for rec in recordings:
        if test in rec.seizure_ids:
            out["test"].append(rec)
        elif val is not None and val in rec.seizure_ids:
            out["val"].append(rec)
        elif rec.seizure_ids or seizure_free == "train":
            out["train"].append(rec)
        elif seizure_free == "test":
            out["test"].append(rec)
        elif seizure_free != "drop":
            raise ValueError(f"seizure_free must be 'train', 'test' or 'drop', got {seizure_free!r}")
    # A recording holding the test (or val) seizure may also hold others: those seizures follow it.
    while True:
        held_out = {s for name in ("val", "test") for r in out[name] for s in r.seizure_ids}
        moved = [r for r in out["train"] if held_out & set(r.seizure_ids)]
        if not moved:
            break
        for rec in moved:
            out["train"].remove(rec)
            out["test"].append(rec)
    if not any(r.seizure_ids for r in out["train"]):
        raise DataError(f"patient {recordings[0].patient_id}: no seizure left for training")
    return out


def loso_folds(recordings: Sequence[Recording], seizure_free: str = "train") -> Iterator[tuple[str, dict]]:
    """All leave-one-seizure-out folds: ``(test_seizure, splits)``; val is the preceding seizure."""
    seizures = seizure_ids(recordings)
    for i, test in enumerate(seizures):
        yield test, make_patient_splits(recordings, test, seizures[i - 1], seizure_free)


def make_cross_patient_splits(patients: dict[str, Sequence[Recording]], test_patient: str,
                              val_patient: str | None = None) -> dict[str, list[Recording]]:
    """Leave-one-patient-out split.

    Args:
        patients: ``{patient_id: recordings}``.
        test_patient: held-out patient.
        val_patient: validation patient (default: the next patient after ``test_patient`` in sorted
            order when there are >= 3 patients, else none).
    """
    ids = sorted(patients)
    if test_patient not in patients:
        raise DataError(f"test patient '{test_patient}' not found (have {ids})")
    if len(ids) < 2:
        raise DataError("leave-one-patient-out needs >= 2 patients")
    if val_patient is None and len(ids) >= 3:
        val_patient = ids[(ids.index(test_patient) + 1) % len(ids)]
    if val_patient == test_patient or (val_patient is not None and val_patient not in patients):
        raise DataError(f"invalid validation patient '{val_patient}'")
    return {"train": [r for p in ids if p not in (test_patient, val_patient) for r in patients[p]],
            "val": list(patients[val_patient]) if val_patient else [],
            "test": list(patients[test_patient])}
