"""The stress benchmark's done-when evaluation (bench/bench_stress.py) on hand-made metrics."""

import json

import pytest

from bench.bench_stress import evaluate, markdown, patient_row, patient_state, report


def _metrics(simple=0.80, complex_=0.85, cascade=0.86, routing=0.1, ratio=15.0, hidden=0, electrode=3,
             soz=(3, 4), folds=3) -> dict:
    def wm(f1):
        return {"f1": f1, "auc": 0.9}

    t = {"simple_only": wm(simple), "complex_only": wm(complex_), "feature_baseline": wm(0.7),
         "cascade": {**wm(cascade), "routing_rate": routing, "avg_macs_per_window": 1000.0,
                     "macs_ratio_vs_complex": ratio},
         "events": {"n_events": folds},
         "hidden_seizures": {"vs_complex_only": {"n_events": folds, "n_reference_detected": folds,
                                                 "n_missed_but_reference_detected": hidden},
                             "vs_cascade_complex": {"n_events": folds, "n_reference_detected": folds,
                                                    "n_missed_but_reference_detected": 0}}}
    stats = {f"{k}_f1": {"mean": 0.5, "sd": 0.1, "n": folds} for k in ("simple_only", "complex_only", "cascade")}
    return {"test": t, "selected_electrode": electrode, "soz_electrodes": list(soz),
            "folds": [{"fold": k} for k in range(folds)], "fold_stats": stats}


def _row(multifocal=False, **kw):
    return patient_row(_metrics(**kw), multifocal, 3)


def test_all_criteria_pass():
    v = evaluate({"ID1": _row(), "ID2": _row(multifocal=True, simple=0.5, complex_=0.7, cascade=0.69,
                                             electrode=9)})
    assert v["passed"] and all(v["overall"].values())
    assert v["patients"]["ID1"]["multifocal_gain"] is None  # focal: does not apply
    assert v["patients"]["ID2"]["onset_zone"] is None  # multifocal: does not apply


@pytest.mark.parametrize("kw,criterion", [
    (dict(complex_=0.77), "complex_vs_simple"),  # 0.03 below simple
    (dict(cascade=0.82), "cascade_vs_best"),  # 0.03 below complex-only
    (dict(hidden=1), "no_hidden_events"),
    (dict(ratio=9.0), "macs"),
    (dict(routing=0.3), "routing"),
    (dict(electrode=7), "onset_zone"),
])
def test_each_criterion_fails_alone(kw, criterion):
    ch = evaluate({"ID1": _row(**kw)})
    assert not ch["passed"]
    failed = [k for k, v in ch["patients"]["ID1"].items() if v is False]
    assert failed == [criterion]
    assert ch["overall"][criterion] is False


def test_margins_are_inclusive():
    ch = evaluate({"ID1": _row(simple=0.80, complex_=0.78, cascade=0.78)})["patients"]["ID1"]
    assert ch["complex_vs_simple"] and ch["cascade_vs_best"]


def test_multifocal_needs_the_gain():
    v = evaluate({"ID1": _row(multifocal=True, simple=0.5, complex_=0.59, cascade=0.6)})
    assert v["patients"]["ID1"]["multifocal_gain"] is False and not v["passed"]


def test_routing_and_macs_judged_on_means():
    # One patient above 0.20 routing, the mean below: overall passes, the patient's own check fails.
    v = evaluate({"ID1": _row(routing=0.3), "ID2": _row(routing=0.05)})
    assert v["patients"]["ID1"]["routing"] is False and v["overall"]["routing"] is True
    assert v["passed"]


def test_unfinished_patient_blocks_the_verdict_and_is_listed():
    rows = {"ID1": _row(), "ID2": None}
    v = evaluate(rows)
    assert v["unfinished"] == ["ID2"] and not v["passed"] and all(v["overall"].values())
    text = markdown(rows, {"ID1": "done", "ID2": "running: 1 of 4 folds evaluated"}, v)
    assert "ID2 (running: 1 of 4 folds evaluated)" in text and "Overall verdict: **FAIL**" in text


def test_missing_hidden_count_is_not_a_pass():
    m = _metrics()
    del m["test"]["hidden_seizures"]
    v = evaluate({"ID1": patient_row(m, False, 3)})
    assert v["missing"] == [("ID1", "no_hidden_events")] and not v["passed"]


