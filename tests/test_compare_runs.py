"""bench.compare_runs: a held-out rule's four conditions, computed from two runs' pooled metrics."""

import json

import pytest

from bench.bench_stress import patient_row
from bench.compare_runs import compare, load_rows, main, markdown
from qcascade.errors import DataError


def _metrics(cascade=0.86, cascade_macs=1000.0, hidden=0, folds=3) -> dict:
    """A patient's pooled metrics.json: complex-only costs 10000 MACs a window, simple-only F1 0.80,
    complex-only 0.85; the cascade's F1, MACs and hidden events vary."""
    wm = {"f1": 0.0, "auc": 0.9}
    t = {"simple_only": {**wm, "f1": 0.80}, "complex_only": {**wm, "f1": 0.85}, "feature_baseline": {**wm, "f1": 0.7},
         "cascade": {**wm, "f1": cascade, "routing_rate": 0.1, "avg_macs_per_window": cascade_macs,
                     "macs_ratio_vs_complex": 10000.0 / cascade_macs},
         "events": {"n_events": folds},
         "hidden_seizures": {"vs_complex_only": {"n_events": folds, "n_reference_detected": folds,
                                                 "n_missed_but_reference_detected": hidden}}}
    return {"test": t, "selected_electrode": 3, "soz_electrodes": [3], "folds": [{"fold": k} for k in range(folds)]}


def _rows(**per_patient) -> dict:
    return {p: patient_row(_metrics(**kw), False, 3) for p, kw in per_patient.items()}


BASE = _rows(ID1={"cascade": 0.90, "cascade_macs": 1000.0}, ID2={"cascade": 0.80, "cascade_macs": 1000.0})


def test_a_cheaper_run_losing_nothing_passes():
    new = _rows(ID1={"cascade": 0.90, "cascade_macs": 800.0}, ID2={"cascade": 0.80, "cascade_macs": 900.0})
    res = compare(BASE, new)
    assert res["passed"] and all(ok for ok, _ in res["conditions"].values())
    # bench_stress's pooling: mean complex-only MACs / mean cascade MACs, not the mean of the ratios
    assert res["base"]["macs_ratio"] == pytest.approx(10.0) and res["new"]["macs_ratio"] == pytest.approx(10000 / 850)


@pytest.mark.parametrize("new_kw,failed", [
    (dict(ID1={"cascade": 0.90, "cascade_macs": 990.0}), ["ratio"]),  # +0.05 of the ratio only
    # a hidden event is also a failing cell of the done-when table
    (dict(ID1={"cascade": 0.90, "cascade_macs": 800.0, "hidden": 1}), ["hidden", "failing"]),
    (dict(ID1={"cascade": 0.86, "cascade_macs": 800.0}), ["f1"]),  # one patient -0.04
    (dict(ID1={"cascade": 0.88, "cascade_macs": 800.0}, ID2={"cascade": 0.78, "cascade_macs": 1000.0}), ["f1"]),  # mean -0.02
    (dict(ID1={"cascade": 0.90, "cascade_macs": 500.0}, ID2={"cascade": 0.80, "cascade_macs": 1100.0}), ["failing"]),  # ID2 < 10x
])
def test_each_condition_fails_alone(new_kw, failed):
    new = _rows(**{**{"ID1": {"cascade": 0.90, "cascade_macs": 1000.0}, "ID2": {"cascade": 0.80, "cascade_macs": 1000.0}},
                   **new_kw})
    res = compare(BASE, new)
    assert not res["passed"]
    assert [k for k, (ok, _) in res["conditions"].items() if not ok] == failed


def test_bounds_are_inclusive():
    new = _rows(ID1={"cascade": 0.87, "cascade_macs": 820.0}, ID2={"cascade": 0.81, "cascade_macs": 1000.0})
    res = compare(BASE, new, min_ratio_gain=0.0, max_mean_f1_drop=0.01, max_patient_f1_drop=0.03)
    assert res["conditions"]["f1"][0] and res["drops"]["ID1"] == pytest.approx(0.03)


def test_different_patients_are_refused():
    with pytest.raises(DataError, match="different patients"):
        compare(BASE, _rows(ID1={}))


def test_noise_column_and_line():
    noise = _rows(ID1={"cascade": 0.85}, ID2={"cascade": 0.82})
    res = compare(BASE, BASE)
    text = markdown(BASE, BASE, res, noise)
    assert "| ID1 | 0.900 -> 0.900 (+0.000) | -0.050 |" in text
    assert "largest patient move ID1 0.050" in text and "Verdict: **FAIL**" in text  # no ratio gain


def _write_cohort(tmp_path, runs: dict):
    data = tmp_path / "cohort"
    data.mkdir()
    truth = {"patients": {p: {"multifocal": False, "recordings": {f"{p}_Sz{k}": {} for k in range(3)}}
                          for p in ("ID1", "ID2")}}
    (data / "ground_truth.json").write_text(json.dumps(truth))
    for name, per_patient in runs.items():
        for p, kw in per_patient.items():
            unit = tmp_path / name / p / p
            unit.mkdir(parents=True)
            (unit / "metrics.json").write_text(json.dumps(_metrics(**kw)))
    return data


def test_cli_reads_run_folders(tmp_path, capsys):
    data = _write_cohort(tmp_path, {"base": {"ID1": {}, "ID2": {}},
                                    "new": {"ID1": {"cascade_macs": 700.0}, "ID2": {"cascade_macs": 700.0}}})
    out = tmp_path / "r.json"
    assert main([str(tmp_path / "base"), str(tmp_path / "new"), "--data-dir", str(data), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "overall MACs ratio 10.00 -> 14.29" in text and "Verdict: **PASS**" in text
    assert json.loads(out.read_text())["passed"] is True


def test_an_unfinished_patient_is_named(tmp_path, capsys):
    data = _write_cohort(tmp_path, {"base": {"ID1": {}, "ID2": {}}, "new": {"ID1": {}}})
    with pytest.raises(DataError, match=r"new/ID2/ID2: not started"):
        load_rows(data, tmp_path / "new")
    assert main([str(tmp_path / "base"), str(tmp_path / "new"), "--data-dir", str(data)]) == 2
    assert "ID2" in capsys.readouterr().err


def test_a_folder_that_is_no_cohort_is_named(tmp_path):
    with pytest.raises(DataError, match="ground_truth.json: not found"):
        load_rows(tmp_path, tmp_path)


def test_a_damaged_ground_truth_is_named(tmp_path):
    (tmp_path / "ground_truth.json").write_text("{not json")
    with pytest.raises(DataError, match="ground_truth.json: not valid JSON"):
        load_rows(tmp_path, tmp_path)
