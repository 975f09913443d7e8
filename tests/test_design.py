"""Sizing the run's hls configs (user edits win), hw_summary fields, the fit banner, power reports."""

from pathlib import Path

import pytest

from qcascade.artifacts import Artifacts
from qcascade.errors import ConfigError, QCascadeError
from qcascade.hls import design
from qcascade.hls.power import parse_power_report
from qcascade.hls.targets import load_target

FIXTURES = Path("/work/shared/fixtures/hls_reports")


def test_user_reuse_factors_win():
    cfg = {"HLSConfig": {"LayerName": {}}}
    assert design._fixed_rf(cfg, {"Model": {"ReuseFactor": "auto"}}, None, None) == {}
    assert design._fixed_rf(cfg, {"Model": {"ReuseFactor": 4}}, None, None) == {"*": 4}
    assert design._fixed_rf(cfg, {"LayerName": {"c1": {"ReuseFactor": 8}}}, None, None) == {"c1": 8}
    assert design._fixed_rf(cfg, {"Model": {"ReuseFactor": 4}}, None, 2) == {"*": 2}  # hls.reuse_factor
    old = {"qcascade_auto": {"c1": 160, "c2": 64},
           "HLSConfig": {"LayerName": {"c1": {"ReuseFactor": 32}, "c2": {"ReuseFactor": 64}}}}
    assert design._fixed_rf(cfg, {}, old, None) == {"c1": 32}  # c1 edited by hand, c2 as written
    with pytest.raises(ConfigError, match="ReuseFactor"):
        design._fixed_rf(cfg, {"Model": {"ReuseFactor": "fast"}}, None, None)


def _tables(rf_block1=2560, block1_products=20480):
    simple = [{"model": "simple", "name": "x", "config_name": "x", "kind": "input", "in_steps": 0, "out_steps": 512,
               "result_bits": 16, "outputs": []},
              {"model": "simple", "name": "c", "config_name": "c", "kind": "matmul", "class_name": "Conv1D",
               "in_steps": 512, "out_steps": 256, "products": 240, "weight_bits": 16, "n_weights": 240,
               "input_bits": 16, "result_bits": 32, "reuse_factor": 240, "strategy": "resource",
               "outputs": [{"name": "c", "depth": 2, "width_bits": 512}]}]
    cplx = [{"model": "complex", "name": "x", "config_name": "x", "kind": "input", "in_steps": 0, "out_steps": 512,
             "result_bits": 16, "outputs": []},
            {"model": "complex", "name": "block1", "config_name": "block1", "kind": "matmul", "class_name": "Conv1D",
             "in_steps": 513, "out_steps": 128, "products": block1_products, "weight_bits": 16, "n_weights": 20480,
             "input_bits": 16, "result_bits": 30, "reuse_factor": rf_block1, "strategy": "resource",
             "outputs": [{"name": "b", "depth": 2, "width_bits": 960}]}]
    return {"simple": simple, "complex": cplx}


def test_hw_summary_fields_and_banner():
    kw = dict(target=load_target("xc7z020"), clock_ns=10.0, window_period_s=1.0, routing_rate=0.2, n_times=512,
              n_chans=128, sample_bits=16)
    s = design.hw_summary(_tables(), **kw)
    assert set(s["target"]) >= {"name", "part", "dsp", "bram_18k", "lut", "ff"}
    for block in ("simple", "complex", "cascade"):
        assert {"dsp", "bram_18k", "lut", "latency_cycles", "ii"} <= set(s[block])
    assert {"model", "name", "reuse_factor", "strategy", "parallel_products"} <= set(s["layers"][0])
    assert s["fits"] is True and s["realtime_margin"] > 1 and design.fit_banner(s) is None
    assert s["energy"]["source"] == "ESTIMATE" and 0 < s["energy"]["simple_fraction_of_complex"] < 1
    big = design.hw_summary(_tables(rf_block1=1, block1_products=20480), **kw)
    assert big["fits"] is False and "DOES NOT FIT xc7z020" in design.fit_banner(big)
    power = {"simple": {"total_w": 0.1}, "complex": {"total_w": 0.2}}
    p = design.hw_summary(_tables(), power=power, **kw)
    assert p["energy"]["source"] == "vivado report_power"
    assert p["energy"]["simple_nj"] == pytest.approx(0.1 * p["simple"]["latency_cycles"] * 10.0)


