"""The C simulation section of a run's report.md (from ``csim.json`` as :mod:`qcascade.hls.csim` writes it)."""

from __future__ import annotations

__all__ = ["csim_markdown"]


def csim_markdown(result: dict) -> str:
    """A markdown section for the run's report.md."""
    lines = ["## C simulation (hls4ml / C++ cascade vs QKeras)", "",
             "| model | decision agreement | max abs logit error | mean abs logit error |", "|---|---|---|---|"]
    for name in ("simple", "complex"):
        r = result[name]
        lines.append(f"| {name} | {r['decision_agreement']:.4f} | {r['max_abs_logit_error']:.3g} | "
                     f"{r['mean_abs_logit_error']:.3g} |")
    c = result["cascade"]
    lines += ["", f"C++ cascade on {c['n_windows']} windows (tau {c['tau']}, logit threshold {c['threshold']:.6g}, "
              f"fixed-point {c['threshold_fixed']:.6g}):", "",
              f"- decision agreement with the Keras cascade: {c['decision_agreement']:.4f}",
              f"- routing agreement: {c['routing_agreement']:.4f} ({c['routed_windows']} routed in C++, "
              f"{c['keras_routed_windows']} in Keras)",
              f"- C++ gate vs Python reference gate on the C++ logits: {c['gate_agreement_cpp_vs_python']:.4f}"]
    if "sentinel_agreement_cpp_vs_python" in c:
        lines.append(f"- C++ sentinel vs Python sentinel: {c['sentinel_agreement_cpp_vs_python']:.4f} "
                     f"(up on {c['sentinel_up_windows']} of the windows)")
    if result.get("vitis_tb"):
        tb = result["vitis_tb"]
        lines.append(f"- Vitis testbench data: {tb['n_windows']} test windows, {tb['n_routed']} routed, "
                     "prev_cls values "
                     f"{tb['prev_cls_values'] or 'n/a (gate without prev_cls)'}"
                     + (f" ({tb['n_blended']} blended from an ictal and a non-ictal window)"
                        if tb.get("n_blended") else "")
                     + (f", sentinel up on {tb['n_sentinel_up']}" if tb.get("n_sentinel_up") is not None else "")
                     + "; expected results from this g++ run (`cascade_tb` exits 1 on any difference)")
    if result.get("closed_loop"):
        cl = result["closed_loop"]
        lines.append(f"- closed loop (class fed back inside the design) over recording {cl.get('recording')}: "
                     f"{cl['n_windows']} windows, {cl['n_routed']} routed; agreement with the Python cascade on the "
                     f"C++ logits {cl['agreement_with_python_on_cpp_logits']:.4f}, with the QKeras cascade "
                     f"{cl.get('agreement_with_keras_cascade', float('nan')):.4f}"
                     + (f"; sentinel agreement {cl['sentinel_agreement']:.4f} (up on {cl['sentinel_up_windows']})"
                        if "sentinel_agreement" in cl else ""))
    for name in ("simple", "complex"):
        tr = result[name].get("trace")
        if tr:
            where = (f"first layer diverging from Keras: `{tr['first_diverging_layer']}`" if tr["first_diverging_layer"]
                     else f"no layer differs from Keras by more than {tr['tol_lsb']:g} LSB (rounding near a tie)")
            lines.append(f"- {name}: {where} ({tr['n_windows']} mismatching windows traced)")
    return "\n".join(lines) + "\n"
