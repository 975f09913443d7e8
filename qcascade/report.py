"""Run reports: ``<unit>/report.md`` from what the steps measured, and ``summary.json`` for the run.

Nothing here computes a metric: every number is read from files the steps wrote in this run
(``metrics.json``, ``csim.json``, ``hw_summary.json``, ``steps.json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from qcascade.gate import logit_threshold
from qcascade.io_utils import atomic_write_json, atomic_write_text
from qcascade.report_settings import (complex_electrodes_line, prior_line, quality_line, scaling_line, sentinel_phrase,
                                      simple_prior_line, unseen_line, untrusted_line, budget_line)

METRIC_KEYS = ("accuracy", "sensitivity", "specificity", "f1", "auc")


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if math.isnan(v):
            return "n/a"
        return f"{v:.{digits}f}"
    return str(v)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _image(unit_dir: Path, name: str, caption: str) -> str:
    return f"![{caption}]({name})\n" if (unit_dir / name).exists() else ""


def metrics_markdown(m: dict, unit_dir: Path) -> str:
    """The model-quality part of a unit report, from its ``metrics.json``."""
    t = m["test"]
    dep = " of the deployed fold" if m.get("folds") else ""
    out = [f"- dataset `{m['dataset']}`, split `{m['split']}`, windows train/val/test{dep} = "
           f"{m['n_windows']['train']}/{m['n_windows']['val']}/{m['n_windows']['test']}"
           + (f"; {m['n_test_windows_pooled']} test windows over all folds" if m.get("n_test_windows_pooled") else ""),
           scaling_line(m),
           f"- selected electrode (0-based column): **{m['selected_electrode']}**"
           + (f" (onset zone: {m['soz_electrodes']}, "
              f"{'inside' if m['selected_electrode'] in m['soz_electrodes'] else 'OUTSIDE'})"
              if m.get("soz_electrodes") is not None else ""),
           quality_line(m.get("electrode_quality")),
           prior_line(m.get("complex_prior")),
           complex_electrodes_line(m.get("complex_electrodes")),
           f"- simple model **{m['simple_model']}**, gate `{m.get('gate', 'confidence')}`, tau = {m['tau']:.3f} "
           + (f"(logit threshold {logit_threshold(m['tau']):.3f})" if m["tau"] < 1
              else "(tau = 1: every window goes to the complex model; the simple path does not pay off here)")
           + ("" if m.get("tau_interictal") is None else f"; where it says interictal, tau = {m['tau_interictal']:.3f} "
              f"(logit threshold {logit_threshold(m['tau_interictal']):.3f}; `train.gate_tau_interictal`)")
           + (f"; a routed window decides on the complex logit difference + {m['fuse']:g} x the simple one "
              "(`train.gate_fuse`)" if m.get("fuse") else "") + (f"; inside a seizure the complex model confirmed, it "
           f"decides one window in {m['ictal_every']} (`train.gate_ictal_every`, from `{m.get('ictal_after', 'grown')}`)" if m.get("ictal_every", 1) > 1 else ""),
           untrusted_line(m), budget_line(m), unseen_line(m), simple_prior_line(m), ""]
    out += glance_markdown(m)
    rows = [[name] + [t[name].get(k) for k in METRIC_KEYS]
            for name in ("simple_only", "complex_only", "cascade_complex", "cascade", "feature_baseline") if name in t]
    pooled = f" (pooled over {len(m['folds'])} folds)" if m.get("folds") else ""
    out += [f"### Test windows{pooled}", _table(["model"] + list(METRIC_KEYS), rows),
            "`cascade_complex` is the cascade's own complex model on every window; `feature_baseline` is "
            "line length, variance and band powers of every live electrode into a logistic regression.", ""]
    out += folds_markdown(m)
    c = t["cascade"]
    out += [f"Cascade routing rate **{_fmt(c['routing_rate'])}**, average MACs/window "
            f"{c['avg_macs_per_window']:.0f}, **{_fmt(c['macs_ratio_vs_complex'], 1)}x** fewer than complex-only.", ""]
    if c.get("routing_reasons"):
        from qcascade.routing_reasons import routing_reason_rows

        out += ["Routed test windows by their first reason (`qcascade.routing_reasons`; mended / harmed: the two "
                "models disagree and the complex one is right / wrong):",
                _table(["reason", "windows", "share", "ictal", "mended", "harmed"],
                       routing_reason_rows(c["routing_reasons"])), ""]
    pair = m.get("complex_vs_complex_only")
    if pair and pair.get("trained_separately") is False:
        out += ["Complex-only is the cascade's own complex model: with the default loss its training is the "
                "complex-only objective (docs/calibration.md), so it was not trained twice.", ""]
    elif pair:
        out += [f"Paired baseline: complex-only starts from the cascade complex model's initial weights "
                f"and sees the same batches; on the test windows the two complex models differ by at most "
                f"{_fmt(pair['max_abs_logit_diff'])} in a logit and agree on "
                f"{_fmt(pair['decision_agreement'])} of the decisions.", ""]
    if m.get("gate_variants"):
        out += ["### Gate rules compared (each at the tau calibrated for it on validation" + dep + ")",
                _table(["gate", "tau", "F1", "sensitivity", "specificity", "routing rate", "MACs ratio",
                        "hidden seizures (vs complex-only / own complex)"],
                       [[k, v["tau"], v["f1"], v["sensitivity"], v["specificity"], v["routing_rate"],
                         v["macs_ratio_vs_complex"],
                         f"{_fmt(v.get('hidden_vs_complex_only'))} / {_fmt(v.get('hidden_vs_cascade_complex'))}"]
                        for k, v in m["gate_variants"].items()]), ""]
    out += choices_markdown(m) + hidden_markdown(m) + fit_gap_markdown(m)
    ev = t["events"]
    out += ["### Events (SzCORE, timescoring)",
            _table(["model", "sensitivity", "false alarms / h", "false alarms / 24 h", "mean delay (s)"],
                   [["cascade", ev["sensitivity"], ev["fa_per_hour"], ev.get("fa_per_24h"), ev["mean_delay_s"]]]
                   + [[k, v["sensitivity"], v["fa_per_hour"], v.get("fa_per_24h"), v["mean_delay_s"]]
                      for k, v in t.get("events_by_model", {}).items()]),
            f"{ev['n_detected']} of {ev['n_events']} seizures detected, {ev['n_false_alarms']} false alarm(s) "
            f"in {ev['hours']:.2f} h of test recordings (timescoring defaults: 30 s before / 60 s after "
            "tolerance, events merged when < 90 s apart, split at 5 min).", ""]
    cand = m.get("candidates", {})
    if cand:
        out += ["### Simple candidates alone (on the selected electrode" + (", deployed fold" if pooled else "") + ")",
                _table(["candidate", "F1", "AUC", "MACs/window"],
                       [[k, v["f1"], v["auc"], v["macs_per_window"]] for k, v in sorted(cand.items())]), ""]
    cp = m.get("candidates_pooled")
    if cp and cp.get("models"):
        out += [f"### Simple candidates alone, pooled over fold(s) {', '.join(map(str, cp['folds']))}",
                _table(["candidate", "validation F1 (mean over folds)", "test F1", "test AUC", "test windows"],
                       [[k, v["val_f1"], v["f1"], v["auc"], v["n_windows"]] for k, v in sorted(cp["models"].items())]),
                f"Chosen on validation: **{cp['chosen_on_val']}**." if cp.get("chosen_on_val") else "", ""]
    out += ["### Plots", _image(unit_dir, "tau_sweep.png", "tau sweep: F1 vs average cost"),
            _image(unit_dir, "training_curves.png", "training curves per stage"),
            _image(unit_dir, "selector_weights.png", "selector weights"),
            _image(unit_dir, "confusion.png", "confusion matrices")]
    return "\n".join(out)


def choices_markdown(m: dict) -> list[str]:
    """The simple model and the gate chosen on validation, with every candidate's numbers."""
    ch = m.get("choices") or {}
    out = []
    sm = ch.get("simple_model")
    if sm:
        an = sm.get("analysis") or {}
        flag = {True: "agrees", False: "**DISAGREES**", None: "n/a"}[sm.get("agrees_with_analysis")]
        out += ["### Simple model chosen on validation" + (" (deployed fold)" if m.get("folds") else ""),
                f"- `model.simple_model: {sm['mode']}` deploys **{sm['chosen']}**; by the rule ({sm['criterion']}, "
                f"margin {_fmt(sm['margin'])}): {sm.get('auto_choice', 'n/a')}",
                f"- `qcascade analyze` on the training and validation recordings recommends "
                f"**{an.get('recommended') or 'n/a'}** ({an.get('reason') or an.get('error', '')}): {flag}", "",
                _table(["candidate", "val F1", "val AUC", "MACs/window"],
                       [[k, v["val_f1"], v["val_auc"], v["macs_per_window"]] for k, v in sorted(sm["candidates"].items())]),
                ""]
    g = ch.get("gate")
    if g:
        out += ["### Gate chosen on validation" + (" (deployed fold)" if m.get("folds") else ""),
                f"- `train.gate` {g['mode']}: deployed **{g['chosen']}**; auto rule ({g['criterion']}): "
                f"{g['auto_reason']}", "",
                _table(["variant", "tau", "val F1", "val sensitivity", "val routing", "val hidden seizures"],
                       [[k, v["tau"], v["f1"], v["sensitivity"], v["routing_rate"], v["hidden_val"]]
                        for k, v in g["candidates"].items()]), ""]
    return out


