"""bench.oracle_gate: the least routing any gate could get away with, labels known."""

import json

import numpy as np
import pytest

from bench.bench_stress import oracle_markdown
from bench.oracle_gate import confidence_oracle, hidden_inside, main, oracle_routing, oracle_unit
from qcascade.io_utils import atomic_save_npz


def _record(name, n, onset, offset, t0=0.0):
    start = t0 + np.arange(n, dtype=float)
    y = (start >= t0 + onset) & (start < t0 + offset)
    return y, start, np.array([name] * n)


def test_oracle_mends_only_what_the_target_needs():
    # 300 windows, one 20-s seizure; the simple model misses its last 8 windows, complex-only
    # sees all of it. simple F1 = 24/32 = 0.75, complex 1.0, target 0.98: 7 mended give
    # 2*19/(2*19+1) = 0.974 < 0.98, so all 8 are routed, and nothing simple got right.
    y, start, rec = _record("r", 300, 100, 120)
    simple = y.copy()
    simple[112:120] = False
    out = oracle_routing(y, simple, y.copy(), start, rec)
    assert out["simple_f1"] == pytest.approx(0.75) and out["complex_only_f1"] == 1.0
    assert out["routed"].sum() == 8 and not out["routed"][simple == y].any()
    assert out["cascade_f1"] == 1.0
    # A looser tolerance needs fewer windows: target 0.85 -> 2*tp/(2*tp+fn) >= 0.85 at tp = 15.
    looser = oracle_routing(y, simple, y.copy(), start, rec, tolerance=0.15)
    assert looser["routed"].sum() == 3


def test_oracle_routes_into_every_seizure_complex_only_detects():
    # Two recordings. Simple sees the first seizure and none of the second; complex-only sees both,
    # but the second only in 2 windows, so F1 alone would not need them: the event rule does.
    y1, s1, r1 = _record("a", 400, 100, 160)
    y2, s2, r2 = _record("b", 400, 200, 230)
    y, start, rec = np.r_[y1, y2], np.r_[s1, s2], np.r_[r1, r2]
    simple = np.r_[y1, np.zeros_like(y2)]
    complex_only = np.r_[y1, np.zeros_like(y2)]
    complex_only[400 + 205] = complex_only[400 + 206] = True
    out = oracle_routing(y, simple, complex_only, start, rec)
    routed = np.flatnonzero(out["routed"])
    assert list(routed) == [605]  # the earliest window complex alone calls ictal in the hidden event
    # Without the event rule the F1 target was already met by the simple model:
    assert out["simple_f1"] >= max(out["simple_f1"], out["complex_only_f1"]) - 0.02


def test_confidence_oracle_is_the_least_routing_of_a_threshold_on_the_simple_margin():
    y, start, rec = _record("r", 200, 50, 70)
    d = np.where(y, 5.0, -5.0)
    d[[60, 61, 62]] = -0.5  # three missed ictal windows, the least confident of all
    complex_only = y.copy()
    target = oracle_routing(y, d > 0, complex_only, start, rec)["target_f1"]
    assert confidence_oracle(y, d, complex_only, start, rec, target) == pytest.approx(3 / 200)
    # The same errors made confidently: only a threshold that routes every window mends them.
    d2 = np.where(y, 5.0, -5.0)
    d2[[60, 61, 62]] = -9.0
    assert confidence_oracle(y, d2, complex_only, start, rec, target) == pytest.approx(1.0)


def _unit(root):
    """A unit of two folds as a run writes them (the files the oracle reads)."""
    unit = root / "ID1" / "ID1"
    for k, d in enumerate([unit, unit / "fold1"]):
        (d / "deploy").mkdir(parents=True)
        y, start, rec = _record(f"ID1_Sz{k + 1}", 200, 80, 100)
        zs = np.where(y, 3.0, -3.0)
        zs[95:100] = -1.0  # the simple model misses the seizure's last 5 windows
        zc = np.where(y, 2.0, -2.0)
        two = lambda d: np.stack([-d / 2, d / 2], axis=1)  # noqa: E731
        routed = np.zeros(200, bool)
        routed[90:100] = True
        atomic_save_npz(d / "val_logits.npz", simple=two(zs), complex=two(zc), complex_only=two(zc), y=y,
                        record_ids=rec, start_s=start, sentinel=np.zeros(200, bool))
        atomic_save_npz(d / "test_logits.npz", simple=two(zs), complex=two(zc), complex_only=two(zc), y=y,
                        pred=y, routed=routed, record_ids=rec, start_s=start, sentinel=np.zeros(200, bool))
        (d / "deploy" / "deploy.json").write_text(json.dumps({"macs_simple": 1000, "macs_complex": 100000}))
    return unit