def test_report_reads_run_folders(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    truth = {"patients": {p: {"multifocal": p == "ID2", "recordings": {f"{p}_Sz{k}": {} for k in range(3)}}
                          for p in ("ID1", "ID2", "ID3")}}
    (data / "ground_truth.json").write_text(json.dumps(truth))
    (work / "ID1" / "ID1").mkdir(parents=True)
    (work / "ID1" / "ID1" / "metrics.json").write_text(json.dumps(_metrics()))
    unit = work / "ID2" / "ID2"
    (unit / "fold1").mkdir(parents=True)
    (unit / "metrics.json").write_text(json.dumps({**_metrics(), "folds": []}))  # fold 0 only so far
    (unit / "steps.json").write_text(json.dumps({"completed": ["step_evaluate"]}))
    text, v = report(data, work)
    assert v["unfinished"] == ["ID2", "ID3"]
    assert "ID2 (running: 1 of 3 folds evaluated)" in text and "ID3 (not started)" in text
    assert "| ID1 | 3 | 0.800 (0.50 ± 0.10)" in text
    # The oracle bound needs the stored logits; a finished patient without them is named, not skipped.
    assert "Oracle not computed for: ID1 (" in text and "no val_logits.npz" in text
    assert patient_state(work / "ID3" / "ID3", 3) == ("not started", None)


def test_a_fold0_only_run_cannot_pass():
    v = evaluate({"ID1": patient_row(_metrics(folds=1), False, 3)})
    assert all(v["overall"].values()) and v["few_folds"] == ["ID1"] and not v["passed"]


def _fake_writer(calls):
    def write(out_dir, n_patients=8, seed=0, n_multifocal=2):
        calls.append(seed)
        (out_dir / "ID1").mkdir(parents=True)
        (out_dir / "ground_truth.json").write_text(json.dumps({"generator": "stress", "seed": seed, "patients": {}}))
        return out_dir
    return write


def test_ensure_cohort_never_replaces_a_folder_it_did_not_write(tmp_path, monkeypatch):
    import qcascade.data.stress as stress
    from bench.bench_stress import ensure_cohort

    calls = []
    monkeypatch.setattr(stress, "write_stress_cohort", _fake_writer(calls))
    user = tmp_path / "recordings"
    (user / "ID1").mkdir(parents=True)
    (user / "ID1" / "Sz1.mat").write_bytes(b"mine")
    with pytest.raises(ValueError, match="recordings.*no ground_truth.json"):
        ensure_cohort(user, seed=1)
    assert (user / "ID1" / "Sz1.mat").read_bytes() == b"mine" and calls == []


def test_ensure_cohort_generates_the_asked_seed_once_and_checks_it(tmp_path, monkeypatch):
    import qcascade.data.stress as stress
    from bench.bench_stress import ensure_cohort

    calls = []
    monkeypatch.setattr(stress, "write_stress_cohort", _fake_writer(calls))
    cohort = tmp_path / "cache" / "stress-seed1-n8"
    assert ensure_cohort(cohort, seed=1)["seed"] == 1
    assert ensure_cohort(cohort)["seed"] == 1  # no seed asked: whatever the folder holds
    assert calls == [1]  # reused, not regenerated
    assert sorted(p.name for p in cohort.parent.iterdir()) == ["stress-seed1-n8"]  # no partial folder left
    with pytest.raises(ValueError, match="seed 1, not seed 0"):
        ensure_cohort(cohort, seed=0)


def test_the_default_cohort_sections_judge_the_same_done_when(tmp_path):
    """bench.run_all's end-to-end sections judge issue 11's done-when on the run's own patients."""
    from bench.run_all import _done_when_lines

    (tmp_path / "ID1").mkdir()
    (tmp_path / "ID1" / "metrics.json").write_text(json.dumps(_metrics()))
    (tmp_path / "ID2").mkdir()
    (tmp_path / "ID2" / "metrics.json").write_text(json.dumps(_metrics(complex_=0.70, ratio=8.0)))
    text = "\n".join(_done_when_lines(tmp_path))
    assert "simple-only F1 ID1 0.800, ID2 0.800" in text
    assert "| complex-only F1 >= simple-only F1 - 0.02 | PASS | **FAIL** | **FAIL** |" in text
    assert "| multifocal: complex-only F1 >= simple-only F1 + 0.1 | n/a | n/a | PASS |" in text
    assert "Verdict on this cohort: **FAIL**." in text
    assert _done_when_lines(tmp_path / "none") == []