def hidden_markdown(m: dict) -> list[str]:
    """Seizures a complex model detects on every window that the deployed cascade misses."""
    h = m["test"].get("hidden_seizures")
    if not h:
        return []
    rows = [[k, v["n_events"], v["n_reference_detected"], v["n_missed_but_reference_detected"],
             "; ".join(f"{e['record']} {e['onset_s']:.0f}-{e['offset_s']:.0f} s" for e in v["missed"]) or "-"]
            for k, v in h.items()]
    return ["### Hidden seizures (test)", _table(["reference", "seizures", "detected by reference",
                                                  "missed by the cascade", "which"], rows),
            f"Gate `{m.get('gate')}`, probe "
            f"{'every ' + str(m['probe_every']) + ' windows' if m.get('probe_every') else 'off'}, recheck "
            f"{'below ' + format(m['recheck_tau'], 'g') if m.get('recheck_tau') else 'off'}, sentinel "
            + sentinel_phrase(m.get("sentinel"))
            + f", hold {m.get('hold') or 'off'}"
            + (f", growing to {m['hold_max']}" if m.get("hold") and (m.get("hold_max") or 0) > m["hold"] else "") + ".", ""]


def fit_gap_markdown(m: dict) -> list[str]:
    """F1 on the training vs the validation windows per model (the overfitting gap), per fold."""
    folds = m.get("folds") or [{"fold": 0, "fit_gap": m.get("fit_gap")}]
    rows = []
    for f in folds:
        fg = f.get("fit_gap")
        if not fg:
            continue
        for k in fg["train"]:
            rows.append([f["fold"], k, fg["train"][k], fg["val"][k], fg["gap"][k]])
    if not rows:
        return []
    return ["### Train vs validation F1 (the overfitting gap)",
            _table(["fold", "model", "train F1", "val F1", "train - val"], rows), ""]


