"""Every seizure tested once: the fold plan of a unit, the fold loop, and the pooled test metrics.

Fold plan of one patient (:func:`fold_plan`):

* >= ``carve_below`` seizures: leave-one-seizure-out. Fold 0 tests the last seizure and validates on the one
  before it (the split of a single-fold run); fold ``k >= 1`` tests seizure ``k - 1`` and
  validates on the seizure before it (cyclically). Seizure-free recordings train.
* 2 seizures: train on one, test on the other, both ways. Validation is a time block of the
  training record (:func:`carve_validation`) that starts at the middle of its seizure, so it
  holds ictal windows for tau calibration, while the first half of the seizure trains.
* Fewer than ``carve_below`` seizures (``data.carve_validation_below``, 4 by default: three-seizure
  patients too): the same for every fold, with a block carved from *each* training seizure's
  record: every seizure but the test one trains (first halves) and validates (second halves),
  instead of one seizure being held out for validation and a single one training
  (docs/generalisation.md, round 7).
* Recordings that all carry ``info["fold_group"]`` (e.g. the Bonn segments): the groups are the
  folds; fold ``k`` tests group ``k`` and validates on group ``k + 1`` (cyclically).
* Fewer than 2 seizures: refused.

Layout: fold 0 runs in the unit folder itself (its models are the ones deployed, converted and
C-simulated); folds ``k >= 1`` run the same training steps in ``<unit>/fold<k>/``, each with its
own ``steps.json``, so a killed run resumes inside the fold it was in. :func:`qcascade.steps_folds.step_folds` then
pools the test windows of all folds into the unit's ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from qcascade.artifacts import Artifacts, Deployment, WindowScores
from qcascade.errors import DataError

log = logging.getLogger(__name__)

MODELS = ("simple_only", "complex_only", "cascade_complex", "cascade", "feature_baseline")
VAL_BLOCK_FRACTION = 0.2


@dataclass
class Fold:
    """One fold: ``splits`` of recordings; ``carve_from`` = the training records whose time blocks
    validate (patients with fewer than ``carve_below`` seizures), else empty."""

    index: int
    splits: dict
    carve_from: tuple = ()

    @property
    def test_records(self) -> list[str]:
        return [r.record_id for r in self.splits["test"]]


def fold_plan(recordings: Sequence, which: str = "all", carve_below: int = 4) -> list[Fold]:
    """The folds of one patient's (or one grouped dataset's) recordings; see the module doc.

    Args:
        recordings: :class:`qcascade.data.Recording` objects of one unit.
        which: ``"all"`` or ``"first"`` (fold 0 only).
        carve_below: patients with fewer seizures than this (at least 3) validate on blocks carved
            from their training seizures instead of a held-out seizure.

    Raises:
        DataError: fewer than 2 seizures, or fewer than 3 fold groups.
    """
    from qcascade.data.splits import make_patient_splits, seizure_ids

    recordings = list(recordings)
    pid = recordings[0].patient_id if recordings else "?"
    if recordings and all("fold_group" in r.info for r in recordings):
        groups = sorted({int(r.info["fold_group"]) for r in recordings})
        if len(groups) < 3:
            raise DataError(f"{pid}: {len(groups)} fold group(s); grouped cross-validation needs >= 3")
        folds = []
        for k, g in enumerate(groups):
            v = groups[(k + 1) % len(groups)]
            part = {"train": [r for r in recordings if int(r.info["fold_group"]) not in (g, v)],
                    "val": [r for r in recordings if int(r.info["fold_group"]) == v],
                    "test": [r for r in recordings if int(r.info["fold_group"]) == g]}
            folds.append(Fold(k, part))
        time_ordered = all(r.info.get("time_ordered") for r in recordings)  # one fold (qcascade.longterm_splits)
        return folds[:1] if which == "first" or time_ordered else folds
    seizures = seizure_ids(recordings)
    n = len(seizures)
    if n < 2:
        raise DataError(f"patient {pid}: {n} seizure(s); evaluation needs >= 2 "
                        "(train on one seizure, test on another)")
    if carve_below < 3:
        raise ValueError(f"carve_below must be >= 3 (two-seizure patients always carve), got {carve_below}")
    order = [n - 1] + list(range(n - 1))  # fold 0 = today's single split: the last seizure is the test
    folds, seen = [], []
    for test in order:
        if n < carve_below:
            part = make_patient_splits(recordings, seizures[test], None)
            train_sz = [r for r in part["train"] if r.seizure_ids]
            fold = Fold(len(folds), part, carve_from=tuple(train_sz))
        else:
            val = (test - 1) % n
            fold = Fold(len(folds), make_patient_splits(recordings, seizures[test], seizures[val]))
        if set(fold.test_records) in seen:  # two seizures in one record: that record is tested once
            continue
        seen.append(set(fold.test_records))
        folds.append(fold)
        if which == "first":
            break
    return folds


def carve_validation(train, record, n_times: int, fraction: float = VAL_BLOCK_FRACTION,
                     sfreq: float = 512.0) -> tuple:
    """Split a time block off a training record's windows for validation (two-seizure patients).

    The block starts at the middle of the record's first seizure and lasts
    ``max(fraction * duration, rest of the seizure + one window)`` seconds (clipped at the record
    end): validation then holds ictal windows, and training keeps the seizure's first half.
    Windows that straddle a block edge are dropped, so no sample is in both sets.

    Args:
        train: the training :class:`qcascade.data.WindowSet` (all training records).
        record: the :class:`qcascade.data.Recording` to carve from.
        n_times: samples per window; fraction: block length as a share of the record.

    Returns:
        ``(train, val, block)`` with ``block = {"record", "start_s", "end_s"}``.
    """
    win = n_times / sfreq
    dur = record.n_samples / sfreq
    if record.ictal_spans:
        on, off = (s / sfreq for s in record.ictal_spans[0])
        a = (on + off) / 2
        b = min(dur, a + max(fraction * dur, off - a + win))
    else:
        a, b = (1 - fraction) * dur, dur
    mine = train.record_ids == record.record_id
    st = train.start_s
    val_idx = np.flatnonzero(mine & (st >= a - 1e-9) & (st + win <= b + 1e-9))
    keep = np.flatnonzero(~mine | (st + win <= a + 1e-9) | (st >= b - 1e-9))
    return subset(train, keep), subset(train, val_idx), {"record": record.record_id, "start_s": a, "end_s": b}


def on_stride_grid(ws, stride_s: float):
    """The windows of ``ws`` that start on the ``stride_s`` grid of their recording (drops the
    sub-stride ictal training windows of ``data.train_ictal_stride_s`` from a carved block)."""
    from qcascade.data.windows import stride_grid_rows

    return subset(ws, stride_grid_rows(ws.start_s, stride_s))


def subset(ws, idx: np.ndarray):
    """The windows ``idx`` of a :class:`qcascade.data.WindowSet` (copies)."""
    from qcascade.data.aligned import aligned_take
    from qcascade.data.windows import WindowSet

    return WindowSet(aligned_take(ws.X, idx), ws.y[idx], ws.mask, ws.record_ids[idx], ws.start_s[idx], ws.patient_ids[idx],
                     dict(ws.patient_masks))


def unit_splits(ctx) -> tuple[dict, list]:
    """Recording splits of a unit or fold context, and the records to carve validation from.

    A :class:`FoldContext` uses its fold; a unit uses fold 0 of each patient (merged when pooled).
    """
    fold = getattr(ctx, "fold", None)
    if fold is not None:
        return fold.splits, list(fold.carve_from)
    by_patient: dict = {}
    for rec in ctx.recordings:
        by_patient.setdefault(rec.patient_id, []).append(rec)
    if ctx.cfg.data.split == "lopo":
        from qcascade.data import make_cross_patient_splits

        return make_cross_patient_splits(by_patient, test_patient=sorted(by_patient)[-1]), []
    splits: dict = {"train": [], "val": [], "test": []}
    carve = []
    for recs in by_patient.values():
        f0 = fold_plan(recs, "first", ctx.cfg.data.carve_validation_below)[0]
        for name, part in f0.splits.items():
            splits[name] += part
        carve += f0.carve_from
    return splits, carve


@dataclass
class UnitContext:
    """What every step of one unit sees.

    Attributes:
        cfg: the resolved run config.
        run_dir: ``projects/<run>``.
        unit: patient id (or ``"pooled"``); the unit folder is ``run_dir / unit``.
        recordings: the unit's recordings (lazily read :class:`qcascade.data.Recording` objects).
        artifacts: the typed artifacts the steps of this process hand each other
            (:class:`qcascade.artifacts.Artifacts`; files on disk are read on a resume).
        fold_pool: the :class:`qcascade.fold_pool.FoldPool` training this unit's folds in
            worker processes, or None (``step_folds`` trains them here, one after the other).
        from_step: the run's ``--from-step``; ``step_folds`` reruns every fold from it too.
    """

    cfg: object
    run_dir: Path
    unit: str
    recordings: list
    artifacts: Artifacts = field(default_factory=Artifacts)
    fold_pool: object = None
    from_step: str | None = None

    @property
    def unit_dir(self) -> Path:
        return self.run_dir / self.unit

    def path(self, *parts: str) -> Path:
        p = self.unit_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


@dataclass
class FoldContext:
    """A :class:`UnitContext` for fold ``k >= 1``: same unit, own folder."""

    cfg: object
    run_dir: Path
    unit: str
    recordings: list
    fold: Fold
    artifacts: Artifacts = field(default_factory=Artifacts)

    @property
    def unit_dir(self) -> Path:
        return self.run_dir / self.unit / f"fold{self.fold.index}"

    def path(self, *parts: str) -> Path:
        p = self.unit_dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def fold_dirs(unit_dir: Path, n: int) -> list[Path]:
    """Folder of each fold: fold 0 is the unit folder itself."""
    return [unit_dir] + [unit_dir / f"fold{k}" for k in range(1, n)]


def _mean_sd(vals: list) -> dict:
    v = [float(x) for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else None, "n": len(v)}


FOLD_STATS = {  # name -> path into a fold's "test" dict
    "cascade_f1": ("cascade", "f1"), "complex_only_f1": ("complex_only", "f1"),
    "cascade_complex_f1": ("cascade_complex", "f1"), "simple_only_f1": ("simple_only", "f1"),
    "feature_baseline_f1": ("feature_baseline", "f1"), "cascade_auc": ("cascade", "auc"),
    "feature_baseline_auc": ("feature_baseline", "auc"), "routing_rate": ("cascade", "routing_rate"),
    "event_sensitivity": ("events", "sensitivity"), "fa_per_hour": ("events", "fa_per_hour"),
    "fa_per_24h": ("events", "fa_per_24h"),
}


def pool_folds(dirs: Sequence[Path]) -> dict:
    """The unit's ``metrics.json`` from the folds in ``dirs`` (fold 0 first: the deployed one).

    Every key of a single fold's metrics is kept, from fold 0 (selected electrode, tau, tau sweep,
    gate variants, candidates describe the deployed models); ``test`` is recomputed on the pooled
    test windows (each scored by the fold that held it out; events and false alarms summed, hours
    = all tested hours); ``folds`` lists each fold; ``fold_stats`` = mean and sd over folds.
    """
    from qcascade.evaluation import cascade_efficiency, sum_events, sum_hidden, window_metrics
    from qcascade.routing_reasons import sum_routing_reasons

    per = [json.loads((d / "fold_metrics.json").read_text()) for d in dirs]
    logs = [WindowScores.load(d) for d in dirs]
    y = np.concatenate([z.y for z in logs])
    routed = np.concatenate([z.routed for z in logs])
    simple = np.concatenate([z.simple for z in logs])
    cplx = np.concatenate([z.complex for z in logs])
    scores = {"simple_only": simple, "complex_only": np.concatenate([z.complex_only for z in logs]),
              "cascade_complex": cplx, "cascade": np.where(routed[:, None], cplx, simple),
              "feature_baseline": np.concatenate([z.feature for z in logs])}
    preds = {k: v.argmax(1) for k, v in scores.items() if v.ndim == 2}
    preds["cascade"] = np.concatenate([z.pred for z in logs])
    preds["feature_baseline"] = (scores["feature_baseline"] >= 0.5).astype(int)
    dep = Deployment.load(Path(dirs[0]))
    test = {k: window_metrics(y, scores[k], preds[k]) for k in MODELS}
    test["cascade"].update(cascade_efficiency(routed, dep.macs_every_window, dep.macs_complex))
    reasons = sum_routing_reasons([m["test"]["cascade"].get("routing_reasons") for m in per])
    if reasons is not None:
        test["cascade"]["routing_reasons"] = reasons
    test["events"] = sum_events([m["test"]["events"] for m in per])
    test["events_by_model"] = {k: sum_events([m["test"]["events_by_model"][k] for m in per])
                               for k in per[0]["test"]["events_by_model"]}
    if all("hidden_seizures" in m["test"] for m in per):
        test["hidden_seizures"] = {k: sum_hidden([m["test"]["hidden_seizures"][k] for m in per])
                                   for k in per[0]["test"]["hidden_seizures"]}
        test["cascade"]["events_missed_but_complex_detected"] = \
            test["hidden_seizures"]["vs_complex_only"]["n_missed_but_reference_detected"]
    out = dict(per[0])
    out["test"] = test
    out["n_test_windows_pooled"] = int(len(y))
    out["deployed_fold"] = 0
    out["folds"] = [{"fold": k, "dir": "." if k == 0 else Path(d).name, "test_records": m["test_records"],
                     "val_records": m.get("val_records"), "tau": m["tau"], "tau_interictal": m.get("tau_interictal"),
                     "selected_electrode": m["selected_electrode"],
                     "tau_reference_trusted": m.get("tau_reference_trusted", True),
                     "unseen_seizures": (m.get("choices") or {}).get("unseen_seizures"),
                     "simple_prior": (m.get("choices") or {}).get("simple_prior"),
                     "probe_choice": (m.get("choices") or {}).get("probe"),
                     "routing_budget": (m.get("choices") or {}).get("routing_budget"),
                     "unseen_free_simple": (m.get("choices") or {}).get("unseen_free_simple"),
                     "timelines": m.get("timelines", []), "test": m["test"], "gate": m.get("gate"),
                     "probe_every": m.get("probe_every"), "recheck_tau": m.get("recheck_tau"),
                     "hold": m.get("hold", 0), "hold_max": m.get("hold_max", 0),
                     "sentinel": m.get("sentinel"), "simple_model": m.get("simple_model"),
                     "input_scaling": m.get("input_scaling"),
                     "fit_gap": m.get("fit_gap")} for k, (d, m) in enumerate(zip(dirs, per))]
    out["fold_stats"] = {name: _mean_sd([m["test"].get(a, {}).get(b) for m in per])
                         for name, (a, b) in FOLD_STATS.items()}
    cand = pool_candidates(dirs)
    if cand["models"]:
        out["candidates_pooled"] = cand
    return out


CANDIDATES = ("simple_A", "simple_B", "simple_C")


def candidate_val_f1(entry: dict):
    """Validation F1 of one ``baselines.json`` entry: of the exported model when recorded, else the
    training history's last epoch (runs from before ``val_metrics`` existed); None without either."""
    if entry.get("val_metrics"):
        return entry["val_metrics"]["f1"]
    hist = entry.get("history", {}).get("val_f1") or []
    return float(hist[-1]) if hist else None


