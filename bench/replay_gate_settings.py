"""Recalibrate the gate with other settings on the stored logits of finished runs, and say why windows route.

For each fold, ``val_logits.npz`` holds the validation logits of both models and where the sentinel
was up; ``test_logits.npz`` the same on the test windows and the deployed decisions. A *setting*
overrides some of the deployed gate (``deploy/deploy.json``) and of the calibration's options;
tau is then calibrated again on the validation windows exactly as ``step_calibrate`` does it
(:func:`qcascade.training.tau.calibrate_tau`, reference: the stored complex-only validation metrics),
and the gate is walked over the test windows. Pooled over a unit's folds it reports test F1,
routing, the MACs ratio against complex-only and the seizures complex-only detects that the
cascade misses. The ``deployed`` setting must reproduce every fold's tau and decisions, or the
replay refuses the unit (naming the file).

``--inside`` lists, per setting, the seizures complex-only calls ictal on at least one of their
windows and the cascade on none (:func:`bench.seizure_windows.missed_inside`). ``--why`` splits
the deployed routing by its first reason (:mod:`qcascade.routing_reasons`, which
``report.md`` also shows per run).

Settings are ``name:key=value,key=value``; keys: ``sentinel`` (on/off), ``sentinel_every``,
``interictal_only`` (on/off), ``hold``, ``tolerance`` (``train.tau_routing_tolerance``), ``margin``
(``train.tau_margin``),
``reference_f1`` (best/complex_only), ``fuse`` (a number ``a``: the complex model's logit difference
becomes ``(z1 - z0)_complex + a * (z1 - z0)_simple`` on validation and test, in the cascade and in
complex-only, and the reference is the fused complex-only's validation metrics; late fusion of the
two models, measured in round 31 of docs/generalisation.md; hidden seizures are still counted
against the unfused complex-only), ``sentinel_persist`` (``k``: the stored sentinel counts only on
windows where it has been up for ``k`` windows in a row of the recording, as
``train.gate_sentinel_persist: k`` does on a run made with 1; round 34), ``hold_max`` (the growing
hold's ceiling, ``train.gate_hold_max``; runs from before it have 0, the fixed hold; round 36),
``probes`` (periods joined by ``/``, e.g. ``16/8/4``: each fold calibrates a tau for the deployed
probe and for each of these, and keeps the one ``train.gate: auto``'s criterion picks on validation;
round 37; with ``probe_criterion=cost``, the one ``train.gate_probe_choices`` picks: round 50), ``max_routing`` (a routing budget ``B`` on validation: where the calibrated tau routes more
than ``B`` of the validation windows, the tau with the best validation F1 among those routing at
most ``B`` replaces it, ties to less routing; the cheapest tau where none does; with ``probes``, on the
chosen period's tau; round 38),
``reference_min_f1`` (``train.tau_reference_min_f1``; runs from before it have 0; round 38),
``tau_interictal`` (off/keep/margin: ``train.gate_tau_interictal``, the second threshold calibrated
after tau; default the run's own, off for runs from before it; round 42), ``smooth`` (``k``: the simple
model's logits on validation and test become their mean over the window and the ``k - 1`` windows
before it in the same recording, fewer at a recording's start; the gate, tau's calibration and the
simple model's final class all read the mean; round 43), ``budget`` and ``budget_f1_loss``
(``train.tau_routing_budget`` and its ``_max_f1_loss``: the cheaper tau where the calibrated one routes
past the budget and the cheaper one hides no validation seizure; default the run's own, off for runs from
before it; round 54; applied before ``max_routing``), ``budget_fallback`` (off/least_routing:
``train.tau_routing_budget_fallback``, where the budget's tau is refused the least-routing tau that hides no
validation seizure and keeps its F1 within ``budget_f1_loss``; default the run's own, off for runs from before
it; round 55), ``weak_gap`` and ``weak_max_f1`` (``train.gate_weak_simple_gap`` / ``_max_f1`` on a fold deployed
without a probe: where the simple model trails, the probe of ``train.gate_unseen_probe_every`` and
``train.gate_probe_choices``' choice; round 60), ``ictal_every`` (``train.gate_ictal_every``, the ictal stride; default the
run's own, 1 for runs from before it; round 63), ``ictal_after`` (ceiling/grown: ``train.gate_ictal_after``; default
the run's own, ``grown`` for runs from before it; round 65)::

    python -m bench.replay_gate_settings RUN/ID4/ID4 RUN/ID6/ID6 --why \\
        --settings every8:sentinel_every=8 hold0:hold=0 tol0:tolerance=0 grow8:hold_max=8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from bench import exit_code
from bench.replay_arrays import persisting, smoothed
from bench.replay_fold_choice import unit_fold_dirs
from bench.seizure_windows import detection_delays, missed_inside
from qcascade.config_train import TrainConfig
from qcascade.errors import DataError
from qcascade.evaluation import hidden_events, sum_hidden, window_metrics
from qcascade.gate import cascade_decide, logit_threshold
from qcascade.gate_fixed import fused_difference
from qcascade.routing_reasons import REASONS, routing_reasons
from qcascade.routing_budget import apply_routing_budget
from qcascade.training.tau import calibrate_tau, calibrate_tau_interictal, within_budget

KEYS = {"sentinel": "onoff", "sentinel_every": int, "interictal_only": "onoff", "hold": int, "hold_max": int,
        "tolerance": float, "margin": float,
        "reference_f1": str, "fuse": float, "sentinel_persist": int, "probes": "periods", "max_routing": float,
        "reference_min_f1": float, "tau_interictal": ("off", "keep", "margin"), "smooth": int,
        "probe_criterion": ("auto", "cost"), "budget": float, "budget_f1_loss": float, "ictal_every": int,
        "budget_fallback": ("off", "least_routing"), "weak_gap": float, "weak_max_f1": float,
        "ictal_after": ("ceiling", "grown")}
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string"}


def parse_setting(text: str) -> tuple[str, dict]:
    """``name:key=value,...`` (or ``deployed``) as ``(name, overrides)``; ValueError on an unknown key."""
    name, _, body = text.partition(":")
    over = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        if key not in KEYS:
            raise ValueError(f"setting {text!r}: unknown key {key!r} (known: {', '.join(KEYS)})")
        kind = KEYS[key]
        if kind == "onoff":
            if value not in ("on", "off"):
                raise ValueError(f"setting {text!r}: {key} must be on or off, got {value!r}")
            over[key] = value == "on"
        elif isinstance(kind, tuple):
            if value not in kind:
                raise ValueError(f"setting {text!r}: {key} must be one of {'/'.join(kind)}, got {value!r}")
            over[key] = value
        elif kind == "periods":
            try:
                over[key] = tuple(int(p) for p in value.split("/"))
            except ValueError:
                raise ValueError(f"setting {text!r}: {key} must be periods joined by '/', e.g. 16/8, got {value!r}") from None
            if not over[key] or min(over[key]) < 1:
                raise ValueError(f"setting {text!r}: {key} periods must be >= 1, got {value!r}")
        else:
            try:
                over[key] = kind(value)
            except ValueError:
                raise ValueError(f"setting {text!r}: {key} must be {_KIND_NAMES[kind]}, got {value!r}") from None
            if key in ("sentinel_every", "sentinel_persist", "smooth") and over[key] < 1:
                raise ValueError(f"setting {text!r}: {key} must be >= 1, got {over[key]}")
    if not name or name == "deployed":
        raise ValueError(f"setting {text!r}: needs a name other than 'deployed' before the colon")
    return name, over


def _setting_arg(text: str) -> tuple[str, dict]:
    try:
        return parse_setting(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _gate_kw(dep: dict, z, over: dict) -> dict:
    sen = dep.get("sentinel") or {}
    with_sentinel = bool(sen) and over.get("sentinel", True)
    return {"rule": dep.get("gate", "confidence"), "record_ids": z["record_ids"], "start_s": z["start_s"],
            "probe_every": int(dep.get("probe_every") or 0), "recheck_tau": float(dep.get("recheck_tau") or 0.0),
            "sentinel": (persisting(z["sentinel"], z["record_ids"], z["start_s"], int(over.get("sentinel_persist", 1)))
                         if with_sentinel else None),
            "sentinel_every": int(over.get("sentinel_every", sen.get("every", 1))),
            "sentinel_interictal_only": with_sentinel and bool(over.get("interictal_only", sen.get("interictal_only", False))),
            "hold": int(over.get("hold", dep.get("hold", 0))),
            "hold_max": int(over.get("hold_max", dep.get("hold_max", 0))),
            "fuse": 0.0 if "fuse" in over else float(dep.get("fuse") or 0.0),  # the setting's fuses the arrays
            "ictal_every": int(over.get("ictal_every", dep.get("ictal_every", 1)))
            if int(over.get("hold_max", dep.get("hold_max", 0))) > int(over.get("hold", dep.get("hold", 0))) > 0 else 1,
            # Deployments from before the key carried from the grown hold (round 63).
            "ictal_after": str(over.get("ictal_after", dep.get("ictal_after", "grown")))}


def _fused(z, a: float) -> dict:
    """The logits of ``z`` with both complex arrays' difference plus ``a`` times the simple model's.

    Returns a dict with every array of ``z``; ``complex_only_unfused`` keeps the stored complex-only
    logits (``(n, 2)``), against which hidden seizures are counted.
    """
    out = {k: np.asarray(z[k]) for k in z.files}
    out["complex_only_unfused"] = out["complex_only"]
    for key in ("complex", "complex_only") if a else ():
        d = fused_difference(out["simple"], out[key], a)
        out[key] = np.stack([-d / 2, d / 2], axis=1)
    return out


def replay_fold(fold_dir: Path, over: dict, train: TrainConfig) -> dict:
    """One fold recalibrated with ``over``: its tau, test decisions and the per-window MACs."""
    dep = json.loads((fold_dir / "deploy" / "deploy.json").read_text())
    a = float(over.get("fuse", 0.0))
    v, t = (_fused(np.load(fold_dir / name), a) for name in ("val_logits.npz", "test_logits.npz"))
    weak = _weak_simple(dep, v, over, train)
    for z in (v, t):
        z["simple"] = smoothed(z["simple"], z["record_ids"], z["start_s"], int(over.get("smooth", 1)))
    kw_val, kw_test = _gate_kw(dep, v, over), _gate_kw(dep, t, over)
    every = int(dep["macs_simple"]) + (int(dep["sentinel"].get("ops", 0)) if kw_val["sentinel"] is not None else 0)
    a_ref = a or kw_val["fuse"]  # a fused deployment calibrated against the fused complex-only (step_calibrate)
    ref = window_metrics(v["y"], None, (fused_difference(v["simple"], v["complex_only"], 0.0 if a else a_ref) > 0)
                         .astype(int)) if a_ref else dep["complex_only_val"]

    def calibrated(kw):
        return calibrate_tau(v["simple"], v["complex"], v["y"], every, dep["macs_complex"],
                             margin=over.get("margin", train.tau_margin),
                             grid=train.tau_grid(), routing_tolerance=over.get("tolerance", train.tau_routing_tolerance),
                             reference_f1=over.get("reference_f1", train.tau_reference_f1),
                             margin_windows=train.tau_margin_windows,
                             reference_min_f1=float(over.get("reference_min_f1", dep.get("tau_reference_min_f1", 0.0))),
                             reference={"sensitivity": ref["sensitivity"], "f1": ref["f1"]}, **kw)

    if weak:  # the fold's own period is the unseen-seizure probe's, then train.gate_probe_choices' choice
        kw_val, kw_test = ({**kw, "probe_every": train.gate_unseen_probe_every} for kw in (kw_val, kw_test))
    tau, sweep = calibrated(kw_val)
    probe = kw_val["probe_every"]
    if "probes" in over or weak:
        probe, tau = _choose_probe(v, kw_val, (probe,) + over.get("probes", tuple(train.gate_probe_choices)), calibrated,
                                   train, over.get("probe_criterion", "cost" if weak else "auto"))
        kw_val, kw_test = {**kw_val, "probe_every": probe}, {**kw_test, "probe_every": probe}
        sweep = calibrated(kw_val)[1]
    # The run's own train.tau_routing_budget (deploy.json; runs from before it have none), or the setting's.
    budget = dict((dep.get("choices") or {}).get("routing_budget") or {})
    budget.update({k: over[o] for k, o in (("budget", "budget"), ("max_f1_loss", "budget_f1_loss")) if o in over})
    if budget.get("budget"):
        fallback = over.get("budget_fallback", (budget.get("fallback") or {}).get("mode", "off"))
        tau, _ = apply_routing_budget(tau, sweep, budget["budget"], budget.get("max_f1_loss", train.tau_routing_budget_max_f1_loss),
                                      lambda x: cascade_decide(v["simple"], v["complex"], x, **kw_val),
                                      _Windows(v["y"], v["start_s"], v["record_ids"]), v["complex_only_unfused"],
                                      fallback=fallback)
    if "max_routing" in over:  # on the chosen probe period's sweep
        tau = within_budget(tau, sweep, over["max_routing"])
    # A deployment from before the key (no tau_interictal) had one threshold, whatever today's default.
    mode = over.get("tau_interictal", train.gate_tau_interictal if dep.get("tau_interictal") is not None else "off")
    if mode != "off":
        tau_i, _ = calibrate_tau_interictal(v["simple"], v["complex"], v["y"], tau, sweep, mode, grid=train.tau_grid(),
                                            **kw_val)
        kw_test = {**kw_test, "tau_interictal": tau_i}
    dec = cascade_decide(t["simple"], t["complex"], tau, **kw_test)
    return {"tau": tau, "dep_tau": float(dep["tau"]), "dec": dec, "t": t, "macs_every": every, "probe": probe, "kw": kw_test,
            "macs_complex": float(dep["macs_complex"]), "logit_threshold": logit_threshold(tau)}


def _weak_simple(dep: dict, v, over: dict, train: TrainConfig) -> bool:
    """``weak_gap``: this fold, deployed without a probe, has a simple model that trails complex-only on
    validation (:func:`qcascade.steps_choose.weak_simple_model` on the stored, unsmoothed logits)."""
    from qcascade.steps_choose import weak_simple_model

    if not over.get("weak_gap") or int(dep.get("probe_every") or 0):
        return False
    return weak_simple_model(v["y"], v["simple"], dep["complex_only_val"]["f1"], over["weak_gap"],
                             over.get("weak_max_f1", train.gate_weak_simple_max_f1))["weak"]


def _choose_probe(v, kw_val: dict, periods: tuple, calibrated, train: TrainConfig,
                  criterion: str = "auto") -> tuple[int, float]:
    """The probe period (and its tau) picked on validation, each period at its own calibrated tau:
    ``auto``: ``train.gate: auto``'s criterion (fewest hidden validation seizures, F1 within the margin
    of the best, the least routing); ``cost``: ``train.gate_probe_choices``' (:func:`choose_probe_period`)."""
    from qcascade.steps_choose import choose_probe_period, probe_candidates
    from qcascade.training.tau import choose_gate

    va = _Windows(v["y"], v["start_s"], v["record_ids"])
    rows = probe_candidates(periods, lambda p: calibrated({**kw_val, "probe_every": p}),
                            lambda tau, p: cascade_decide(v["simple"], v["complex"], tau, **{**kw_val, "probe_every": p}),
                            va, v["complex"])
    if criterion == "cost":
        chosen, _ = choose_probe_period(rows)
    else:
        margin = max(train.tau_margin, train.tau_margin_windows / float(max(int(np.sum(v["y"])), 1)))
        chosen, _ = choose_gate(rows, margin)
    return int(chosen), rows[chosen]["tau"]


