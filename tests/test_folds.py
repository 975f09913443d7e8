"""Fold plans (every seizure tested once, two-seizure patients, grouped folds) and fold pooling."""

import json

import numpy as np
import pytest

from qcascade.data.swec import Recording
from qcascade.data.windows import build_windowsets
from qcascade.errors import DataError
from qcascade.artifacts import Deployment
from qcascade.evaluation import event_metrics, sum_events, window_metrics
from qcascade.folds import carve_validation, fold_plan, pool_folds
from qcascade.io_utils import atomic_save_npz, atomic_write_json

FS = 512


def rec(pid, rid, n_samples=FS * 60, spans=((FS * 20, FS * 30),), n_el=4, seed=0, info=None):
    data = np.random.default_rng(seed).standard_normal((n_samples, n_el)).astype(np.float32)
    return Recording(pid, rid, None, FS, n_samples, n_el, list(spans), (rid,) if spans else (), data=data,
                     info=dict(info or {}))


def test_every_seizure_is_the_test_once_and_fold0_is_the_single_split():
    recs = [rec("P", f"P_Sz{i}") for i in range(5)] + [rec("P", "P_free", spans=())]
    folds = fold_plan(recs)
    assert len(folds) == 5
    assert folds[0].test_records == ["P_Sz4"] and [r.record_id for r in folds[0].splits["val"]] == ["P_Sz3"]
    assert sorted(f.test_records[0] for f in folds) == [f"P_Sz{i}" for i in range(5)]
    for f in folds:
        names = {k: {r.record_id for r in v} for k, v in f.splits.items()}
        assert not (names["train"] & names["test"]) and not (names["val"] & names["test"])
        assert not (names["train"] & names["val"]) and names["val"]
        assert "P_free" in names["train"]
    assert len(fold_plan(recs, "first")) == 1


def test_two_seizures_give_two_folds_with_a_carved_validation_and_one_seizure_is_refused():
    recs = [rec("P", "P_Sz1"), rec("P", "P_Sz2")]
    folds = fold_plan(recs)
    assert [f.test_records for f in folds] == [["P_Sz2"], ["P_Sz1"]]
    assert [[r.record_id for r in f.carve_from] for f in folds] == [["P_Sz1"], ["P_Sz2"]]
    assert all(not f.splits["val"] for f in folds)
    with pytest.raises(DataError, match="patient P: 1 seizure"):
        fold_plan([rec("P", "P_Sz1"), rec("P", "P_free", spans=())])


def test_below_carve_validation_below_every_other_seizure_trains_and_validates():
    recs = [rec("P", f"P_Sz{i}") for i in range(3)] + [rec("P", "P_free", spans=())]
    held_out = fold_plan(recs, carve_below=3)  # a held-out validation seizure, one seizure trains
    assert all(len(f.splits["val"]) == 1 and not f.carve_from for f in held_out)
    folds = fold_plan(recs)  # the default, 4: both other seizures train
    assert [f.test_records for f in folds] == [r.test_records for r in held_out]  # same tests, same order
    for f in folds:
        seizures = sorted(r.record_id for r in f.splits["train"] if r.seizure_ids)
        assert not f.splits["val"] and len(seizures) == 2
        assert sorted(r.record_id for r in f.carve_from) == seizures  # a block from each
    assert fold_plan(recs, carve_below=3)[0].carve_from == ()
    with pytest.raises(ValueError, match="carve_below"):
        fold_plan(recs, carve_below=2)


def test_fold_groups_are_the_folds():
    recs = [rec("bonn", f"seg{i}", n_samples=FS * 4, spans=((0, FS * 4),) if i % 2 else (), info={"fold_group": i % 10})
            for i in range(40)]
    folds = fold_plan(recs)
    assert len(folds) == 10
    for k, f in enumerate(folds):
        groups = {name: {r.info["fold_group"] for r in part} for name, part in f.splits.items()}
        assert groups["test"] == {k} and groups["val"] == {(k + 1) % 10}
        assert not (groups["train"] & (groups["test"] | groups["val"]))
    tested = [r.record_id for f in folds for r in f.splits["test"]]
    assert sorted(tested) == sorted(r.record_id for r in recs)  # each segment tested exactly once
    with pytest.raises(DataError, match="fold group"):
        fold_plan(recs[:2])


