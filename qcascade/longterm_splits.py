"""Splits of long-term recordings (hour files) in which every hour is tested exactly once.

Two schemes (``data.long_term.split``), both applied by tagging each hour
(:class:`qcascade.data.Recording`) with ``info["fold_group"]``, which
:func:`qcascade.folds.fold_plan` turns into folds (fold ``k`` tests group ``k``, validates on
group ``k + 1`` cyclically, trains on the rest):

* ``loso_hours`` (default): one group per seizure. An hour holding a seizure belongs to that
  seizure's group (an hour holding several, or seizures sharing an hour, merge into one group);
  every seizure-free hour joins the group of the seizure nearest in time. Over the folds every
  hour is tested once, each fold's test being the hours around one seizure plus its share of
  seizure-free hours. Needs >= 3 groups.
* ``time_ordered``: one fold. Hours up to the end of seizure ``train_seizures`` (default: all
  but the last third of the seizures, at least 2) train and validate (validation = the hours of
  the last of those seizures' groups); every later hour is tested. ``info["time_ordered"]`` makes
  the fold plan keep fold 0 only.

Hours are placed in time by ``info["start_s"]`` (seconds from the start of hour 1).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qcascade.errors import DataError


def _seizure_groups(recordings: Sequence) -> tuple[list[int | None], list[float]]:
    """Per hour: its seizure group (None if seizure-free); per group: its time (mean seizure time, s)."""
    group_of_seizure: dict[str, int] = {}
    groups: list[int | None] = []
    times: dict[int, list[float]] = {}
    for rec in recordings:
        if not rec.seizure_ids:
            groups.append(None)
            continue
        known = [group_of_seizure[s] for s in rec.seizure_ids if s in group_of_seizure]
        g = known[0] if known else len(times)
        for s in rec.seizure_ids:
            old = group_of_seizure.get(s)
            if old is not None and old != g:  # two groups share this hour: merge them
                for k, v in group_of_seizure.items():
                    if v == old:
                        group_of_seizure[k] = g
                groups = [g if x == old else x for x in groups]
                times.setdefault(g, []).extend(times.pop(old, []))
            group_of_seizure[s] = g
        t0 = float(rec.info.get("start_s", 0.0))
        times.setdefault(g, []).extend(t0 + (a + b) / 2 / 512.0 for a, b in rec.ictal_spans)
        groups.append(g)
    order = sorted(times, key=lambda g: min(times[g]))  # renumber 0..n-1 in time order
    renum = {g: k for k, g in enumerate(order)}
    return [None if g is None else renum[g] for g in groups], [float(np.mean(times[g])) for g in order]


def assign_hour_groups(recordings: Sequence, scheme: str = "loso_hours", train_seizures: int | None = None) -> int:
    """Tag every hour with ``info["fold_group"]`` (see the module doc); returns the number of folds.

    Args:
        recordings: one patient's hour recordings, in hour order.
        scheme: ``"loso_hours"`` or ``"time_ordered"``.
        train_seizures: ``time_ordered`` only: seizures (groups) before the test part.

    Raises:
        DataError: too few seizures for the scheme.
    """
    recordings = list(recordings)
    pid = recordings[0].patient_id if recordings else "?"
    groups, times = _seizure_groups(recordings)
    n = len(times)
    if scheme == "loso_hours":
        if n < 3:
            raise DataError(f"patient {pid}: {n} seizure group(s) in the long-term hours; "
                            "data.long_term.split: loso_hours needs >= 3")
        for rec, g in zip(recordings, groups):
            if g is None:
                mid = float(rec.info.get("start_s", 0.0)) + rec.n_samples / 1024.0
                g = int(np.argmin([abs(mid - t) for t in times]))
            rec.info["fold_group"] = g
            rec.info.pop("time_ordered", None)
        return n
    if scheme != "time_ordered":
        raise DataError(f"data.long_term.split: unknown scheme {scheme!r} (loso_hours, time_ordered)")
    m = train_seizures if train_seizures is not None else max(2, n - max(1, n // 3))
    if not 2 <= m < n:
        raise DataError(f"patient {pid}: {n} seizure group(s); time_ordered needs 2 <= train_seizures "
                        f"({m}) < seizures")
    last_train = None
    for k, (rec, g) in enumerate(zip(recordings, groups)):
        if g is not None and g == m - 1:
            last_train = k
    first_val = next(k for k, g in enumerate(groups) if g is not None and g == m - 1)
    for k, rec in enumerate(recordings):
        # group 0 = test (after the training seizures), 1 = validation, 2 = train
        rec.info["fold_group"] = 0 if k > last_train else (1 if k >= first_val else 2)
        rec.info["time_ordered"] = True
    return 1


def count_tested_hours(folds) -> dict[str, int]:
    """How often each hour is tested over ``folds`` (``[Fold]``): ``{record_id: count}``."""
    out: dict[str, int] = {}
    for f in folds:
        for rec in f.splits["test"]:
            out[rec.record_id] = out.get(rec.record_id, 0) + 1
    return out