class _Windows:
    """The fields of a validation window set that :func:`qcascade.steps_choose.hidden_on` reads."""

    def __init__(self, y, start_s, record_ids):
        self.y, self.start_s, self.record_ids = np.asarray(y), np.asarray(start_s), np.asarray(record_ids)


def why_routed(fold: dict) -> dict:
    """Routed test windows of a replayed fold counted by their first reason
    (:func:`qcascade.routing_reasons.routing_reasons`), flattened: ``<reason>``, ``<reason>_mended``,
    ``<reason>_harmed`` per reason of :data:`REASONS`, and ``ictal_routed``."""
    t = fold["t"]
    res = routing_reasons(t["simple"], t["complex"], t["y"], fold["tau"], fold["dec"], **fold["kw"])
    out = {"ictal_routed": sum(c["ictal"] for c in res["by_reason"].values())}
    for name, c in res["by_reason"].items():
        out[name], out[f"{name}_mended"], out[f"{name}_harmed"] = c["windows"], c["mended"], c["harmed"]
    return out


def unit_train_config(unit_dir: Path) -> TrainConfig:
    """The ``train`` section of the run that made ``unit_dir`` (``RUN/<patient>/<patient>``, or a run of one unit)."""
    from qcascade.config import load_config

    for path in (Path(unit_dir).parent / "config.yaml", Path(unit_dir) / "config.yaml"):
        if path.exists():
            return load_config(path).train
    raise DataError(f"{unit_dir}: no config.yaml here or one folder up (not a run?)")