def test_carved_validation_holds_ictal_windows_and_shares_no_sample_with_training():
    train_rec, test_rec = rec("P", "P_Sz1", seed=1), rec("P", "P_Sz2", seed=2)
    sets, _ = build_windowsets({"train": [train_rec], "val": [], "test": [test_rec]}, n_chans=8, n_times=FS,
                               stride=FS // 2)
    tr, va, block = carve_validation(sets["train"], train_rec, FS)
    assert va.y.sum() > 0 and tr.y.sum() > 0  # the seizure's halves: one trains, one validates
    assert block["start_s"] == pytest.approx(25.0)
    for s in tr.start_s:  # no training window overlaps the validation block
        assert s + 1.0 <= block["start_s"] + 1e-9 or s >= block["end_s"] - 1e-9
    assert np.all((va.start_s >= block["start_s"]) & (va.start_s + 1.0 <= block["end_s"] + 1e-9))
    assert len(tr) + len(va) < len(sets["train"])  # straddling windows are dropped
    from qcascade.data.aligned import is_aligned  # what lets TensorFlow read them without a copy
    from qcascade.steps_data import _concat

    assert all(is_aligned(ws.X) for ws in (*sets.values(), tr, va, _concat(tr, va)))


def test_sum_events_pools_counts_and_recomputes_rates():
    a = event_metrics(np.r_[np.zeros(100), np.ones(20), np.zeros(100)], np.r_[np.zeros(100), np.ones(20), np.zeros(100)],
                      np.arange(220.0), ["a"] * 220)
    b = event_metrics(np.zeros(3600), np.r_[np.zeros(1000), np.ones(5), np.zeros(2595)], np.arange(3600.0), ["b"] * 3600)
    s = sum_events([a, b])
    assert (s["n_events"], s["n_detected"], s["n_false_alarms"]) == (1, 1, 1)
    assert s["hours"] == pytest.approx((220 + 3600) / 3600)
    assert s["fa_per_hour"] == pytest.approx(1 / s["hours"])
    assert s["fa_per_24h"] == pytest.approx(24 / s["hours"])
    assert s["mean_delay_s"] == a["mean_delay_s"]


def _fake_fold(d, rng, n, rid):
    d.mkdir(parents=True, exist_ok=True)
    y = np.r_[np.zeros(n - 10), np.ones(10)].astype(int)
    simple, cplx, only = (rng.standard_normal((n, 2)) + 2 * np.c_[1 - y, y] for _ in range(3))
    routed = rng.random(n) < 0.3
    pred = np.where(routed, cplx.argmax(1), simple.argmax(1))
    feat = np.clip(y * 0.7 + rng.random(n) * 0.5, 0, 1)
    starts = np.arange(n, dtype=float)
    atomic_save_npz(d / "test_logits.npz", simple=simple, complex=cplx, complex_only=only, pred=pred, routed=routed,
                    y=y, feature=feat, start_s=starts, record_ids=np.array([rid] * n))
    preds = {"simple_only": simple.argmax(1), "complex_only": only.argmax(1), "cascade_complex": cplx.argmax(1),
             "cascade": pred, "feature_baseline": (feat >= 0.5).astype(int)}
    ev = {k: event_metrics(y, p, starts, [rid] * n) for k, p in preds.items()}
    test = {"cascade": window_metrics(y, None, pred), "feature_baseline": window_metrics(y, feat, preds["feature_baseline"]),
            "complex_only": window_metrics(y, only, preds["complex_only"]), "events": ev["cascade"],
            "events_by_model": {k: ev[k] for k in ("simple_only", "complex_only", "cascade_complex", "feature_baseline")}}
    test["cascade"]["routing_rate"] = float(routed.mean())
    atomic_write_json(d / "fold_metrics.json", {"tau": 0.3, "selected_electrode": 1, "test": test,
                                                "test_records": [rid], "patient": "P", "candidates": {}})
    Deployment(selected_electrode=1, simple_model="A", tau=0.3, logit_threshold=0.619, macs_simple=100,
               macs_complex=1000).save(d)
    return y, pred, feat, ev["cascade"]


def test_pool_folds_scores_each_window_by_its_fold_and_sums_events(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "fold1" / "deploy").mkdir(parents=True)
    (tmp_path / "deploy").mkdir()
    y0, p0, f0, e0 = _fake_fold(tmp_path, rng, 200, "r0")
    y1, p1, f1, e1 = _fake_fold(tmp_path / "fold1", rng, 300, "r1")
    m = pool_folds([tmp_path, tmp_path / "fold1"])
    y, pred = np.r_[y0, y1], np.r_[p0, p1]
    assert m["test"]["cascade"]["f1"] == pytest.approx(window_metrics(y, None, pred)["f1"])
    assert m["test"]["feature_baseline"]["f1"] == pytest.approx(window_metrics(y, None, np.r_[f0, f1] >= 0.5)["f1"])
    assert m["test"]["events"]["n_events"] == e0["n_events"] + e1["n_events"]
    assert m["test"]["events"]["hours"] == pytest.approx(e0["hours"] + e1["hours"])
    assert [f["test_records"] for f in m["folds"]] == [["r0"], ["r1"]] and m["n_test_windows_pooled"] == 500
    st = m["fold_stats"]["cascade_f1"]
    per = [window_metrics(y0, None, p0)["f1"], window_metrics(y1, None, p1)["f1"]]
    assert st["mean"] == pytest.approx(np.mean(per)) and st["sd"] == pytest.approx(np.std(per, ddof=1))
    for key in ("tau", "selected_electrode", "candidates", "patient"):  # fold 0's keys are kept
        assert key in m
    json.dumps(m)


def _candidate_files(d, y, logits, entries):
    (d / "baselines").mkdir(parents=True, exist_ok=True)
    atomic_save_npz(d / "test_logits.npz", y=np.asarray(y))
    for c, z in logits.items():
        np.save(d / "baselines" / f"{c}_test_logits.npy", np.asarray(z, float))
    atomic_write_json(d / "baselines.json", entries)


def test_pool_candidates_pools_the_folds_that_trained_them_and_chooses_on_validation(tmp_path):
    from qcascade.folds import pool_candidates

    hit, miss = [[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    # A: the exported model's validation F1 counts, not the training history's last epoch.
    entries = {"simple_A": {"val_metrics": {"f1": 0.9}, "history": {"val_f1": [0.1]}},
               "simple_B": {"val_metrics": {"f1": 0.5}, "history": {"val_f1": [0.99]}},
               "simple_C": {"history": {"val_f1": [0.2, 0.7]}}}  # an older run: no val_metrics
    _candidate_files(tmp_path, [1, 1, 0], {"simple_A": hit, "simple_B": miss, "simple_C": hit}, entries)
    _candidate_files(tmp_path / "fold1", [1, 1, 0], {"simple_A": miss, "simple_B": hit, "simple_C": hit},
                     {**entries, "simple_A": {"val_metrics": {"f1": 0.7}}})
    (tmp_path / "fold2").mkdir()  # a fold without the candidates (candidate_folds: deployed) is left out
    atomic_save_npz(tmp_path / "fold2" / "test_logits.npz", y=np.array([1, 0]))
    res = pool_candidates([tmp_path, tmp_path / "fold1", tmp_path / "fold2"])
    assert res["folds"] == [0, 1]
    a = res["models"]["A"]
    assert a["n_windows"] == 6 and a["f1"] == pytest.approx(4 / 7)  # tp 2, fp 1, fn 2, tn 1
    assert a["val_f1"] == pytest.approx(0.8) and res["models"]["C"]["val_f1"] == pytest.approx(0.7)
    assert res["models"]["C"]["f1"] == 1.0
    assert res["chosen_on_val"] == "A"  # C is better on test, but validation decides
    assert pool_candidates([tmp_path / "fold2"]) == {"folds": [], "models": {}, "chosen_on_val": None}


def test_pooled_candidates_reach_metrics_report_and_summary(tmp_path):
    from qcascade.report import _summary_row, metrics_markdown

    rng = np.random.default_rng(1)
    (tmp_path / "fold1" / "deploy").mkdir(parents=True)
    (tmp_path / "deploy").mkdir()
    for d, n, rid in ((tmp_path, 200, "r0"), (tmp_path / "fold1", 300, "r1")):
        y, *_ = _fake_fold(d, rng, n, rid)
        good = np.c_[1 - y, y].astype(float)
        (d / "baselines").mkdir(exist_ok=True)
        for c, z in (("simple_A", good), ("simple_B", 1 - good), ("simple_C", good)):
            np.save(d / "baselines" / f"{c}_test_logits.npy", z)
        atomic_write_json(d / "baselines.json", {"simple_A": {"val_metrics": {"f1": 0.6}},
                                                 "simple_B": {"val_metrics": {"f1": 0.9}},
                                                 "simple_C": {"val_metrics": {"f1": 0.7}}})
    m = pool_folds([tmp_path, tmp_path / "fold1"])
    cp = m["candidates_pooled"]
    assert cp["folds"] == [0, 1] and cp["chosen_on_val"] == "B" and cp["models"]["B"]["f1"] == 0.0
    assert cp["models"]["A"]["f1"] == 1.0 and cp["models"]["A"]["n_windows"] == 500
    m.update(simple_model="A", gate="confidence", test_records=["r0"], dataset="synthetic", split="loso",
             n_windows={"train": 1, "val": 1, "test": 200})
    row = _summary_row("P", m)
    assert row["candidate_chosen_on_val"] == "B" and row["candidate_chosen_f1"] == 0.0
    text = metrics_markdown(m, tmp_path)
    assert "Simple candidates alone, pooled over fold(s) 0, 1" in text and "Chosen on validation: **B**" in text


@pytest.mark.parametrize("from_step, expected", [("step_calibrate", "step_calibrate"), (None, None),
                                                  ("step_csim", None), ("step_folds", None)])
def test_from_step_reruns_every_fold_from_that_step(monkeypatch, tmp_path, from_step, expected):
    """``--from-step step_calibrate`` must not pool fold 0's new results with the other folds' old
    ones: every fold reruns from a fold step; unit-only steps (csim, the pooling) leave folds alone."""
    from types import SimpleNamespace

    import qcascade.steps_folds as sf
    from qcascade.folds import UnitContext

    calls = []
    monkeypatch.setattr(sf, "run_steps", lambda steps, fctx, d, **kw: calls.append(kw.get("from_step")))
    monkeypatch.setattr(sf, "FoldContext", lambda *a: SimpleNamespace(unit_dir=tmp_path))
    plan = [SimpleNamespace(index=k, test_records=[f"Sz{k}"]) for k in range(3)]
    ctx = UnitContext(cfg=None, run_dir=tmp_path, unit="ID1", recordings=[], from_step=from_step)
    sf._train_here(ctx, plan)
    assert calls == [expected, expected]


def test_a_run_with_carve_validation_below_validates_on_blocks_of_both_training_seizures(tmp_path):
    from qcascade.cli import train_entry
    from qcascade.data.matwrite import write_mat

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        write_mat(data / "ID1" / f"Sz{k}.mat", {"EEG": rng.normal(size=(370 * FS, 4)) * 30.0}, "5")
    cfg = tmp_path / "carve.yaml"
    cfg.write_text("data: {carve_validation_below: 4}\n")  # the default, said out loud
    out = tmp_path / "run"
    assert train_entry(["--dataset", "swec-short", "--data-dir", str(data), "--out", str(out), "--config", str(cfg),
                        "--until-step", "step_prepare_data"]) == 0
    info = json.loads((out / "ID1" / "data.json").read_text())
    assert info["records"] == {"train": ["ID1_Sz1", "ID1_Sz2"], "val": [], "test": ["ID1_Sz3"]}
    assert sorted(b["record"] for b in info["val_time_blocks"]) == ["ID1_Sz1", "ID1_Sz2"]
    assert info["n_ictal"]["val"] > 0 and info["n_ictal"]["train"] > 0


def test_sub_stride_ictal_training_windows_leave_the_carved_validation_on_the_grid(tmp_path):
    from qcascade.cli import train_entry
    from qcascade.data.matwrite import write_mat

    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for k in (1, 2, 3):
        write_mat(data / "ID1" / f"Sz{k}.mat", {"EEG": rng.normal(size=(370 * FS, 4)) * 30.0}, "5")
    info = {}
    for stride in (1.0, 0.25):
        cfg = tmp_path / f"s{stride}.yaml"
        cfg.write_text(f"data: {{train_ictal_stride_s: {stride}}}\n")
        out = tmp_path / f"run{stride}"
        assert train_entry(["--dataset", "swec-short", "--data-dir", str(data), "--out", str(out), "--config", str(cfg),
                            "--until-step", "step_prepare_data"]) == 0
        info[stride] = json.loads((out / "ID1" / "data.json").read_text())
    coarse, fine = info[1.0], info[0.25]
    assert fine["n_windows"]["val"] == coarse["n_windows"]["val"] and fine["n_windows"]["test"] == coarse["n_windows"]["test"]
    assert fine["n_ictal"]["val"] == coarse["n_ictal"]["val"] > 0
    assert fine["n_ictal"]["train"] > 3 * coarse["n_ictal"]["train"]
    assert fine["n_windows"]["train"] - fine["n_ictal"]["train"] == coarse["n_windows"]["train"] - coarse["n_ictal"]["train"]