def glance_markdown(m: dict) -> list[str]:
    """At a glance: the CNNs against the classical feature baseline (flags a CNN that loses)."""
    t = m["test"]
    fb = t.get("feature_baseline")
    if not fb or fb.get("f1") is None:
        return []
    lines = ["### At a glance", f"- feature baseline (logistic regression) F1 **{_fmt(fb['f1'])}**, AUC {_fmt(fb['auc'])}"]
    for name in ("cascade", "complex_only", "cascade_complex"):
        f1 = t.get(name, {}).get("f1")
        if f1 is None:
            continue
        verdict = ("**LOSES to the feature baseline**" if f1 < fb["f1"] else "beats or ties the feature baseline")
        lines.append(f"- {name} F1 {_fmt(f1)}: {verdict}")
    return lines + [""]


def folds_markdown(m: dict) -> list[str]:
    """Per-fold table (each fold's own test records), mean +- sd over folds, and the timelines."""
    folds = m.get("folds")
    if not folds:
        return []
    rows = []
    for f in folds:
        t = f["test"]
        tau = f["tau"] if f.get("tau_interictal") is None else f"{f['tau']:.3f} / {f['tau_interictal']:.3f}"
        rows.append([f["fold"], ", ".join(f["test_records"]), f["selected_electrode"], tau, t["cascade"]["f1"],
                     t["complex_only"]["f1"], t.get("feature_baseline", {}).get("f1"), t["cascade"]["routing_rate"],
                     t["events"]["sensitivity"], t["events"]["fa_per_hour"]])
    st = m.get("fold_stats", {})

    def ms(key):
        v = st.get(key) or {}
        return f"{_fmt(v.get('mean'))} ± {_fmt(v.get('sd'))}" if v.get("mean") is not None else "n/a"

    rows.append(["mean ± sd", "", "", "", ms("cascade_f1"), ms("complex_only_f1"), ms("feature_baseline_f1"),
                 ms("routing_rate"), ms("event_sensitivity"), ms("fa_per_hour")])
    out = ["### Folds (every seizure is the test once)",
           _table(["fold", "test records", "electrode", "tau", "cascade F1", "complex-only F1", "feature F1",
                   "routing", "event sens.", "FA / h"], rows),
           f"Fold {m.get('deployed_fold', 0)} (the unit folder) holds the models that are deployed, converted and "
           "C-simulated; fold k >= 1 lives in `fold<k>/`.", "", "### Timelines (per test record)"]
    for f in folds:
        if len(f.get("timelines", [])) < len(f["test_records"]):
            out.append(f"Fold {f['fold']}: {len(f['timelines'])} of {len(f['test_records'])} test records drawn "
                       "(records holding a seizure first).")
        for name in f.get("timelines", []):
            rel = name if f["dir"] == "." else f"{f['dir']}/{name}"
            out.append(f"![fold {f['fold']}: {name}]({rel})")
    return out + [""]


