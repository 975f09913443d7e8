"""bench.replay_backoff: the gate with a backoff on rejected simple-model proposals, replayed on stored logits."""

import json

import numpy as np
import pytest

from bench.replay_backoff import backoff_walk, main, replay_unit
from qcascade.errors import DataError
from qcascade.gate import cascade_decide
from qcascade.io_utils import atomic_save_npz


def _logits(cls, margin=4.0):
    cls = np.asarray(cls)
    return np.c_[margin * (1 - cls), margin * cls].astype(np.float64)


@pytest.mark.parametrize("counter", ["proposals", "gap"])
@pytest.mark.parametrize("rule", ["confidence", "confirm_changes"])
def test_period_one_is_the_deployed_gate(rule, counter, random_gate_inputs):
    zs, zc, rec, start, sen = random_gate_inputs
    for probe, hold, tau_i in ((0, 0, None), (8, 2, 0.1), (0, 2, 0.05)):
        kw = dict(rule=rule, record_ids=rec, start_s=start, probe_every=probe, sentinel=sen, sentinel_every=4,
                  sentinel_interictal_only=True, hold=hold, hold_max=8 if hold else 0, tau_interictal=tau_i)
        want = cascade_decide(zs, zc, 0.2, **kw)
        pred, routed = backoff_walk(zs, zc, 0.2, period=1, counter=counter, **kw)
        assert np.array_equal(pred, want["pred"]) and np.array_equal(routed, want["routed"])
        if rule == "confirm_changes":  # (confidence keeps a confident proposal: runs of rejections are rare)
            assert not np.array_equal(backoff_walk(zs, zc, 0.2, period=4, counter=counter, **kw)[1], routed)


def _one_recording(s_cls, c_cls):
    n = len(s_cls)
    return _logits(s_cls), _logits(c_cls), dict(rule="confirm_changes", record_ids=np.zeros(n, int),
                                                start_s=np.arange(n, dtype=float))


def test_a_run_of_rejected_proposals_is_routed_every_period_and_a_later_onset_still_reaches_the_complex_model():
    # The simple model calls windows 0-9 ictal (an artefact; the complex model rejects each), then
    # one interictal window, then a seizure at 11-16 that both models see.
    s = [1] * 10 + [0] + [1] * 6 + [0] * 3
    c = [0] * 11 + [1] * 6 + [0] * 3
    zs, zc, kw = _one_recording(s, c)
    pred1, routed1 = backoff_walk(zs, zc, 0.5, period=1, **kw)
    assert np.flatnonzero(routed1[:10]).tolist() == list(range(10))  # the deployed gate: every proposal
    pred4, routed4 = backoff_walk(zs, zc, 0.5, period=4, reset=4, **kw)
    assert np.flatnonzero(routed4[:10]).tolist() == [0, 4, 8]
    assert pred4[:11].tolist() == [0] * 11
    # The doubt still holds at window 11 (one interictal window < reset): the onset's windows are
    # proposals 11, 12, 13 of the run; the 13th is routed (after 12) and the complex model keeps the
    # seizure from there: the price is a two-window delay at the onset.
    assert not routed4[11:13].any() and routed4[13] and pred4[11:17].tolist() == [0, 0, 1, 1, 1, 1]
    # With reset 1 the interictal window ends the doubt and the onset is routed at once.
    pred_r1, _ = backoff_walk(zs, zc, 0.5, period=4, reset=1, **kw)
    assert pred_r1.tolist() == pred1.tolist() == c


def test_the_gap_counter_routes_a_proposal_once_gap_windows_went_unseen():
    s = [1] * 10 + [0] * 6
    c = [0] * 16
    zs, zc, kw = _one_recording(s, c)
    _, routed = backoff_walk(zs, zc, 0.5, period=3, counter="gap", **kw)
    assert np.flatnonzero(routed).tolist() == [0, 3, 6, 9]  # gap >= 2 after each routed window
    with pytest.raises(ValueError, match="counter"):
        backoff_walk(zs, zc, 0.5, period=3, counter="windows", **kw)


def _unit(root, *, tamper=False):
    rng = np.random.default_rng(1)
    for k, d in enumerate([root, root / "fold1"]):
        (d / "deploy").mkdir(parents=True, exist_ok=True)
        n = 120
        y = (np.arange(n) % 60 >= 48).astype(int)
        art = (np.arange(n) % 60 >= 20) & (np.arange(n) % 60 < 32)  # simple-model false alarms
        zs = rng.standard_normal((n, 2)) + 3 * np.c_[1 - (y | art), y | art]
        zc = rng.standard_normal((n, 2)) * 0.5 + 3 * np.c_[1 - y, y]
        rec, start, sen = np.array([f"r{k}"] * n), np.arange(n, dtype=float), np.zeros(n, bool)
        out = cascade_decide(zs, zc, 0.3, rule="confirm_changes", record_ids=rec, start_s=start, sentinel=sen,
                             sentinel_every=4, hold=2, hold_max=8, sentinel_interictal_only=True)
        pred = out["pred"].copy()
        if tamper and k == 1:
            pred[0] = 1 - pred[0]
        atomic_save_npz(d / "test_logits.npz", simple=zs, complex=zc, complex_only=zc, y=y, pred=pred,
                        routed=out["routed"], record_ids=rec, start_s=start, sentinel=sen)
        atomic_save_npz(d / "val_logits.npz", y=y[:10])
        (d / "deploy" / "deploy.json").write_text(json.dumps(
            {"tau": 0.3, "gate": "confirm_changes", "probe_every": 0, "recheck_tau": 0.0, "hold": 2, "hold_max": 8,
             "sentinel": {"every": 4, "interictal_only": True, "ops": 100}, "macs_simple": 1000,
             "macs_complex": 50000}))
    return root


def test_replay_pools_the_folds_counts_macs_and_refuses_what_it_cannot_reproduce(tmp_path):
    res = replay_unit(_unit(tmp_path / "ok"), [1, 4])
    one, four = res["periods"][1], res["periods"][4]
    assert four["routing"] < one["routing"] and four["macs_ratio"] > one["macs_ratio"]
    assert one["macs_ratio"] == pytest.approx(50000 / (1100 + one["routing"] * 50000))
    assert one["hidden"] == four["hidden"] == 0 and four["f1"] >= one["f1"]
    with pytest.raises(DataError, match=r"fold1/test_logits.npz: the replayed gate does not reproduce"):
        replay_unit(_unit(tmp_path / "tampered", tamper=True), [4])


def test_a_broken_deploy_json_is_named(tmp_path, capsys):
    unit = _unit(tmp_path / "broken")
    (unit / "fold1" / "deploy" / "deploy.json").write_text("{not json")
    assert main([str(unit)]) == 2
    out = capsys.readouterr()
    assert "fold1/deploy/deploy.json: cannot be read as JSON" in out.err and out.out == ""


def test_the_command_names_a_missing_unit_and_prints_no_table(tmp_path, capsys):
    assert main([str(_unit(tmp_path / "ok")), str(tmp_path / "none")]) == 2
    out = capsys.readouterr()
    assert "none" in out.err and out.out == ""
    assert main([str(tmp_path / "ok"), "--periods", "4"]) == 0
    text = capsys.readouterr().out
    assert "| B = 1 | B = 4 |" in text and "| all (" in text
    for bad in (["--periods", "0"], ["--reset", "x"]):
        with pytest.raises(SystemExit) as exc:
            main([str(tmp_path / "ok"), *bad])
        assert exc.value.code == 2 and "must be an integer >= 1" in capsys.readouterr().err
