"""step_csim's Vitis testbench data and closed loop (:mod:`qcascade.hls.testbench` does the work)."""

from __future__ import annotations

import logging

import numpy as np

from qcascade.errors import QCascadeError

log = logging.getLogger(__name__)

CLOSED_LOOP_MAX_WINDOWS = 600  # C simulation of the complex model: ~0.1 s a window


def loop_record(te) -> str:
    """The test recording with the most ictal windows (the closed loop runs it)."""
    return max(np.unique(te.record_ids), key=lambda r: (int(te.y[te.record_ids == r].sum()), str(r)))


def vitis_tb(top_dir, te, full, tau: float, rule: dict, simple_model, electrode: int,
             loop_raw: np.ndarray | None = None) -> dict:
    """Testbench data (routed windows, both prev_cls) with expected results, and the closed loop.

    ``loop_raw``: the closed-loop recording's windows (raw with input scaling) when the design's state
    spans windows (scaling, sentinel); the testbench then holds that recording's first 32 windows, in order.
    """
    from qcascade.hls.testbench import blend_candidates, closed_loop, run_tb, select_tb_windows, write_tb_data
    from qcascade.gate import cascade_decide

    state = cascade_decide(full["simple"], full["complex"], tau, **rule)
    prev, gap, probe = state["prev_cls"], state["gap"], rule["probe_every"]
    has_gap = bool(probe) or rule["sentinel"] is not None
    held = state["held"] if rule.get("hold") else None
    rec = loop_record(te)
    order = np.flatnonzero(te.record_ids == rec)
    order = order[np.argsort(te.start_s[order], kind="stable")]
    n_test = len(te.y)
    if loop_raw is not None:
        head = order[:32]
        # select_tb_windows with n = len(head) keeps every window, in order (the scaling state needs them so).
        _, prev_sel = select_tb_windows(full["simple"][head], prev[head], tau, rule["rule"], n=len(head),
                                        min_routed=4, gap=gap[head], probe_every=probe,
                                        held=None if held is None else held[head])
        tb = write_tb_data(top_dir, loop_raw[:len(head)], prev_sel, gap[head] if has_gap else None,
                           held=None if held is None else held[head])
        tb["n_blended"] = 0
        X, z = None, None
    else:
        X, z = te.X, full["simple"]
    extra = None if X is None else blend_candidates(X, te.y, z, prev, tau, rule["rule"], simple_model, electrode,
                                                    want=4, probe_every=probe)
    if extra is not None:  # the deployed tau routes (almost) no test window: add blended windows
        z, prev = np.concatenate([z, extra["z"]]), np.concatenate([prev, extra["prev"]])
        gap = np.concatenate([gap, np.zeros(len(extra["prev"]), np.int64)])
        held = None if held is None else np.concatenate([held, np.zeros(len(extra["prev"]), np.int64)])
    if X is not None:
        idx, prev_sel = select_tb_windows(z, prev, tau, rule["rule"], n=16, min_routed=4, gap=gap, probe_every=probe,
                                          held=held)
        # Only the chosen windows are read (long-term test sets stream from disk).
        X_sel = np.stack([X[i] if i < n_test else extra["X"][i - n_test] for i in idx])
        tb = write_tb_data(top_dir, X_sel, prev_sel, gap[idx] if probe else None,
                           held=None if held is None else held[idx])
        tb["n_blended"] = int(np.sum(idx >= n_test))
    proc = run_tb(top_dir)  # as Vitis csim runs it: must pass against its own expected results
    if proc.returncode != 0:
        raise QCascadeError(f"{top_dir}: cascade_tb failed on its own expected results:\n{proc.stderr[-2000:]}")
    # The recording with the most ictal windows, in time order, from its start.
    if len(order) > CLOSED_LOOP_MAX_WINDOWS:
        log.info("closed loop: first %d of %d windows of recording %s", CLOSED_LOOP_MAX_WINDOWS, len(order), rec)
        order = order[:CLOSED_LOOP_MAX_WINDOWS]
    loop_X = te.X[order] if loop_raw is None else loop_raw[:len(order)]  # raw: reset on its first window
    loop = closed_loop(top_dir, loop_X, tau=tau, rule=rule["rule"], keras_simple=full["simple"][order],
                       keras_complex=full["complex"][order],
                       sentinel=None if rule["sentinel"] is None else rule["sentinel"][order])
    loop["recording"] = str(rec)
    if loop["agreement_with_python_on_cpp_logits"] != 1.0:
        raise QCascadeError(f"{top_dir}: closed-loop C++ cascade disagrees with the Python cascade: {loop}")
    return {"vitis_tb": {k: tb[k] for k in ("n_windows", "n_routed", "prev_cls_values", "n_blended", "n_sentinel_up")},
            "closed_loop": loop}