def replay_unit(unit_dir: Path, settings: dict) -> dict:
    """Pooled test results per setting over a unit's folds (every fold read before any result)."""
    dirs = unit_fold_dirs(Path(unit_dir))
    train = unit_train_config(Path(unit_dir))
    out = {}
    for name, over in settings.items():
        folds = [replay_fold(d, over, train) for d in dirs]
        if name == "deployed":
            for d, f in zip(dirs, folds):
                t = f["t"]
                if f["tau"] != f["dep_tau"] or not (np.array_equal(f["dec"]["pred"], t["pred"])
                                                    and np.array_equal(f["dec"]["routed"], t["routed"])):
                    raise DataError(f"{d}: recalibrating the deployed gate does not reproduce deploy.json's tau "
                                    f"({f['tau']} vs {f['dep_tau']}) or test_logits.npz's decisions")
        y = np.concatenate([f["t"]["y"] for f in folds])
        pred = np.concatenate([f["dec"]["pred"] for f in folds])
        routed = np.concatenate([f["dec"]["routed"] for f in folds])
        macs = np.concatenate([f["macs_every"] + f["dec"]["routed"] * f["macs_complex"] for f in folds])
        complex_macs = np.concatenate([np.full(len(f["t"]["y"]), f["macs_complex"]) for f in folds])
        complex_only = np.concatenate([f["t"]["complex_only"].argmax(1) for f in folds])
        hidden = sum_hidden([hidden_events(f["t"]["y"], f["dec"]["pred"], f["t"]["complex_only_unfused"].argmax(1),
                                           f["t"]["start_s"], f["t"]["record_ids"]) for f in folds])
        inside = [m for f in folds for m in missed_inside(f["t"]["y"], f["dec"]["pred"],
                                                          f["t"]["complex_only_unfused"].argmax(1),
                                                          f["t"]["start_s"], f["t"]["record_ids"])]
        per_fold = [why_routed(f) for f in folds]
        why = {k: sum(w[k] for w in per_fold) for k in per_fold[0]}
        out[name] = {"f1": window_metrics(y, None, pred)["f1"],
                     "complex_only_f1": window_metrics(y, None, complex_only)["f1"], "routing": float(routed.mean()),
                     "macs_ratio": float(complex_macs.mean() / macs.mean()), "macs_mean": float(macs.mean()),
                     "complex_macs_mean": float(complex_macs.mean()),
                     "hidden": hidden["n_missed_but_reference_detected"], "missed_inside": inside, "taus": [f["tau"] for f in folds],
                     "probes": [f["probe"] for f in folds],
                     "why": why, "n": int(len(y)),
                     "delays_s": [d for f in folds for d in detection_delays(f["t"]["y"], f["dec"]["pred"],
                                                                             f["t"]["start_s"], f["t"]["record_ids"])]}
    return out


