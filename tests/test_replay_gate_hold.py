"""bench.replay_gate_hold: the gate with a hold, replayed on stored logits."""

import json

import numpy as np
import pytest

from bench.replay_gate_hold import hold_walk, replay_unit
from qcascade.errors import DataError
from qcascade.gate import cascade_decide
from qcascade.io_utils import atomic_save_npz


def _logits(cls, margin=4.0):
    cls = np.asarray(cls)
    return np.c_[margin * (1 - cls), margin * cls].astype(np.float64)


@pytest.mark.parametrize("interictal_only", [False, True])
@pytest.mark.parametrize("rule", ["confidence", "confirm_changes"])
def test_hold_zero_is_the_deployed_gate(rule, interictal_only, random_gate_inputs):
    zs, zc, rec, start, sen = random_gate_inputs
    for probe in (0, 8):
        want = cascade_decide(zs, zc, 0.2, rule=rule, record_ids=rec, start_s=start, probe_every=probe,
                              sentinel=sen, sentinel_every=4, hold=0, sentinel_interictal_only=interictal_only)
        pred, routed = hold_walk(zs, zc, 0.2, rule=rule, record_ids=rec, start_s=start, hold=0,
                                 probe_every=probe, sentinel=sen, sentinel_every=4,
                                 sentinel_interictal_only=interictal_only)
        assert np.array_equal(pred, want["pred"]) and np.array_equal(routed, want["routed"])
        other = hold_walk(zs, zc, 0.2, rule=rule, record_ids=rec, start_s=start, hold=0, probe_every=probe,
                          sentinel=sen, sentinel_every=4, sentinel_interictal_only=not interictal_only)[1]
        assert not np.array_equal(other, routed)  # the setting is not ignored


def test_a_hold_keeps_tracking_a_seizure_through_one_interictal_answer():
    # The simple model is confidently interictal throughout (it reads the other zone); the complex
    # model sees the seizure (windows 3-11) but says interictal once, at window 6.
    y = np.r_[np.zeros(3), np.ones(9), np.zeros(4)].astype(int)
    c = y.copy()
    c[6] = 0
    zs, zc = _logits(np.zeros(len(y), int)), _logits(c)
    sen = np.zeros(len(y), bool)
    sen[3] = True
    kw = dict(rule="confirm_changes", record_ids=np.zeros(len(y), int), start_s=np.arange(len(y), dtype=float),
              sentinel=sen, sentinel_every=1)
    pred0, _ = hold_walk(zs, zc, 0.5, hold=0, **kw)
    pred2, routed2 = hold_walk(zs, zc, 0.5, hold=2, **kw)
    assert pred0.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # lost at the flicker
    assert pred2.tolist() == c.tolist()  # the complex model's answers, seizure to its end
    assert routed2.tolist() == [False] * 3 + [True] * 11 + [False] * 2  # two windows held after it


def _unit(root, *, recheck=0.0, tamper=False, hold=None, interictal_only=None):
    """A unit of two folds; ``hold=None``: a deploy.json from before the hold (decisions at hold 0);
    ``interictal_only=None``: one from before ``sentinel.interictal_only`` (the sentinel on every window)."""
    rng = np.random.default_rng(1)
    for k, d in enumerate([root, root / "fold1"]):
        (d / "deploy").mkdir(parents=True, exist_ok=True)
        n = 80
        y = (np.arange(n) % 40 >= 30).astype(int)
        zs, zc = rng.standard_normal((n, 2)) + 3 * np.c_[1 - y, y], rng.standard_normal((n, 2)) + 2 * np.c_[1 - y, y]
        rec, start, sen = np.array([f"r{k}"] * n), np.arange(n, dtype=float), rng.random(n) < 0.3
        out = cascade_decide(zs, zc, 0.3, rule="confirm_changes", record_ids=rec, start_s=start, sentinel=sen,
                             sentinel_every=4, hold=hold or 0, sentinel_interictal_only=bool(interictal_only))
        pred = out["pred"].copy()
        if tamper and k == 1:
            pred[0] = 1 - pred[0]
        atomic_save_npz(d / "test_logits.npz", simple=zs, complex=zc, y=y, pred=pred, routed=out["routed"],
                        record_ids=rec, start_s=start, sentinel=sen)
        atomic_save_npz(d / "val_logits.npz", y=y[:10])
        (d / "deploy" / "deploy.json").write_text(json.dumps(
            {"tau": 0.3, "gate": "confirm_changes", "probe_every": 0, "recheck_tau": recheck,
             "sentinel": {"every": 4, **({} if interictal_only is None else {"interictal_only": interictal_only})},
             **({} if hold is None else {"hold": hold})}))
    return root


def test_replay_pools_the_folds_and_refuses_what_it_cannot_reproduce(tmp_path):
    res = replay_unit(_unit(tmp_path / "ok"), [0, 2])
    assert set(res["holds"]) == {0, 2} and 0 < res["holds"][0]["f1"] <= 1
    assert res["holds"][2]["routing"] >= res["holds"][0]["routing"]
    with pytest.raises(DataError, match=r"fold1/test_logits.npz: the replayed gate does not reproduce"):
        replay_unit(_unit(tmp_path / "tampered", tamper=True), [2])
    with pytest.raises(DataError, match=r"deploy.json: the gate uses the recheck"):
        replay_unit(_unit(tmp_path / "recheck", recheck=0.9), [2])
    # A run that deployed a hold is checked against its own hold, and H = 0 replays the gate without it.
    held = replay_unit(_unit(tmp_path / "held", hold=2), [0, 2])
    assert held == res
    with pytest.raises(DataError, match="does not reproduce"):
        replay_unit(_unit(tmp_path / "held_tampered", hold=2, tamper=True), [0])


def test_a_unit_deployed_with_the_sentinel_on_interictal_windows_replays_and_compares(tmp_path):
    only = _unit(tmp_path / "only", hold=2, interictal_only=True)
    deployed = replay_unit(only, [2])
    assert deployed == replay_unit(only, [2], sentinel_interictal_only=True)
    every = replay_unit(only, [2], sentinel_interictal_only=False)
    assert every["holds"][2]["routing"] > deployed["holds"][2]["routing"]
    # A unit from before the setting (every window while up) replays the other way round.
    assert replay_unit(_unit(tmp_path / "before", hold=2), [2], sentinel_interictal_only=False) == every
    with pytest.raises(DataError, match="does not reproduce"):
        replay_unit(_unit(tmp_path / "only_tampered", hold=2, interictal_only=True, tamper=True), [2])


def test_the_command_names_a_missing_unit_and_prints_no_table(tmp_path, capsys):
    from bench.replay_gate_hold import main

    assert main([str(_unit(tmp_path / "ok")), str(tmp_path / "none")]) == 2
    out = capsys.readouterr()
    assert "none: no val_logits.npz" in out.err and out.out == ""
    assert main([str(tmp_path / "ok"), "--holds", "0", "2"]) == 0
    assert "| H = 0: F1 / routing | H = 2: F1 / routing |" in capsys.readouterr().out