def hardware_markdown(hw: dict) -> str:
    """Target, fit, latency/resources per block, energy per window and sized layers."""
    t = hw.get("target") or {}
    rows = []
    for name in ("simple", "complex", "cascade"):
        r = hw.get(name)
        if r:
            rows.append([name, r.get("source"), r.get("latency_cycles"), r.get("ii"), r.get("lut"),
                         r.get("dsp"), r.get("bram_18k")])
    text = ["## Hardware", ""]
    if t:
        text += [f"Target `{t.get('name')}` ({t.get('part')}: {t.get('dsp')} DSP, {t.get('bram_18k')} BRAM18K, "
                 f"{t.get('lut')} LUT) at {hw.get('budget', {}).get('clock_period_ns')} ns: "
                 f"fits **{hw.get('fits')}**, real-time margin (window period / worst-case latency) "
                 f"**{_fmt(hw.get('realtime_margin'), 1)}**.", ""]
    text += [_table(["block", "source", "latency (cycles, worst)", "II", "LUT", "DSP", "BRAM18K"], rows), ""]
    cas = hw.get("cascade", {})
    if cas.get("expected_latency_cycles") is not None:
        text += [f"Cascade expected latency (routing rate {_fmt(cas.get('routing_rate'), 3)}): "
                 f"{_fmt(cas.get('expected_latency_cycles'), 0)} cycles.", ""]
    e = hw.get("energy")
    if e:
        frac = e.get("simple_fraction_of_complex")
        text += [f"Energy per window ({e.get('source')}): simple {_fmt(e.get('simple_nj'), 1)} nJ, complex "
                 f"{_fmt(e.get('complex_nj'), 1)} nJ, cascade `E_simple + buffer + routing_rate x (E_complex + "
                 f"replay)` = **{_fmt(e.get('cascade_nj_per_window'), 1)} nJ**; the simple path costs "
                 f"{_fmt(None if frac is None else 100 * frac, 1)} % of the complex path.", ""]
    layers = hw.get("layers") or []
    if layers:
        text += ["Sized layers (ReuseFactor / Strategy chosen from the real-time budget and the target):", "",
                 _table(["model", "layer", "ReuseFactor", "Strategy", "parallel products", "DSP", "BRAM18K",
                         "latency (cycles)"],
                        [[x["model"], x["name"], x["reuse_factor"], x["strategy"], x["parallel_products"], x["dsp"],
                          x["bram_18k"], x["latency_cycles"]] for x in layers]), ""]
    if hw.get("rules"):
        text += ["Estimate rules:"] + [f"- {r}" for r in hw["rules"]] + [""]
    if hw.get("vendor_note"):
        text += [hw["vendor_note"], ""]
    return "\n".join(text)


