"""The Vitis testbench data of a generated cascade top level, and the closed-loop check.

* :func:`select_tb_windows` picks test windows that exercise the whole design: routed and
  final windows and, for the gate rules that read it, both values of the previous class. When the
  deployed ``confidence`` gate routes fewer than four test windows, :func:`blend_candidates` adds
  averages of an ictal and a non-ictal test window (``vitis_tb.n_blended`` counts them).
* :func:`write_tb_data` writes them as the testbench input and runs the g++ C simulation once to
  write the expected results (``tb_data/cascade_expected.txt``). ``cascade_tb`` run without
  arguments (as Vitis csim and cosim run it) compares every line with that file and exits 1 on a
  difference, so Vitis csim/cosim fail when the synthesised design disagrees with the g++ build.
* :func:`closed_loop` runs one whole recording with the previous class held inside the design
  (``prev_load`` only on the first window) and compares it with the Python cascade.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from qcascade.errors import QCascadeError
from qcascade.hls import toplevel as tl
from qcascade.gate import cascade_decide, simple_is_final, uses_state

KEEP_STATE = 2  # .prev byte: keep the design's own previous class (closed loop)


def select_tb_windows(z_simple: np.ndarray, prev: np.ndarray, tau: float, rule: str, n: int = 16,
                      min_routed: int = 4, gap: np.ndarray | None = None,
                      probe_every: int = 0, held: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and prev_cls of ``n`` testbench windows with routed windows and both prev values.

    Args:
        z_simple: ``(N, 2)`` simple-model logits of the candidate (test) windows.
        prev: ``(N,)`` their previous class in the deployed cascade.
        tau, rule: the deployed gate.
        n: windows wanted; ``min_routed``: routed windows wanted (at least ``n // 4``).
        gap, probe_every: the windows' probe gap and the probe period (gate with a probe); the
            selected windows keep their gap (``gap[idx]``).
        held: the windows' hold counter (gate with a hold; None: none); kept like ``gap``.

    Returns:
        ``(idx, prev_sel)``: sorted indices into the candidates and the prev_cls each gets. For the
        rules that read it, a window's prev_cls may be flipped from its recorded value to reach
        both values or enough routed windows: the hardware must handle either input, and the
        expected results come from the same inputs.
    """
    z = np.asarray(z_simple, np.float64)
    prev = np.asarray(prev, np.int64).copy()
    n = min(n, len(z))
    want = min(n, max(min_routed, n // 4))
    with_prev = uses_state(rule, probe_every, hold=int(held is not None))

    def routed_mask(p):
        return ~simple_is_final(z, tau, rule, p if with_prev else None, gap, probe_every, held=held)

    routed = routed_mask(prev)
    if with_prev and routed.sum() < want:
        # Under confirm_changes / confirm_ictal_hold a confident window with the other previous
        # class is routed: flip prev on confident windows until enough are routed.
        for i in np.flatnonzero(~routed)[: want - int(routed.sum())]:
            prev[i] = 1 - prev[i]
        routed = routed_mask(prev)
    r_idx, f_idx = np.flatnonzero(routed), np.flatnonzero(~routed)
    take_r = r_idx[np.linspace(0, len(r_idx) - 1, min(want, len(r_idx))).astype(int)] if len(r_idx) else r_idx
    rest = n - len(take_r)
    take_f = f_idx[np.linspace(0, len(f_idx) - 1, min(rest, len(f_idx))).astype(int)] if len(f_idx) else f_idx
    idx = np.unique(np.concatenate([take_r, take_f]))
    if len(idx) < n:  # too few of one kind: fill with any other window
        idx = np.unique(np.concatenate([idx, np.setdiff1d(np.arange(len(z)), idx)[: n - len(idx)]]))
    sel = prev[idx]
    if with_prev:
        for value in (0, 1):
            if not np.any(sel == value):
                sel[np.flatnonzero(~routed[idx])[-1] if np.any(~routed[idx]) else -1] = value
    return idx, sel


def blend_candidates(X: np.ndarray, y: np.ndarray, z: np.ndarray, prev: np.ndarray, tau: float, rule: str,
                     simple_model, electrode: int, want: int = 4, n_pairs: int = 256, seed: int = 0,
                     probe_every: int = 0) -> dict | None:
    """Extra candidate windows when the deployed gate routes fewer than ``want`` test windows.

    Only needed for the ``confidence`` rule (the others can route any confident window through
    prev_cls): averages of an ictal and a non-ictal test window sit between the classes, where
    the simple model is unsure. Returns ``{"X", "z", "prev"}`` of the blends the QKeras simple model
    routes, or None when the test windows suffice (or blends do not help).
    """
    if uses_state(rule, probe_every) or (~simple_is_final(np.asarray(z, np.float64), tau, rule)).sum() >= want:
        return None
    ictal, other = np.flatnonzero(np.asarray(y) == 1), np.flatnonzero(np.asarray(y) == 0)
    if not len(ictal) or not len(other):
        return None
    rng = np.random.default_rng(seed)
    Xb = 0.5 * (X[rng.choice(ictal, n_pairs)] + X[rng.choice(other, n_pairs)])
    zb = np.asarray(simple_model.predict(Xb[:, :, electrode:electrode + 1], verbose=0), np.float64)
    keep = ~simple_is_final(zb, tau, rule)
    if not keep.any():
        return None
    return {"X": Xb[keep], "z": zb[keep], "prev": np.zeros(int(keep.sum()), np.int64)}


def write_tb_data(top_dir: str | Path, X: np.ndarray, prev_cls: np.ndarray | None,
                  gap: np.ndarray | None = None, scale_reset: np.ndarray | None = None,
                  held: np.ndarray | None = None) -> dict:
    """Write the testbench input and, from the built g++ C simulation, its expected results.

    Args:
        top_dir: generated and built (:func:`qcascade.hls.csim.build_csim`) top-level folder.
        X: ``(n, n_times, n_chans)`` windows; ``prev_cls``: ``(n,)`` (rules that read it) or None;
            ``gap``: ``(n,)`` the probe's gap (gate with a probe) or None.
        scale_reset: ``(n,)`` for designs that scale their input (``X`` raw; default: first window).
        held: ``(n,)`` the hold counter (gate with a hold) or None (0).

    Returns:
        ``{"n_windows", "n_routed", "prev_cls_values", "n_sentinel_up", "expected_file"}`` (``n_routed``
        and ``n_sentinel_up`` as the C++ design computed them; ``n_sentinel_up`` None without a sentinel).
    """
    from qcascade.hls.csim import run_cascade_binary

    top = Path(top_dir).resolve()
    man = tl.load_manifest(top)
    side = tl.side_inputs(man, len(X), prev_cls, gap, scale_reset, held)
    res = run_cascade_binary(top, X, tag="tb", **side)
    tl.write_windows(top / man["tb_input"], X, man["n_times"], man["n_chans"], **side)
    expected = top / tl.TB_EXPECTED
    expected.write_bytes(Path(res["results_file"]).read_bytes())
    return {"n_windows": int(len(X)), "n_routed": int(res["used_complex"].sum()),
            "prev_cls_values": ([] if side["prev_cls"] is None
                                else sorted({int(v) for v in np.asarray(side["prev_cls"]).ravel()})),
            "n_sentinel_up": None if res["sentinel"] is None else int(res["sentinel"].sum()),
            "expected_file": str(expected)}


def run_tb(top_dir: str | Path) -> subprocess.CompletedProcess:
    """Run the built testbench as Vitis does (no arguments: default input, compared with the expected)."""
    top = Path(top_dir).resolve()
    exe = top / tl.load_manifest(top)["csim_exe"]
    if not exe.is_file():
        raise QCascadeError(f"{exe}: not built")
    return subprocess.run([str(exe)], cwd=top, capture_output=True, text=True)


def closed_loop(top_dir: str | Path, X: np.ndarray, *, tau: float, rule: str,
                keras_simple: np.ndarray | None = None, keras_complex: np.ndarray | None = None,
                sentinel: np.ndarray | None = None) -> dict:
    """One recording in time order through the C++ design, its class fed back inside the design.

    Only the first window loads ``prev_cls = 0``; every later window keeps the design's state. The
    result is compared with the Python cascade (:func:`qcascade.gate.cascade_decide`) on the
    design's own logits (must agree on every window) and, if given, on the QKeras logits.
    ``sentinel``: ``(n,)`` bool, the Python sentinel on these windows (required when the design has
    one); the Python cascade walks with it, and the design's own sentinel must equal it.

    Returns:
        ``{"n_windows", "n_routed", "agreement_with_python_on_cpp_logits", "agreement_with_keras_cascade"}``
        and, with the sentinel, ``sentinel_agreement`` and ``sentinel_up_windows``.
    """
    from qcascade.hls.csim import run_cascade_binary

    ctrl = np.full(len(X), KEEP_STATE, np.int64)
    ctrl[0] = 0
    man = tl.load_manifest(Path(top_dir).resolve())
    probe = int(man["gate"].get("probe_every", 0))
    recheck = float(man["gate"].get("recheck_tau", 0.0))
    spec = man["gate"].get("sentinel")
    if spec and sentinel is None:
        raise QCascadeError(f"{top_dir}: the gate has a sentinel; pass the Python sentinel of the windows")
    walk = {"rule": rule, "probe_every": probe, "recheck_tau": recheck, "hold": int(man["gate"].get("hold", 0)),
            "hold_max": int(man["gate"].get("hold_max", 0)), "tau_interictal": man["gate"].get("tau_interictal"),
            "fuse": float((man["gate"].get("fuse") or {}).get("fuse", 0.0)),
            "ictal_every": int(man["gate"].get("ictal_every", 1)),
            "ictal_after": str(man["gate"].get("ictal_after", "grown"))}
    if spec:
        walk.update(sentinel=np.asarray(sentinel, bool), sentinel_every=int(spec["every"]),
                    sentinel_interictal_only=bool(spec.get("interictal_only", False)))
    cpp = run_cascade_binary(top_dir, X, tag="closed_loop", prev_cls=ctrl if man["gate"].get("uses_prev") else None,
                             **{k: v for k, v in tl.side_inputs(man, len(X)).items() if k != "prev_cls"})
    zc = np.where(np.isnan(cpp["complex_logits"]), 0.0, cpp["complex_logits"])
    py = cascade_decide(cpp["simple_logits"], zc, tau, **walk)
    out = {"n_windows": int(len(X)), "n_routed": int(cpp["used_complex"].sum()),
           "agreement_with_python_on_cpp_logits": float(np.mean((py["pred"] == cpp["cls"])
                                                                & (py["routed"] == cpp["used_complex"])))}
    if spec:
        out.update(sentinel_agreement=float(np.mean(cpp["sentinel"] == walk["sentinel"])),
                   sentinel_up_windows=int(walk["sentinel"].sum()))
    if keras_simple is not None and keras_complex is not None:
        k = cascade_decide(keras_simple, keras_complex, tau, **walk)
        out["agreement_with_keras_cascade"] = float(np.mean(k["pred"] == cpp["cls"]))
    return out


VITIS_EXE = "csim_build/cascade_vitis_style"


def vitis_style_command(top_dir: str | Path, cxx: str = "g++", opt: str = "-O0") -> list[str]:
    """One g++ command building the design as ``design.tcl`` gives it to Vitis HLS.

    The top level, both models' firmware and the testbench in one link, weights compiled in
    (``-DQCASCADE_WEIGHTS_INLINE``), ``-std=c++14``; ``-O0`` keeps the compile of inlined weights short.
    """
    top = Path(top_dir).resolve()
    man = tl.load_manifest(top)
    sources = [f"{man['top']}.cpp"] + [f"{man[r]['copy_dir']}/firmware/{man[r]['project']}.cpp"
                                       for r in ("simple", "complex")] + ["cascade_tb.cpp"]
    ap = f"{man['simple']['copy_dir']}/firmware/ap_types"
    return [cxx, "-std=c++14", opt, "-DQCASCADE_WEIGHTS_INLINE", "-I.", "-isystem", ap, *sources, "-o", VITIS_EXE]


def build_vitis_style(top_dir: str | Path, cxx: str = "g++", opt: str = "-O0") -> Path:
    """Build :func:`vitis_style_command`; returns the executable (run it like ``cascade_tb``)."""
    top = Path(top_dir).resolve()
    (top / "csim_build").mkdir(exist_ok=True)
    cmd = vitis_style_command(top, cxx, opt)
    proc = subprocess.run(cmd, cwd=top, capture_output=True, text=True)
    if proc.returncode != 0:
        raise QCascadeError(f"{top}: Vitis-style build failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}")
    return top / VITIS_EXE
