"""bench.unsure_split: the unsure-routed test windows by the simple model's class and the label."""

import json

import numpy as np

from bench.unsure_split import CELLS, main, split


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
    assert main([str(unit)]) == 0
    assert "| ictal | interictal | 0.1250 | 0.1250 | 0.0000 |" in capsys.readouterr().out


def test_a_folder_that_is_not_a_finished_unit_is_named(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "nope: no val_logits.npz / test_logits.npz" in capsys.readouterr().err
    unit = tmp_path / "ID1" / "ID1"
    _fold(unit, [1.0], [1.0], [1], [False], tau=0.5)
    (unit / "deploy" / "deploy.json").unlink()
    assert main([str(unit)]) == 2
    assert "deploy.json: not found" in capsys.readouterr().err