def test_unit_pools_folds_and_prices_routing_in_macs(tmp_path, capsys):
    unit = _unit(tmp_path)
    r = oracle_unit(unit)
    # Pooled: 40 ictal windows, simple misses 10 (F1 0.857), complex-only 1.0; target 0.98 needs
    # 9 mended windows (2*39/79 = 0.987 >= 0.98 > 2*38/78 = 0.974).
    assert r["n"] == 400 and r["deployed_routing"] == pytest.approx(20 / 400)
    assert r["oracle_routing"] == pytest.approx(9 / 400)
    assert r["oracle_macs_ratio"] == pytest.approx(100000 / (1000 + 9 / 400 * 100000))
    assert r["confidence_routing"] == pytest.approx(10 / 400)  # |d| = 1 is the least confident; all 10 go
    assert main([str(unit), "--json", str(tmp_path / "o.json")]) == 0
    out = capsys.readouterr().out
    assert "| 0.050 | 0.025 | 0.022 | 30.8 |" in out
    assert json.loads((tmp_path / "o.json").read_text())[str(unit)]["oracle_routing"] == pytest.approx(9 / 400)


def test_unit_with_folds_of_different_model_costs_is_refused(tmp_path):
    unit = _unit(tmp_path)
    (unit / "fold1" / "deploy" / "deploy.json").write_text(json.dumps({"macs_simple": 900, "macs_complex": 100000}))
    with pytest.raises(ValueError, match="different model costs"):
        oracle_unit(unit)


def test_stress_section_shows_the_bound_beside_the_deployed_routing(tmp_path):
    unit = _unit(tmp_path)
    text = oracle_markdown(tmp_path, ["ID1"])
    assert "| ID1 | 0.050 | n/a (metrics.json from before routing reasons) | 0.022 | 30.8 | 0 / 0 |" in text
    assert "Mean oracle routing 0.022; overall oracle MACs ratio 30.8" in text
    assert "not computed" not in text
    # With the run's routing reasons the deployed routing is split by them (shares of the test windows).
    by = {r: {"windows": 0, "ictal": 0, "mended": 0, "harmed": 0} for r in ("unsure", "change", "hold")}
    by["unsure"]["windows"], by["change"]["windows"] = 15, 5
    (unit / "metrics.json").write_text(json.dumps(
        {"test": {"cascade": {"routing_reasons": {"n_windows": 400, "n_routed": 20, "by_reason": by}}}}))
    assert "| ID1 | 0.050 | unsure 0.037, change 0.013 | 0.022 |" in oracle_markdown(tmp_path, ["ID1"])


def test_hidden_events_split_by_whether_complex_only_saw_the_seizure_itself():
    # Two seizures the cascade misses: complex-only calls 5 windows inside the first, and only one
    # window 40 s after the second has ended (a false alarm SzCORE's 60-s end tolerance credits).
    y1, s1, r1 = _record("a", 300, 100, 130)
    y2, s2, r2 = _record("b", 300, 100, 130)
    y, start, rec = np.r_[y1, y2], np.r_[s1, s2], np.r_[r1, r2]
    complex_only = np.zeros(600, bool)
    complex_only[105:110] = True
    complex_only[300 + 170] = True
    assert hidden_inside(y, np.zeros(600, bool), complex_only, start, rec) == {"hidden": 2, "hidden_seen_inside": 1}
    caught = np.zeros(600, bool)
    caught[120] = True  # the cascade detects the first one
    assert hidden_inside(y, caught, complex_only, start, rec) == {"hidden": 1, "hidden_seen_inside": 0}


def test_command_names_a_missing_run_and_a_bad_tolerance(tmp_path, capsys):
    assert main([str(tmp_path / "none" / "ID1")]) == 2
    assert "no val_logits.npz" in capsys.readouterr().err
    unit = _unit(tmp_path)
    with pytest.raises(SystemExit) as bad:
        main([str(unit), "--tolerance", "-1"])
    assert bad.value.code == 2 and "--tolerance must be a number in [0, 1)" in capsys.readouterr().err