def _bonn_section(ctx) -> str:
    """Bonn: pooled window metrics beside the line-length reference (:mod:`qcascade.data.bonn_eval`)."""
    from qcascade.data.bonn_eval import bonn_markdown, write_bonn_comparison

    b = ctx.cfg.data.bonn
    # getattr: a run whose process loaded the config before segments_per_set existed
    per_set = getattr(b, "segments_per_set", None)
    res = write_bonn_comparison(ctx.unit_dir, ctx.cfg.data.data_dir, b.sets, b.n_folds, b.seed, per_set)
    return "## Bonn: window metrics beside the line-length reference\n\n" + bonn_markdown(res)


def write_unit_report(ctx) -> Path:
    """Write ``<unit>/report.md`` from the unit's measured files."""
    unit_dir = ctx.unit_dir
    parts = [f"# qcascade report: {ctx.unit}", ""]
    hw = _read_json(unit_dir / "hw_summary.json")
    if hw is not None and hw.get("fits") is False:
        from qcascade.hls.design import fit_banner

        parts += [f"> {fit_banner(hw)}", ""]  # loud, first thing in the report
    m = _read_json(unit_dir / "metrics.json")
    if m is not None:
        parts += [metrics_markdown(m, unit_dir), ""]
        if m.get("dataset") == "bonn":
            parts += _bonn_section(ctx), ""
        if "routing_per_hour" in m.get("test", {}):
            from qcascade.events_stream import longterm_markdown

            parts += [longterm_markdown(m["test"]), ""]
    csim_md = unit_dir / "csim.md"
    if csim_md.exists():
        parts += [csim_md.read_text(), ""]
    if hw is not None:
        parts += [hardware_markdown(hw), ""]
    steps = _read_json(unit_dir / "steps.json")
    if steps:
        parts += ["## Step timings", _table(["step", "seconds"], [[k, v] for k, v in steps["timings_s"].items()]), ""]
    return atomic_write_text(unit_dir / "report.md", "\n".join(parts))