def test_hw_summary_counts_the_input_scaling():
    from qcascade.hls import sizing

    kw = dict(target=load_target("xc7z020"), clock_ns=10.0, window_period_s=1.0, routing_rate=0.2, n_times=512,
              n_chans=128, sample_bits=16)
    off = design.hw_summary(_tables(), **kw)
    assert design.hw_summary(_tables(), scale_lanes=None, **kw) == off and "input_scaling" not in off["cascade"]
    lanes = sizing.scale_lanes_for(off["budget"]["worst_latency_cycles"], budget_cycles=1e6, n_times=512,
                                   n_chans=128, family="zynq7")
    on = design.hw_summary(_tables(), scale_lanes=lanes, **kw)
    cost = on["cascade"]["input_scaling"]
    assert cost["lanes"] == lanes["lanes"] and cost["meets_budget"] == lanes["meets_budget"]
    assert on["cascade"]["dsp"] == off["cascade"]["dsp"] + cost["dsp"] and cost["dsp"] == cost["lanes"]
    assert on["cascade"]["latency_cycles"] == off["cascade"]["latency_cycles"] + cost["extra_cycles"]
    assert on["budget"]["worst_latency_cycles"] == on["cascade"]["latency_cycles"] <= 1e6
    assert len(on["rules"]) == len(off["rules"]) + 1 and "input scaling" in on["rules"][-1]


def test_power_report_parser_on_real_reports():
    reports = sorted(FIXTURES.glob("**/*power*.rpt")) if FIXTURES.is_dir() else []
    if not reports:
        pytest.skip(f"no Vivado report_power file among the real report fixtures in {FIXTURES}")
    for rpt in reports:
        assert parse_power_report(rpt)["total_w"] > 0


def test_power_report_parser_rejects_other_files():
    rpt = FIXTURES / "hls4ml__vivado_hls2020.1_dense_io_stream" / "vivado_synth.rpt"
    if not rpt.is_file():
        pytest.skip(f"{rpt} not present")
    with pytest.raises(QCascadeError, match="Total On-Chip Power"):
        parse_power_report(rpt)


def _ctx(tmp_path, strict: bool, rf_block1: int):
    import json
    from types import SimpleNamespace

    from qcascade.config import load_config

    unit = tmp_path / "ID1"
    (unit / "hls").mkdir(parents=True)
    for name, rows in _tables(rf_block1=rf_block1).items():
        (unit / "hls" / f"{name}_layers.json").write_text(json.dumps(rows))
    # what step_prepare_data records: data.input_scaling: auto resolved for this unit
    (unit / "data.json").write_text(json.dumps({"scaling_choice": {"input_scaling": "train_stats", "reason": "test"}}))

    def path(*parts):
        p = unit.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    cfg = load_config(overrides={"hls": {"strict": strict}})
    return SimpleNamespace(cfg=cfg, unit_dir=unit, run_dir=tmp_path, unit="ID1", path=path, artifacts=Artifacts())


def test_a_design_that_does_not_fit_is_loud_and_strict_refuses_it(tmp_path, caplog):
    from qcascade.report import write_unit_report
    from qcascade.steps_hw import write_hw_summary

    ctx = _ctx(tmp_path / "loose", strict=False, rf_block1=1)  # 20,480 DSP multipliers on a 220-DSP part
    summary = write_hw_summary(ctx)
    assert summary["fits"] is False and (ctx.unit_dir / "hw_summary.json").exists()
    assert any("DOES NOT FIT" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    report = write_unit_report(ctx).read_text().splitlines()
    assert "DOES NOT FIT xc7z020" in report[2]  # right under the title
    strict = _ctx(tmp_path / "strict", strict=True, rf_block1=1)
    with pytest.raises(QCascadeError, match="hls.strict.*DOES NOT FIT"):
        write_hw_summary(strict)
    ok = _ctx(tmp_path / "ok", strict=True, rf_block1=2560)
    assert write_hw_summary(ok)["fits"] is True


def test_strict_flag_reaches_the_config():
    import argparse

    from qcascade.cli import add_train_arguments, resolve_train_config

    p = argparse.ArgumentParser()
    add_train_arguments(p)
    assert resolve_train_config(p.parse_args(["--strict"])).hls.strict is True
    assert resolve_train_config(p.parse_args([])).hls.strict is False


def test_strict_does_not_change_the_run_identity():
    from qcascade.config import config_hash, load_config

    assert config_hash(load_config(overrides={"hls": {"strict": True}})) == config_hash(load_config())
    assert config_hash(load_config(overrides={"hls": {"target": "u250"}})) != config_hash(load_config())
