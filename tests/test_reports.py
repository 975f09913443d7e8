"""Tests of qcascade.hls.reports on real vendor reports (shared fixtures) and hand-made ones (tests/data).

Real reports live in ``<repo>/../shared/fixtures/hls_reports`` (override with ``QCASCADE_FIXTURES``);
their licences forbid copying them into this repository, so those tests skip when the folder is
absent. The hand-made reports in ``tests/data/hls_reports`` (invented numbers, same formats) cover
every edge case on any machine.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from qcascade.errors import DataError, QCascadeError
from qcascade.hls.reports import (
    ReportParseError,
    main_report,
    parse_cosim,
    parse_csim_log,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_hls_dir,
    parse_vivado_synth,
    summarize_cascade,
)

REAL = Path(
    os.environ.get("QCASCADE_FIXTURES") or Path(__file__).resolve().parents[2] / "shared/fixtures/hls_reports"
)
DATA = Path(__file__).resolve().parent / "data" / "hls_reports"

HLS4ML = "hls4ml__vivado_hls2020.1_dense_io_stream"
STREAM = "seanlipps_ECE226_CoDesign__vitis2024.1_conv1d_io_stream"
PARALLEL = "seanlipps_ECE226_CoDesign__vitis2024.1_conv1d_io_parallel_cosim"
SPALLEN = "SpAllen0726_HG-DREAM__vitis2023.1_qkeras_conv1d_io_stream_csimfail_cosimfail"
THAARRES = "thaarres_dnd_hls4ml__vivado_hls2020.1_qkeras_dense"
NYCU = "nycu-pcs-lab_LFADs-model-template__vivado2022.2_u50"

SCHEMA = {
    "csynth": {"latency_best", "latency_worst", "ii", "lut", "ff", "dsp", "bram_18k", "clock_est_ns"},
    "vsynth": {"lut", "ff", "dsp", "bram_18k"},
    "cosim": {"status", "latency_min", "latency_max", "ii"},
    "csim": {"status"},
}


def real_dir(name: str) -> Path:
    path = REAL / name
    if not path.is_dir():
        pytest.skip(f"real vendor reports not found at {path} "
                    "(set QCASCADE_FIXTURES to the hls_reports folder)")
    return path


def schema_part(section: dict | None, name: str) -> dict | None:
    return None if section is None else {key: section[key] for key in SCHEMA[name]}


# Expected numbers from SOURCES.txt, each checked by hand against the report files.
REAL_EXPECTED = {
    HLS4ML: {
        "csynth": dict(latency_best=10, latency_worst=10, ii=8, lut=2532, ff=7969, dsp=73, bram_18k=0,
                       clock_est_ns=4.049),
        "vsynth": dict(lut=1526, ff=2428, dsp=66, bram_18k=0),
        "cosim": None,
        "csim": None,
    },
    STREAM: {
        "csynth": dict(latency_best=395, latency_worst=395, ii=390, lut=17966, ff=7123, dsp=467, bram_18k=29,
                       clock_est_ns=3.53),
        "vsynth": dict(lut=8565, ff=4864, dsp=467, bram_18k=24),  # 12 Block RAM tiles
        "cosim": None,
        "csim": None,
    },
    PARALLEL: {
        "csynth": dict(latency_best=183, latency_worst=184, ii=128, lut=449837, ff=495589, dsp=471,
                       bram_18k=5, clock_est_ns=3.635),
        "vsynth": dict(lut=306396, ff=377196, dsp=469, bram_18k=4),  # 2 tiles (4 x RAMB18)
        # the .rpt says Pass with every number NA: latency/interval come from the transaction file
        "cosim": dict(status="pass", latency_min=183, latency_max=183, ii=128),
        "csim": None,
    },
    SPALLEN: {
        "csynth": dict(latency_best=695, latency_worst=695, ii=578, lut=339116, ff=65881, dsp=29,
                       bram_18k=332, clock_est_ns=3.649),
        "vsynth": None,
        "cosim": dict(status="fail", latency_min=None, latency_max=None, ii=None),
        "csim": dict(status="fail"),
    },
    THAARRES: {  # csynth from the .rpt: no XML here
        "csynth": dict(latency_best=5, latency_worst=5, ii=1, lut=59561, ff=4561, dsp=0, bram_18k=1,
                       clock_est_ns=4.218),
        "vsynth": dict(lut=31277, ff=4555, dsp=0, bram_18k=1),  # Block RAM Tile 0.5
        "cosim": None,
        "csim": None,
    },
    NYCU: {  # per-SLR tables (section 13) hold zeros
        "csynth": None,
        "vsynth": dict(lut=179437, ff=227971, dsp=2058, bram_18k=502),
        "cosim": None,
        "csim": None,
    },
}


@pytest.mark.parametrize("fixture", sorted(REAL_EXPECTED))
def test_real_reports_schema_numbers(fixture):
    report = parse_hls_dir(real_dir(fixture))
    assert set(report) == set(SCHEMA)
    for name, expected in REAL_EXPECTED[fixture].items():
        assert schema_part(report[name], name) == expected, name
    json.dumps(report)  # JSON-serialisable as the CLI prints it


@pytest.mark.parametrize("fixture, tag", [
    (HLS4ML, "DSP48E"),
    (STREAM, "DSP"),
    (SPALLEN, "DSP"),
])
def test_real_dsp_tag_old_vivado_vs_vitis(fixture, tag):
    csynth = parse_hls_dir(real_dir(fixture))["csynth"]
    assert csynth["dsp_tag"] == tag
    assert csynth["available"]["dsp"] is not None


@pytest.mark.parametrize("fixture", [
    HLS4ML,
    STREAM,
    SPALLEN,
])
def test_real_rpt_agrees_with_xml(fixture):
    report_dir = real_dir(fixture) / "myproject_prj/solution1/syn/report"
    from_xml = parse_csynth_xml(report_dir / "myproject_csynth.xml")
    from_rpt = parse_csynth_rpt(report_dir / "myproject_csynth.rpt")
    assert schema_part(from_rpt, "csynth") == schema_part(from_xml, "csynth")
    assert from_rpt["available"] == from_xml["available"]


def test_real_ii_violation_vitis_stream_conv():
    csynth = parse_hls_dir(real_dir(STREAM))["csynth"]
    assert csynth["ii_violation"] is True
    loop = csynth["ii_violations"][0]
    assert loop["where"].endswith("/ReadInputWidth") and (loop["ii_achieved"], loop["ii_target"]) == (3, 1)


def test_real_ii_violation_unknown_without_rpt():
    csynth = parse_hls_dir(real_dir(PARALLEL))["csynth"]
    assert csynth["ii_violation"] is None  # only the XML is there, and its IssueType is unreliable


def test_real_cosim_na_completed_from_transaction_file():
    cosim = parse_hls_dir(real_dir(PARALLEL))["cosim"]
    assert cosim["numbers_from"] == "transaction file" and cosim["n_transactions"] == 5
    report = real_dir(PARALLEL)
    alone = parse_cosim(report / "myproject_prj/solution1/sim/report/myproject_cosim.rpt")
    assert (alone["status"], alone["latency_min"], alone["ii"]) == ("pass", None, None)


def test_real_csim_link_failure_lines():
    csim = parse_hls_dir(real_dir(SPALLEN))["csim"]
    assert any("'csim_design' failed" in line for line in csim["errors"])
    assert any("collect2: error" in line for line in csim["errors"])


def test_real_per_layer_dsp_vs_lut_products():
    report_dir = real_dir(SPALLEN)
    report_dir = report_dir / "myproject_prj/solution1/syn/report"
    # ap_fixed<16,6> input: products on DSPs; ufixed<6,0> input: all in LUTs.
    wide_input = parse_csynth_xml(
        report_dir / "conv_1d_cl_array_ap_fixed_1u_array_ap_fixed_27_12_5_3_0_32u_config2_s_csynth.xml")
    narrow_input = parse_csynth_xml(
        report_dir / "conv_1d_cl_array_array_ap_fixed_22_11_5_3_0_32u_config5_s_csynth.xml")
    assert (wide_input["dsp"], wide_input["latency_worst"]) == (29, 249)
    assert (narrow_input["dsp"], narrow_input["lut"]) == (0, 68524)


def test_real_vivado_fractional_bram_and_slr_tables():
    thaarres = parse_vivado_synth(real_dir(THAARRES) / "vivado_synth.rpt")
    assert (thaarres["bram_tile"], thaarres["bram_18k"]) == (0.5, 1)
    nycu = parse_vivado_synth(real_dir(NYCU) / "vivado_synth.rpt")
    assert (nycu["lut"], nycu["dsp"], nycu["bram_tile"]) == (179437, 2058, 251.0)  # not the SLR zeros
    assert nycu["available"]["lut"] == 871680


# ---------------------------------------------------------------- hand-made reports (always run)

def test_handmade_vitis_xml_dsp_tag_and_project_discovery():
    report = parse_hls_dir(DATA / "vitis_ultrascale")
    assert schema_part(report["csynth"], "csynth") == dict(
        latency_best=212, latency_worst=215, ii=204, lut=7890, ff=3456, dsp=12, bram_18k=6,
        clock_est_ns=3.912)
    assert report["csynth"]["dsp_tag"] == "DSP" and report["csynth"]["top"] == "cascade_simple"
    assert report["csynth"]["ii_min"] == 200  # ii is the worst interval


def test_handmade_old_vivado_xml_dsp48e_and_undef():
    csynth = parse_hls_dir(DATA / "vivado_hls_xml_cosim_na")["csynth"]
    assert csynth["dsp_tag"] == "DSP48E" and csynth["dsp"] == 8 and csynth["available"]["dsp"] == 360
    assert (csynth["latency_best"], csynth["latency_worst"], csynth["ii"]) == (42, None, None)  # undef
    assert csynth["ii_violation"] is None  # no .rpt to check


def test_handmade_csynth_rpt_fallback_without_xml():
    csynth = parse_hls_dir(DATA / "vivado7_rpt_only")["csynth"]
    assert csynth["file"].endswith("cascade_complex_csynth.rpt")
    assert schema_part(csynth, "csynth") == dict(
        latency_best=37, latency_worst=45, ii=46, lut=9000, ff=5000, dsp=20, bram_18k=4, clock_est_ns=8.123)
    assert csynth["dsp_tag"] == "DSP48E" and csynth["available"]["lut"] == 63400
    assert csynth["ii_violation"] is False  # Loop 1 achieved == target, Loop 2 not pipelined


def test_handmade_ii_violations_loop_table_and_issue_type():
    csynth = parse_hls_dir(DATA / "vitis_ultrascale")["csynth"]
    assert csynth["ii_violation"] is True
    by_where = {v["where"]: v for v in csynth["ii_violations"]}
    assert set(by_where) == {"conv1d_block/ReadInputWidth", "mult_kernel"}  # ReadInputWidth listed once
    loop = by_where["conv1d_block/ReadInputWidth"]
    assert (loop["ii_achieved"], loop["ii_target"]) == (2, 1)
    assert by_where["mult_kernel"]["file"] == "csynth.rpt"


def test_handmade_cosim_pass_with_numbers():
    cosim = parse_hls_dir(DATA / "vitis_ultrascale")["cosim"]
    assert schema_part(cosim, "cosim") == dict(status="pass", latency_min=214, latency_max=214, ii=204)
    assert (cosim["numbers_from"], cosim["total_cycles"], cosim["rtl"]) == ("cosim.rpt", 2046, "Verilog")


def test_handmade_cosim_pass_na_uses_transaction_file():
    cosim = parse_hls_dir(DATA / "vivado_hls_xml_cosim_na")["cosim"]
    assert schema_part(cosim, "cosim") == dict(status="pass", latency_min=40, latency_max=42, ii=17)
    assert (cosim["ii_min"], cosim["n_transactions"], cosim["numbers_from"]) == (16, 4, "transaction file")


def test_handmade_cosim_pass_na_without_transaction_file():
    rpt = DATA / "vivado_hls_xml_cosim_na/det_prj/solution1/sim/report/det_cosim.rpt"
    cosim = parse_cosim(rpt, rpt.parent / "missing.transaction.xml")
    assert schema_part(cosim, "cosim") == dict(status="pass", latency_min=None, latency_max=None, ii=None)


def test_handmade_cosim_fail_old_format():
    cosim = parse_hls_dir(DATA / "vivado7_rpt_only")["cosim"]
    assert schema_part(cosim, "cosim") == dict(status="fail", latency_min=None, latency_max=None, ii=None)


@pytest.mark.parametrize("case, status, n_errors", [
    ("vitis_ultrascale", "pass", 0),           # INFO: [SIM 1] CSim done with 0 errors.
    ("vivado_hls_xml_cosim_na", "pass", 0),    # INFO: [SIM 211-1] CSim done with 0 errors.
    ("vivado7_rpt_only", "fail", 2),           # @E Simulation failed + ERROR: [SIM 211-100]
    ("csim_compile_error", "fail", 3),         # compiler error, make ***, ERR: [SIM 100]
])
def test_handmade_csim_status(case, status, n_errors):
    csim = parse_hls_dir(DATA / case)["csim"]
    assert (csim["status"], len(csim["errors"])) == (status, n_errors)


def test_csim_incomplete_log_is_unknown(tmp_path):
    log = tmp_path / "x_csim.log"
    log.write_text("INFO: [SIM 2] *************** CSIM start ***************\n   Generating csim.exe\n")
    assert parse_csim_log(log)["status"] == "unknown"


def test_handmade_vivado_ultrascale_prohibited_fractional_slr():
    vsynth = parse_hls_dir(DATA / "vitis_ultrascale")["vsynth"]
    # 1.5 Block RAM tiles -> 3; the section-13 per-SLR zeros do not overwrite the totals.
    assert schema_part(vsynth, "vsynth") == dict(lut=6543, ff=3210, dsp=12, bram_18k=3)
    assert (vsynth["bram_tile"], vsynth["uram"], vsynth["part"]) == (1.5, 0, "xcvu9p-flga2104-2L-e")


def test_handmade_vivado_7series_sections():
    vsynth = parse_hls_dir(DATA / "vivado7_rpt_only")["vsynth"]
    assert schema_part(vsynth, "vsynth") == dict(lut=8123, ff=4567, dsp=20, bram_18k=1)  # 0.5 tile
    assert vsynth["available"] == dict(lut=63400, ff=126800, dsp=240, bram_18k=270, uram=None)


def test_handmade_absent_sections_are_none():
    report = parse_hls_dir(DATA / "csim_compile_error")
    assert (report["csynth"], report["vsynth"], report["cosim"]) == (None, None, None)
    assert parse_hls_dir(DATA / "vivado_hls_xml_cosim_na")["vsynth"] is None


@pytest.mark.parametrize("case, file_name", [
    ("truncated_xml", "broken_csynth.xml"),
    ("truncated_vivado", "vivado_synth.rpt"),
])
def test_handmade_truncated_report_raises_naming_file(case, file_name):
    with pytest.raises(ReportParseError) as info:
        parse_hls_dir(DATA / case)
    assert isinstance(info.value, QCascadeError) and info.value.path.name == file_name
    assert file_name in str(info.value)


def test_missing_dir_and_two_projects(tmp_path):
    with pytest.raises(DataError, match="not found"):
        parse_hls_dir(tmp_path / "nope")
    (tmp_path / "a_prj").mkdir()
    (tmp_path / "b_prj").mkdir()
    with pytest.raises(DataError, match="several HLS projects"):
        parse_hls_dir(tmp_path)


def test_project_name_from_folder_when_no_app_file(tmp_path):
    shutil.copytree(DATA / "vivado_hls_xml_cosim_na/det_prj", tmp_path / "det_prj")
    (tmp_path / "det_prj/vivado_hls.app").unlink()
    assert parse_hls_dir(tmp_path)["csynth"]["top"] == "det"


def test_summarize_cascade_vendor_reports():
    simple = parse_hls_dir(DATA / "vitis_ultrascale")  # csynth worst 215, vsynth resources
    complex_ = parse_hls_dir(DATA / "vivado7_rpt_only")  # csynth worst 45
    summary = summarize_cascade(simple, complex_, routing_rate=0.2, clock_ns=5.0)
    assert summary["source"] == "vendor report"
    assert summary["expected_latency_cycles"] == pytest.approx(215 + 0.2 * 45)
    assert summary["expected_latency_ns"] == pytest.approx((215 + 9) * 5.0)
    assert (summary["worst_latency_cycles"], summary["worst_latency_ns"]) == (260, 1300.0)
    resources = (summary["lut"], summary["ff"], summary["dsp"], summary["bram_18k"])
    assert resources == (6543 + 8123, 3210 + 4567, 12 + 20, 3 + 1)  # Vivado synthesis numbers


def test_summarize_cascade_with_estimate_is_labelled():
    simple = parse_hls_dir(DATA / "vitis_ultrascale")["csynth"]  # a bare csynth section works too
    estimate = {"source": "ESTIMATE", "latency_cycles": 100, "dsp": 4, "lut": None, "lut_mult": 50}
    summary = summarize_cascade(simple, estimate, routing_rate=0.5, clock_ns=4.0)
    assert summary["source"] == "ESTIMATE"
    assert summary["sources"] == {"simple": "vendor report", "complex": "ESTIMATE"}
    assert (summary["expected_latency_cycles"], summary["worst_latency_ns"]) == (265.0, 1260.0)
    assert (summary["dsp"], summary["lut"]) == (16, None)
    with pytest.raises(ValueError):
        summarize_cascade(simple, estimate, routing_rate=1.5, clock_ns=4.0)


def test_main_report_json_and_table():
    as_json = json.loads(main_report(str(DATA / "vivado7_rpt_only"), as_json=True))
    assert set(as_json) == set(SCHEMA) and as_json["csim"]["status"] == "fail"
    table = main_report(str(DATA / "vitis_ultrascale"), as_json=False)
    assert "C synthesis (cascade_simple_csynth.xml)" in table
    assert "conv1d_block/ReadInputWidth: achieved 2 > target 1" in table
    assert "C/RTL co-simulation" in table and "lut             6543" in table
