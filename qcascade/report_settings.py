"""The report's lines on how a unit was set up: electrode quality, the complex model's prior, input scaling."""

from __future__ import annotations

__all__ = ["quality_line", "prior_line", "scaling_line", "untrusted_line", "budget_line", "unseen_line",
           "unseen_free_line", "simple_prior_line"]


def quality_line(q: dict | None) -> str:
    """Which electrodes the selector was not allowed to deploy, and why."""
    if q is None:
        return "- electrode quality: not checked (`model.exclude_bad_electrodes: false`)"
    if q.get("skipped"):
        return f"- electrode quality: not judged ({q['skipped']})"
    return (f"- not deployable: line noise {q['line_noise'] or 'none'}, broadband noise {q['noisy'] or 'none'} "
            "(robust z > 5 against this patient's electrodes)")


def prior_line(p: dict | None) -> str:
    """Where the complex model started (``model.complex_prior``)."""
    if not p:
        return "- complex model: trained from random weights (no `model.complex_prior`)"
    left = ", this patient left out" if p.get("excluded") else ""
    return (f"- complex model: started from the prior `{p['folder']}`, trained on {len(p.get('patients') or [])} "
            f"patient(s) ({', '.join(p.get('patients') or [])}{left}; {p.get('windows')} windows)")


def complex_electrodes_line(c: dict | None) -> str:
    """Which electrodes the complex model reads (``model.complex_electrodes``)."""
    if not c:
        return "- complex model reads every live electrode"
    zone = "" if c.get("onset_zone") is None else (
        f"; of the onset zone {c['onset_zone']}: {c['onset_zone_read'] or 'none'}")
    return (f"- complex model reads {len(c['electrodes'])} of {c['n_live']} live electrodes (`model.complex_electrodes: "
            f"{c['k']}`, highest training line-length AUC): {c['electrodes']}{zone}")


def scaling_line(m: dict) -> str:
    """The input scaling (``data.input_scaling: auto``: why, and each fold's choice)."""
    per_fold = [f.get("input_scaling") for f in m.get("folds") or []]
    folds = f"; per fold: {', '.join(str(x) for x in per_fold)}" if len(set(per_fold)) > 1 else ""
    return (f"- input scaling{' of the deployed fold' if m.get('folds') else ''}: `{m.get('input_scaling', 'train_stats')}`"
            f" ({m.get('input_scaling_reason', 'configured')}){folds}")


def untrusted_line(m: dict) -> str:
    """Which folds' tau was not held to complex-only, because complex-only misses their validation seizure too
    (``train.tau_reference_min_f1``); empty when every fold's was."""
    folds = m.get("folds") or [{"fold": 0, "tau_reference_trusted": m.get("tau_reference_trusted", True)}]
    low = [str(f["fold"]) for f in folds if not f.get("tau_reference_trusted", True)]
    if not low:
        return ""
    which = f"fold(s) {', '.join(low)} of {len(folds)}" if m.get("folds") else "this fold"
    return (f"- tau of {which}: the least validation routing, not held to complex-only, whose own validation F1 is "
            f"below `train.tau_reference_min_f1` (it misses the validation seizure too; docs/calibration.md)")


def budget_line(m: dict) -> str:
    """Where ``train.tau_routing_budget`` replaced the calibrated tau by a cheaper one, and where it was
    refused; empty for runs without the budget."""
    folds = m.get("folds") or [{"fold": 0, "routing_budget": (m.get("choices") or {}).get("routing_budget")}]
    recs = [(f["fold"], f["routing_budget"]) for f in folds if f.get("routing_budget")]
    if not recs:
        return ""
    over = [(k, b) for k, b in recs if b.get("exceeded")]
    fell_back = lambda b: bool((b.get("fallback") or {}).get("applied"))  # noqa: E731
    done = [f"fold {k}: tau {b['calibrated_tau']:g} -> {b['tau']:g}" for k, b in over if b["applied"]]
    safe = [f"fold {k}: tau {b['calibrated_tau']:g} -> {b['tau']:g}" for k, b in over if fell_back(b)]
    kept = [f"fold {k}: {b['reason']}" for k, b in over if not b["applied"] and not fell_back(b)]
    return (f"- validation routing budget {recs[0][1]['budget']:g} (`train.tau_routing_budget`): exceeded on "
            f"{len(over)} of {len(recs)} fold(s)" + (f"; cheaper tau deployed on {', '.join(done)}" if done else "")
            + (f"; least-routing safe tau deployed (`train.tau_routing_budget_fallback`) on {', '.join(safe)}"
               if safe else "")
            + (f"; calibrated tau kept on {'; '.join(kept)}" if kept else ""))


def unseen_line(m: dict) -> str:
    """Which folds' training data hold a seizure the simple model's electrode does not see, the probe
    that turned on there (``train.gate_unseen_probe_every``), with ``train.gate_probe_choices`` the
    period each fold deployed, and :func:`unseen_free_line`; empty for runs from before it."""
    return "\n".join(line for line in (_unseen_probe_line(m), unseen_free_line(m)) if line)