def pool_candidates(dirs: Sequence[Path]) -> dict:
    """The simple candidates trained alone, pooled over the folds that trained all of them.

    ``model.candidate_folds: all`` trains them in every fold, ``deployed`` in fold 0 only. The
    candidate to deploy is chosen on validation (mean over those folds of each exported model's
    validation F1), never on test.

    Returns:
        ``{"folds": [fold index, ...], "models": {"A": {window metrics..., "val_f1"}, ...},
        "chosen_on_val": "A" | None}``; ``models`` is empty when no fold trained them.
    """
    from qcascade.evaluation import window_metrics

    dirs = [Path(d) for d in dirs]
    have = [k for k, d in enumerate(dirs) if all((d / "baselines" / f"{c}_test_logits.npy").exists()
                                                  for c in CANDIDATES)]
    models = {}
    for c in CANDIDATES:
        if not have:
            break
        y = np.concatenate([np.load(dirs[k] / "test_logits.npz")["y"] for k in have])
        z = np.concatenate([np.load(dirs[k] / "baselines" / f"{c}_test_logits.npy") for k in have])
        vals = [candidate_val_f1(json.loads((dirs[k] / "baselines.json").read_text()).get(c, {})) for k in have]
        m = window_metrics(y, z, z.argmax(1))
        m["n_windows"] = int(len(y))
        m["val_f1"] = float(np.mean(vals)) if all(v is not None for v in vals) else None
        models[c.split("_")[1]] = m
    scored = {k: v["val_f1"] for k, v in models.items() if v["val_f1"] is not None}
    return {"folds": have, "models": models, "chosen_on_val": max(scored, key=scored.get) if scored else None}
