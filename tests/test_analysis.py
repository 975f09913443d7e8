"""Data analysis: SOZ electrodes rank first, outputs are complete, and it runs on SWEC-format folders."""

import argparse
import json

import numpy as np
import pytest
from scipy.signal import welch

from qcascade.analysis import add_analyze_arguments, analyze_main, recommend, run_analysis, window_psd
from qcascade.data import discover
from qcascade.data.synthetic import cohort_recordings, make_cohort, write_swec_short


def check_result(result, out_dir, soz, plots=True):
    on_disk = json.loads((out_dir / "analysis.json").read_text())
    assert on_disk["recommended_simple_model"] == result["recommended_simple_model"] in {"A", "B", "C"}
    assert 0.0 <= on_disk["easy_fraction"] <= 1.0
    for pid, p in on_disk["patients"].items():
        assert isinstance(p["n_electrodes"], int)
        assert sorted(p["ranking"]) == list(range(p["n_electrodes"]))
        assert len(p["separability"]) == p["n_electrodes"]
        assert p["separability"][p["ranking"][0]] == max(p["separability"])
        assert p["ranking"][0] in soz[pid], f"{pid}: best electrode {p['ranking'][0]} not in SOZ {soz[pid]}"
    md = (out_dir / "analysis.md").read_text()
    assert f"Recommended simple model: {result['recommended_simple_model']}" in md
    for pid in on_disk["patients"] if plots else []:
        for kind in ("separability", "spectra", "correlation"):
            assert (out_dir / f"{kind}_{pid}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out_dir.glob("*.tmp"))  # nothing half-written left behind


def test_soz_ranks_first_for_every_synthetic_patient(tmp_path):
    cohort = make_cohort(3, seed=0, n_seizures=3, pre_ictal_s=60, post_ictal_s=60)
    result = run_analysis(cohort_recordings(cohort), tmp_path, plots=False)
    check_result(result, tmp_path, {p.patient_id: p.soz_electrodes for p in cohort.patients}, plots=False)
    assert result["easy_fraction"] > 0.5  # the cheap stage settles most windows ...
    assert result["easy_fraction_by_tau"]["0.9"] < 0.95  # ... but not all


def test_cli_on_a_written_swec_short_folder(tmp_path, capsys):
    cohort = make_cohort(1, seed=5, n_seizures=3, electrode_range=(24, 24))
    write_swec_short(cohort, tmp_path / "data", mat_version="7.3")
    parser = add_analyze_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--dataset", "swec-short", "--data-dir", str(tmp_path / "data"),
                              "--out", str(tmp_path / "out")])
    assert analyze_main(args) == 0
    assert "recommended simple model" in capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "analysis.json").read_text())
    check_result(result, tmp_path / "out", {"ID1": cohort.patients[0].soz_electrodes})


def test_recommendation_follows_the_numbers():
    assert recommend({"B": 0.70, "C": 0.65})[0] == "A"
    assert recommend({"B": 0.93, "C": 0.92})[0] == "C"
    assert recommend({"B": 0.95, "C": 0.85})[0] == "B"


def test_psd_matches_scipy_welch():
    X = np.random.default_rng(0).standard_normal((3, 512, 2)).astype(np.float32)
    freqs, psd = window_psd(X)
    ref_f, ref = welch(X, fs=512, nperseg=512, axis=1)
    np.testing.assert_allclose(freqs, ref_f)
    np.testing.assert_allclose(psd, ref, rtol=1e-3, atol=1e-9)


@pytest.mark.slow
def test_default_synthetic_cohort(tmp_path):
    patients = discover("synthetic")
    result = run_analysis(patients, tmp_path)
    check_result(result, tmp_path, {pid: recs[0].info["soz_electrodes"] for pid, recs in patients.items()})


def test_amplitude_spread_measures_gain_between_recordings(tmp_path):
    # A recording played 3x louder has 3x the amplitude, and the others do not move: the spread is
    # what docs/input_scaling.md asks a user to look at before choosing the input scaling.
    import dataclasses

    from qcascade.analysis import analyze_patient

    recs = cohort_recordings(make_cohort(1, seed=2, n_seizures=3, pre_ictal_s=60, post_ictal_s=60))["ID1"]
    before = analyze_patient(recs)
    base = before["amplitude_by_recording"]
    louder = [dataclasses.replace(recs[0], data=recs[0].data * 3.0)] + recs[1:]
    got = analyze_patient(louder)
    amp = got["amplitude_by_recording"]
    assert amp[recs[0].record_id] == pytest.approx(3 * base[recs[0].record_id], rel=1e-3)
    assert all(amp[r.record_id] == base[r.record_id] for r in recs[1:])
    assert got["amplitude_spread"] == pytest.approx(max(amp.values()) / min(amp.values()), rel=1e-3)
    others = [base[r.record_id] for r in recs[1:]]
    assert got["amplitude_spread"] == pytest.approx(3 * base[recs[0].record_id] / min(others), rel=1e-3)
    assert got["amplitude_spread"] > before["amplitude_spread"]
    result = run_analysis({"ID1": louder}, tmp_path, plots=False)
    assert f"x{got['amplitude_spread']:.2f}" in (tmp_path / "analysis.md").read_text()