def _run(args) -> int:
    settings = dict([("deployed", {})] + list(args.settings))
    results = {unit: replay_unit(Path(unit), settings) for unit in args.units}
    print("| unit | " + " | ".join(f"{s}: F1 / complex-only F1 / routing / MACs x / hidden" for s in settings) + " |")
    print("|---" * (len(settings) + 1) + "|")
    for unit, res in results.items():
        cells = [f"{r['f1']:.3f} / {r['complex_only_f1']:.3f} / {r['routing']:.3f} / {r['macs_ratio']:.1f} / {r['hidden']}"
                 for r in res.values()]
        print(f"| {unit} | " + " | ".join(cells) + " |")
    if len(results) > 1:  # bench_stress's overall ratio: mean complex-only MACs / mean cascade MACs over the units
        print("| overall: MACs x / mean F1 / units with a hidden event | " + " | ".join(
            f"{np.mean([r[s]['complex_macs_mean'] for r in results.values()]) / np.mean([r[s]['macs_mean'] for r in results.values()]):.2f}"
            f" / {np.mean([r[s]['f1'] for r in results.values()]):.3f} / {sum(r[s]['hidden'] > 0 for r in results.values())}"
            for s in settings) + " |")
    if args.why:
        print("\nDeployed routing by first reason (windows; share of all test windows; +windows it mended, -windows it "
              "harmed: the complex model's class differs from the simple model's and is right / wrong):\n")
        print("| unit | windows | " + " | ".join(REASONS) + " | routed ictal windows |")
        print("|---" * (len(REASONS) + 3) + "|")
        for unit, res in results.items():
            r = res["deployed"]
            cells = [f"{r['why'][k]} ({r['why'][k] / r['n']:.3f}; +{r['why'][k + '_mended']} -{r['why'][k + '_harmed']})"
                     for k in REASONS] + [str(r["why"]["ictal_routed"])]
            print(f"| {unit} | {r['n']} | " + " | ".join(cells) + " |")
    if args.delays:
        print("\nDetection delay of the test seizures (s from onset to the first ictal decision, from 30 s before "
              "the onset to the seizure's end): mean over detected seizures / undetected seizures\n")
        print("| unit | " + " | ".join(settings) + " |")
        print("|---" * (len(settings) + 1) + "|")
        for unit, res in results.items():
            cells = []
            for r in res.values():
                got = [d for d in r["delays_s"] if d is not None]
                cells.append(f"{np.mean(got):.2f} / {len(r['delays_s']) - len(got)}" if got else
                             f"- / {len(r['delays_s'])}")
            print(f"| {unit} | " + " | ".join(cells) + " |")
    if args.inside:
        print("\nSeizures complex-only calls ictal on at least one of their windows and the cascade on none "
              "(bench.seizure_windows.missed_inside; SzCORE's hidden count can miss them): count, then record "
              "(complex-only ictal windows / seizure windows)\n")
        print("| unit | " + " | ".join(settings) + " |")
        print("|---" * (len(settings) + 1) + "|")
        for unit, res in results.items():
            cells = [f"{len(r['missed_inside'])}" + "".join(f"; {m['record']} ({m['reference_ictal']}/{m['n_windows']})"
                                                           for m in r["missed_inside"]) for r in res.values()]
            print(f"| {unit} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Recalibrate the gate with other settings on stored logits.")
    ap.add_argument("units", nargs="+", help="finished unit folders (RUN/<patient>/<patient>)")
    ap.add_argument("--settings", nargs="*", default=[], type=_setting_arg, help="name:key=value,... (see the module docstring)")
    ap.add_argument("--why", action="store_true", help="split the deployed routing by reason")
    ap.add_argument("--delays", action="store_true", help="also the test seizures' detection delays per setting")
    ap.add_argument("--inside", action="store_true",
                    help="also the seizures complex-only calls ictal inside and the cascade does not, per setting")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    return exit_code(lambda: _run(args))


if __name__ == "__main__":
    raise SystemExit(main())
