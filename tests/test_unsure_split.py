"""bench.unsure_split: the unsure-routed test windows by the simple model's class and the label."""

import json

import numpy as np

import pytest

from bench.unsure_split import CELLS, label_bound, main, split


def _fold(d, simple_d, complex_d, y, routed, tau, tau_i=None):
    (d / "deploy").mkdir(parents=True)
    (d / "deploy" / "deploy.json").write_text(json.dumps({"tau": tau, "tau_interictal": tau_i}))

    def logits(v):
        return np.stack([np.zeros(len(v)), np.asarray(v, float)], 1)

    for name in ("val_logits.npz", "test_logits.npz"):
        np.savez(d / name, simple=logits(simple_d), complex=logits(complex_d), y=np.asarray(y),
                 routed=np.asarray(routed, bool))


def test_unsure_windows_are_split_by_class_and_label_and_mended_or_harmed(tmp_path, capsys):
    unit = tmp_path / "ID1" / "ID1"
    # tau 0.5: |d| <= 1.0986 is unsure. Windows: weak interictal on interictal (complex right: no
    # change), weak interictal on ictal (mended), weak ictal on interictal (mended), weak ictal on
    # ictal with a wrong complex answer (harmed), a confident routed window (another reason), and
    # an unsure window the gate did not route (the probe is not what this counts).
    _fold(unit, [-0.5, -0.5, 0.5, 0.5, 4.0, -0.5], [-3, 3, -3, -3, 3, 3], [0, 1, 0, 1, 1, 0],
          [True, True, True, True, True, False], tau=0.5)
    _fold(unit / "fold1", [-0.5, -0.5], [-3, -3], [0, 0], [True, True], tau=0.5, tau_i=0.1)
    total = split([unit])
    assert total["n"] == 8
    # fold1: with tau_i 0.1, -0.5 is a confident "interictal": routed for another reason, not counted
    assert total[("interictal", 0)] == [1, 0, 0]
    assert total[("interictal", 1)] == [1, 1, 0]
    assert total[("ictal", 0)] == [1, 1, 0]
    assert total[("ictal", 1)] == [1, 0, 1]
    assert set(CELLS) <= set(total)
    (unit / "metrics.json").write_text(json.dumps({"test": {"cascade": {
        "avg_macs_per_window": 100.0 + 0.875 * 1000.0, "macs_ratio_vs_complex": 1000.0 / 975.0, "routing_rate": 0.875}}}))
    b = label_bound([unit])  # 7 of the 8 windows routed, 3 of them ictal
    assert b["units"][0]["routing"] == 7 / 8 and b["units"][0]["routing_ictal_windows"] == 3 / 8
    assert b["macs_ratio"] == pytest.approx(1000 / 975)
    assert b["macs_ratio_no_interictal_routing"] == pytest.approx(1000 / (100 + 0.375 * 1000))
    assert main([str(unit)]) == 0
    out = capsys.readouterr().out
    assert "| ictal | interictal | 0.1250 | 0.1250 | 0.0000 |" in out
    assert "2.1x if no interictal window were routed" in out


def test_a_folder_that_is_not_a_finished_unit_is_named(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "nope: no val_logits.npz / test_logits.npz" in capsys.readouterr().err
    unit = tmp_path / "ID1" / "ID1"
    _fold(unit, [1.0], [1.0], [1], [False], tau=0.5)
    (unit / "deploy" / "deploy.json").unlink()
    assert main([str(unit)]) == 2
    assert "deploy.json: not found" in capsys.readouterr().err
