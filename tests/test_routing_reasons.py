"""qcascade.routing_reasons: every routed window under the first gate condition that explains it."""

import numpy as np
import pytest

from qcascade.gate import GATE_RULES, cascade_decide, logit_threshold
from qcascade.routing_reasons import REASONS, routing_reason_rows, routing_reasons, sum_routing_reasons


def _logits(d):
    d = np.asarray(d, float)
    return np.c_[-d / 2, d / 2]


def test_a_hand_worked_sequence_under_confirm_changes_with_a_hold():
    # tau 0.5: the simple model is confident when |z1 - z0| > 2*atanh(0.5) = 1.10.
    zs = _logits([-4, -4, 4, -4, 4, 0.5, -4, -4])
    zc = _logits([-3, -3, 3, 3, -3, -3, -3, -3])
    y = np.array([0, 0, 1, 1, 0, 0, 0, 0])
    kw = dict(rule="confirm_changes", hold=2, hold_max=2)
    dec = cascade_decide(zs, zc, 0.5, **kw)
    # 2: a confident "ictal" changes the state; 3: a confident "interictal" changes it back, the
    # complex model says ictal (mended) and the hold starts; 4: "ictal" again, no change, held
    # (mended: complex says interictal); 5: unsure, and still held (mended); 6: final again.
    assert dec["routed"].tolist() == [False, False, True, True, True, True, False, False]
    r = routing_reasons(zs, zc, y, 0.5, dec, **kw)["by_reason"]
    assert r["change"] == {"windows": 2, "ictal": 2, "mended": 1, "harmed": 0}
    assert r["hold"] == {"windows": 1, "ictal": 0, "mended": 1, "harmed": 0}
    assert r["unsure"] == {"windows": 1, "ictal": 0, "mended": 1, "harmed": 0}
    assert all(r[k]["windows"] == 0 for k in ("ictal", "sentinel", "probe"))


@pytest.mark.parametrize("rule", GATE_RULES)
@pytest.mark.parametrize("probe, with_sentinel, hold, interictal_only",
                         [(0, False, 0, False), (7, False, 0, False), (0, True, 2, True), (5, True, 3, False)])
@pytest.mark.parametrize("tau_interictal", [None, 0.2])
def test_the_reasons_partition_the_routed_windows_of_every_gate(rule, probe, with_sentinel, hold, interictal_only,
                                                                tau_interictal):
    rng = np.random.default_rng(11)
    n = 600
    y = (np.arange(n) % 100 >= 80).astype(int)
    zs = _logits(rng.normal(4 * (2 * y - 1), 3))
    zc = _logits(rng.normal(4 * (2 * y - 1), 2))
    rec = np.repeat(["a", "b", "c"], n // 3)
    start = np.tile(np.arange(n // 3, dtype=float), 3)
    kw = dict(rule=rule, record_ids=rec, start_s=start, probe_every=probe, hold=hold, hold_max=hold + 3,
              sentinel=rng.random(n) < 0.2 if with_sentinel else None, sentinel_every=3,
              sentinel_interictal_only=interictal_only, tau_interictal=tau_interictal)
    dec = cascade_decide(zs, zc, 0.6, **kw)
    res = routing_reasons(zs, zc, y, 0.6, dec, **kw)
    by = res["by_reason"]
    assert set(by) == set(REASONS)
    d = zs[:, 1] - zs[:, 0]
    unsure = (d <= logit_threshold(0.6)) & (-d <= logit_threshold(0.6 if tau_interictal is None else tau_interictal))
    assert by["unsure"]["windows"] == int((dec["routed"] & unsure).sum()) > 0
    assert res["n_routed"] == int(dec["routed"].sum()) == sum(c["windows"] for c in by.values()) > 0
    assert by["change"]["windows"] == 0 or rule == "confirm_changes"
    assert by["ictal"]["windows"] == 0 or rule == "confirm_ictal_hold"
    assert by["probe"]["windows"] == 0 or probe
    assert by["sentinel"]["windows"] == 0 or with_sentinel
    assert by["hold"]["windows"] == 0 or hold
    for c in by.values():
        assert c["mended"] + c["harmed"] <= c["windows"] and c["ictal"] <= c["windows"]


def test_decisions_of_another_gate_are_refused():
    zs, zc = _logits([-4, -4, -4, -4]), _logits([3, 3, 3, 3])
    dec = cascade_decide(zs, zc, 0.0, rule="confirm_changes")
    assert not dec["routed"].any()
    dec["routed"] = np.array([False, True, False, False])
    with pytest.raises(ValueError, match=r"1 routed window\(s\) \(first at index 1\) that no condition"):
        routing_reasons(zs, zc, np.zeros(4), 0.0, dec, rule="confirm_changes")


def test_folds_add_up_and_rows_show_the_reasons_that_routed():
    zs = _logits([-4, 4, -4, 0.1])
    zc = _logits([-3, 3, -3, 3])
    y = np.array([0, 1, 0, 1])
    dec = cascade_decide(zs, zc, 0.5, rule="confirm_changes")
    one = routing_reasons(zs, zc, y, 0.5, dec, rule="confirm_changes")
    two = sum_routing_reasons([one, one])
    assert two["n_windows"] == 8 and two["n_routed"] == 2 * one["n_routed"]
    assert two["by_reason"]["change"]["windows"] == 2 * one["by_reason"]["change"]["windows"]
    assert sum_routing_reasons([one, None]) is None
    rows = routing_reason_rows(one)
    assert [r[0] for r in rows] == [r for r in REASONS if one["by_reason"][r]["windows"]] + ["all"]
    assert rows[-1][1] == one["n_routed"] and rows[-1][2] == f"{one['n_routed'] / 4:.3f}"