def _summary_row(unit: str, m: dict, csim: dict | None = None) -> dict:
    """One ``summary.json`` row from a unit's ``metrics.json`` (``m``) and ``csim.json`` (``csim``)."""
    t = m["test"]
    row = {"patient": unit, "selected_electrode": m["selected_electrode"], "simple_model": m["simple_model"],
           "gate": m.get("gate", "confidence"), "tau": m["tau"], "cascade_f1": t["cascade"]["f1"],
           "complex_only_f1": t["complex_only"]["f1"],
           "cascade_complex_f1": t["cascade_complex"]["f1"] if "cascade_complex" in t else None,
           "simple_only_f1": t["simple_only"]["f1"], "routing_rate": t["cascade"]["routing_rate"],
           "macs_ratio_vs_complex": t["cascade"]["macs_ratio_vs_complex"],
           "event_sensitivity": t["events"]["sensitivity"], "fa_per_hour": t["events"]["fa_per_hour"],
           "fa_per_24h": t["events"].get("fa_per_24h"),
           "feature_baseline_f1": t.get("feature_baseline", {}).get("f1")}
    if m.get("folds"):
        row["n_folds"] = len(m["folds"])
        for key in ("cascade_f1", "complex_only_f1", "feature_baseline_f1", "fa_per_hour"):
            st = m.get("fold_stats", {}).get(key) or {}
            row[f"{key}_fold_mean"], row[f"{key}_fold_sd"] = st.get("mean"), st.get("sd")
    cp = m.get("candidates_pooled") or {}
    if cp.get("chosen_on_val"):  # the simple candidate validation picks, and its pooled test F1
        row["candidate_chosen_on_val"] = cp["chosen_on_val"]
        row["candidate_chosen_f1"] = cp["models"][cp["chosen_on_val"]]["f1"]
    for name, v in m.get("gate_variants", {}).items():
        row[f"f1_gate_{name}"] = v["f1"]
        row[f"routing_gate_{name}"] = v["routing_rate"]
    row["probe_every"] = m.get("probe_every", 0)
    row["recheck_tau"], row["gate_hold"] = m.get("recheck_tau", 0.0), m.get("hold", 0)
    row["gate_hold_max"] = m.get("hold_max", 0)
    row["sentinel_ratio"] = (m.get("sentinel") or {}).get("ratio", 0.0)
    row["events_missed_but_complex_detected"] = t["cascade"].get("events_missed_but_complex_detected")
    ch = m.get("choices") or {}
    if ch.get("simple_model"):
        row["simple_model_analysis"] = (ch["simple_model"].get("analysis") or {}).get("recommended")
        row["simple_model_agrees_with_analysis"] = ch["simple_model"].get("agrees_with_analysis")
    for split in ("train", "val"):
        for k, v in ((m.get("fit_gap") or {}).get(split) or {}).items():
            if not k.startswith("candidate_"):
                row[f"{split}_f1_{k}"] = v
    if m.get("complex_vs_complex_only"):
        row["complex_vs_complex_only_max_abs_logit_diff"] = m["complex_vs_complex_only"]["max_abs_logit_diff"]
    if m.get("soz_electrodes") is not None:
        row["electrode_in_onset_zone"] = m["selected_electrode"] in m["soz_electrodes"]
    if csim:
        row["csim_cascade_decision_agreement"] = csim["cascade"]["decision_agreement"]
        row["csim_routing_agreement"] = csim["cascade"]["routing_agreement"]
        if "routed_windows" in csim.get("probe_tau", {}):  # else skipped: the calibrated tau routes both ways
            p = csim["probe_tau"]
            row["csim_probe_tau_routed"] = p["routed_windows"]
            row["csim_probe_tau_routing_agreement"] = p["routing_agreement"]
    return row


def write_summary(run_dir: Path, units: list[str]) -> dict:
    """``summary.json`` (a row per unit and the means) and a top-level ``report.md``."""
    rows = [_summary_row(u, m, _read_json(run_dir / u / "csim.json"))
            for u in units if (m := _read_json(run_dir / u / "metrics.json"))]
    for row in rows:
        hw = _read_json(run_dir / row["patient"] / "hw_summary.json")
        if hw and hw.get("target"):
            row.update(hw_target=hw["target"]["name"], hw_fits=hw.get("fits"),
                       hw_realtime_margin=hw.get("realtime_margin"), hw_dsp=hw["cascade"].get("dsp"),
                       hw_bram_18k=hw["cascade"].get("bram_18k"))
    means = {}
    for key in rows[0] if rows else ():
        vals = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)
                and r[key] is not None and not (isinstance(r[key], float) and math.isnan(r[key]))]
        if vals and key not in ("selected_electrode",):
            means[key] = sum(vals) / len(vals)
    summary = {"units": rows, "mean": means}
    atomic_write_json(run_dir / "summary.json", summary)
    if rows:
        keys = list(rows[0])
        md = ["# qcascade run summary", "", _table(keys, [[r.get(k) for k in keys] for r in rows]), "",
              "Means: " + ", ".join(f"{k} {_fmt(v)}" for k, v in means.items()), "",
              "Per-patient reports: " + ", ".join(f"[{u}]({u}/report.md)" for u in units)]
        atomic_write_text(run_dir / "report.md", "\n".join(md) + "\n")
    return summary
