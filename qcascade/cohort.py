"""The recordings of a run, per patient, read from the configured dataset."""

from __future__ import annotations

from pathlib import Path

from qcascade.config import RunConfig

__all__ = ["discover_cohort"]


def discover_cohort(cfg: RunConfig, run_dir: Path) -> dict[str, list]:
    """Patient -> recordings of the run's dataset (file headers only; ``cfg.data.patients`` restricts
    them). The synthetic cohort is generated first, once, into ``run_dir/synthetic_data``."""
    from qcascade.data import discover

    if cfg.data.dataset == "synthetic":
        # The embedded cohort is written in the SWEC short-term layout so that the real loader
        # reads it, exactly as it would read a user's recordings.
        from qcascade.data.synthetic import make_cohort, write_swec_short

        data_dir = run_dir / "synthetic_data"
        if not (data_dir / ".complete").exists():
            cohort = make_cohort(n_patients=cfg.data.synthetic.n_patients,
                                 n_seizures=cfg.data.synthetic.n_seizures, seed=cfg.data.synthetic.seed)
            write_swec_short(cohort, data_dir)  # also writes ground_truth.json (onset zones)
            (data_dir / ".complete").write_text("ok\n")
        return discover("swec-short", data_dir, patients=cfg.data.patients, nan_policy=cfg.data.nan_policy)
    if cfg.data.dataset == "bonn":
        b = cfg.data.bonn
        return discover("bonn", Path(cfg.data.data_dir), patients=cfg.data.patients, sets=b.sets,
                        n_folds=b.n_folds, seed=b.seed, per_set=b.segments_per_set)
    if cfg.data.dataset == "swec-long":
        from qcascade.longterm_splits import assign_hour_groups

        lt = cfg.data.long_term
        found = discover("swec-long", Path(cfg.data.data_dir), patients=cfg.data.patients,
                         nan_policy=cfg.data.nan_policy, segment_s=lt.segment_s)
        if not cfg.pooled:  # hour-level folds (every hour tested once): docs/long_term.md
            for recs in found.values():
                assign_hour_groups(recs, lt.split, lt.train_seizures)
        return found
    return discover(cfg.data.dataset, Path(cfg.data.data_dir), patients=cfg.data.patients,
                    nan_policy=cfg.data.nan_policy)
