"""bench.morphology_folds: the seen / unseen-morphology split of a stress run's folds."""

import json

import numpy as np

from bench.morphology_folds import fold_rows, markdown, summary

TRUTH = {"recordings": {
    "ID1_Sz1": {"morphology": "polyspike", "onset_zone": [1, 2]},
    "ID1_Sz2": {"morphology": "polyspike", "onset_zone": [1, 2]},
    "ID1_Sz3": {"morphology": "hypersynchronous", "onset_zone": [1, 2]},
    "ID1_Sz4": {"morphology": "hypersynchronous", "onset_zone": [9, 10]},
}}


def _fold(d, train, test, simple, complex_, pred):
    d.mkdir(parents=True)
    (d / "data.json").write_text(json.dumps({"records": {"train": train, "val": [], "test": [test]}}))
    y = np.array([0, 1, 1, 1, 1])

    def logits(calls):
        return np.stack([-np.asarray(calls, float), np.asarray(calls, float)], 1)

    np.savez(d / "test_logits.npz", y=y, simple=logits(simple), complex_only=logits(complex_),
             pred=np.asarray(pred), record_ids=np.array([test] * 5))


def test_folds_split_by_seen_morphology_and_zone(tmp_path):
    unit = tmp_path / "work" / "ID1" / "ID1"
    # Sz3 (hypersynchronous) tested after training on polyspike only: unseen, same zone.
    _fold(unit, ["ID1_Sz1", "ID1_Sz2"], "ID1_Sz3", [0, 0, 0, 0, 1], [0, 1, 1, 0, 0], [0, 1, 0, 0, 0])
    # Sz2 tested after training on Sz1 and Sz3: polyspike seen.
    _fold(unit / "fold1", ["ID1_Sz1", "ID1_Sz3"], "ID1_Sz2", [1, 1, 1, 1, 1], [0, 1, 1, 1, 1], [0, 1, 1, 1, 1])
    # Sz4 comes from a zone no training seizure had: not counted in either group.
    _fold(unit / "fold2", ["ID1_Sz1", "ID1_Sz2"], "ID1_Sz4", [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0])
    rows = {r["test"]: r for r in fold_rows(unit, TRUTH)}
    assert (rows["ID1_Sz3"]["seen"], rows["ID1_Sz3"]["same_zone"]) == (False, True)
    assert rows["ID1_Sz3"]["hit_simple"] == 0.25 and rows["ID1_Sz3"]["hit_complex"] == 0.5
    assert rows["ID1_Sz3"]["hit_cascade"] == 0.25
    assert rows["ID1_Sz2"]["seen"] and not rows["ID1_Sz4"]["same_zone"]
    s = summary(list(rows.values()))
    assert s["seen"] == {"n": 1, "hit_simple": 1.0, "hit_complex": 1.0, "hit_cascade": 1.0}
    assert s["unseen"] == {"n": 1, "hit_simple": 0.25, "hit_complex": 0.5, "hit_cascade": 0.25}

    data = tmp_path / "data"
    data.mkdir()
    (data / "ground_truth.json").write_text(json.dumps({"patients": {"ID1": TRUTH, "ID2": TRUTH}}))
    text = markdown(data, tmp_path / "work")
    assert "| never seen in training | 1 | 0.25 | 0.50 | 0.25 |" in text
    assert "ID1 ID1_Sz3 (hypersynchronous) 0.25 / 0.50 / 0.25" in text
    assert "No evaluated folds for: ID2." in text