def _unseen_probe_line(m: dict) -> str:
    folds = m.get("folds") or [{"fold": 0, "unseen_seizures": (m.get("choices") or {}).get("unseen_seizures"),
                                "probe_choice": (m.get("choices") or {}).get("probe")}]
    recs = [(f["fold"], f.get("unseen_seizures")) for f in folds]
    if all(u is None for _, u in recs):
        return ""
    hit = [(k, u) for k, u in recs if u and u["unseen"]]
    ratio = next(u["ratio"] for _, u in recs if u)
    what = f"(the simple model's ictal rate below {ratio:g} x the complex model's)"
    chosen = [(f["fold"], f["probe_choice"]) for f in folds if f.get("probe_choice")]
    choice = ("\n- probe period chosen per fold on validation (`train.gate_probe_choices`, the least routing that "
              "hides no more validation seizures and meets the margin): "
              + ", ".join(f"fold {k}: {c['chosen'] or 'none'} (of {'/'.join(p if p != '0' else 'none' for p in c['candidates'])})"
                          for k, c in chosen)) if chosen else ""
    weak = [(f["fold"], f["unseen_seizures"]["weak_simple"]) for f in folds
            if (f.get("unseen_seizures") or {}).get("weak_simple", {}).get("weak")]
    if weak:  # train.gate_weak_simple_*: the same probe, for a simple model that trails on validation
        w = weak[0][1]
        choice += (f"\n- simple model trailing complex-only on validation (F1 under {w['max_f1']:g} and {w['gap']:g} "
                   "under complex-only's; `train.gate_weak_simple_gap`), given the probe: " + ", ".join(
                       f"fold {k}: {u['simple_val_f1']:.2f} vs {u['complex_only_val_f1']:.2f}" for k, u in weak))
    if not hit:
        return f"- training seizures the electrode does not see {what}: none" + choice
    probes = sorted({u["probe_every"] for _, u in hit})
    probe = ("probe every " + "/".join(str(p) for p in probes) + " windows there (`train.gate_unseen_probe_every`)"
             if any(probes) else "no probe added (`train.gate_probe_every` set, or `gate_unseen_probe_every: 0`)")
    where = "; ".join(f"fold {k}: {', '.join(u['unseen'])}" for k, u in hit) if m.get("folds") else ", ".join(hit[0][1]["unseen"])
    return f"- training seizures the electrode does not see {what}: {where}; {probe}" + choice


def simple_prior_line(m: dict) -> str:
    """Which folds deploy the simple model refit on the other patients' pool (``model.simple_prior: choose``);
    empty for runs without the choice."""
    folds = m.get("folds") or [{"fold": 0, "simple_prior": (m.get("choices") or {}).get("simple_prior")}]
    recs = [(f["fold"], f["simple_prior"]) for f in folds if f.get("simple_prior")]
    if not recs:
        return ""
    pooled = [f"{k} ({c['val_routing']['own']:.3f} -> {c['val_routing']['pooled']:.3f})" for k, c in recs
              if c["chosen"] == "pooled"]
    return (f"- simple model refit on the other patients' pool (`model.simple_prior: choose`): deployed in "
            f"{len(pooled)} of {len(recs)} fold(s){': ' + ', '.join(pooled) if pooled else ''}; elsewhere the "
            "cascade's own routed no more validation windows (validation routing own -> pooled)")


def unseen_free_line(m: dict) -> str:
    """Which folds deploy the simple model trained without the seizures its electrode does not see
    (``train.gate_unseen_free_simple: choose``); empty where no fold made the choice."""
    folds = m.get("folds") or [{"fold": 0, "unseen_free_simple": (m.get("choices") or {}).get("unseen_free_simple")}]
    recs = [(f["fold"], f["unseen_free_simple"]) for f in folds if f.get("unseen_free_simple")]
    if not recs:
        return ""

    def cost(c, name):
        r = (c.get("candidates") or {}).get(name)
        return f"{r['macs_per_window']:.0f}" if r else "-"

    parts = [f"fold {k}: {c['chosen']} ({cost(c, 'own')} -> {cost(c, 'unseen_free')})" for k, c in recs]
    free = sum(c["chosen"] == "unseen_free" for _, c in recs)
    return (f"- simple model trained without the seizures its electrode does not see "
            f"(`train.gate_unseen_free_simple: choose`): deployed in {free} of {len(recs)} such fold(s); "
            "validation MACs per window own -> unseen-free: " + ", ".join(parts))


def sentinel_phrase(s: dict | None) -> str:
    """The deployed sentinel (``deploy.json``'s ``sentinel``) in words: "off", or when it is up and what it routes."""
    if not s:
        return "off"
    return (f"up at {s['electrodes']} electrodes over {s['ratio']:g}x their baseline ({2 ** s['memory_shift']} windows)"
            + (f" among the {len(s['watch'])} it reads (the complex model's and the simple model's)" if s.get("watch") else "")
            + (f" for {s['persist']} windows in a row" if (s.get("persist") or 1) > 1 else "")
            + (f", staying up while as many stay over {s['stay_ratio']:g}x" if s.get("stay_code") else "")
            + (f", or electrode {s['own_electrode']} alone over {s['own_ratio']:g}x" if s.get("own_code") else "")
            + f", then one window in {s['every']}" + (" that the simple model calls interictal" if s.get("interictal_only") else ""))
