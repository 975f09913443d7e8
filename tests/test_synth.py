"""Vendor flow without the vendor tools: static TCL checks in tclsh, missing tools, fake tools."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qcascade.errors import ToolNotFoundError
from qcascade.hls import csim, synth
from qcascade.hls import toplevel as tl
from test_toplevel import build_tiny_projects, toplevel_kwargs

pytestmark = pytest.mark.skipif(shutil.which("tclsh") is None, reason="tclsh not installed")

# Stubs for the Vitis HLS / Vivado commands: record each call and check referenced files exist.
STUBS = r"""
proc qc_record {args} { puts "CALL $args" }
proc qc_check {path} {
    if {![file exists $path]} { puts "MISSING $path"; exit 3 }
}
proc add_files {args} {
    qc_record add_files {*}$args
    set skip 0
    foreach a $args {
        if {$skip} { set skip 0; continue }
        if {$a eq "-cflags"} { set skip 1; continue }
        if {[string index $a 0] eq "-"} { continue }
        qc_check $a
    }
}
proc read_xdc {path} { qc_record read_xdc $path; qc_check $path }
foreach cmd {open_project set_top open_solution set_part create_clock set_clock_uncertainty config_compile
             config_array_partition csim_design csynth_design cosim_design export_design synth_design
             opt_design report_utilization report_timing_summary report_timing report_power} {
    proc $cmd {args} "qc_record $cmd {*}\$args"
}
"""


def run_tcl(script: Path, tmp_path: Path, env: dict | None = None) -> tuple[int, list[str]]:
    driver = tmp_path / "driver.tcl"
    driver.write_text(STUBS + f"\nsource {{{script}}}\n")
    proc = subprocess.run(["tclsh", str(driver)], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, **(env or {})})
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()


@pytest.fixture(scope="module")
def top(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    projects = build_tiny_projects(root / "prj", 64, 4)
    out = root / "run" / "hls" / "cascade"
    tl.generate_toplevel(out, **toplevel_kwargs(projects, 64, 4))
    return out


@pytest.mark.parametrize("design", synth.DESIGNS)
def test_hls_flow_tcl_static(top, tmp_path, design):
    ddir = top / tl.load_manifest(top)["designs"][design]
    rc, out = run_tcl(ddir / "hls_flow.tcl", tmp_path)
    assert rc == 0, out
    calls = [line for line in out if line.startswith("CALL ")]
    names = [c.split()[1] for c in calls]
    assert names.index("csim_design") < names.index("csynth_design") < names.index("cosim_design") \
        < names.index("export_design")
    top_name = "cascade_top" if design == "cascade" else f"{design}_mdl"
    assert f"CALL set_top {top_name}" in calls
    assert f"CALL open_project -reset {top_name}_prj" in calls
    sources = [c for c in calls if c.startswith("CALL add_files") and " -tb " not in c]
    assert any(c.split()[2].endswith(f"{top_name}.cpp") for c in sources)
    assert all("-DQCASCADE_WEIGHTS_INLINE" in c for c in sources)
    if design == "cascade":
        assert len(sources) == 3  # the top level and both model copies
    assert "CALL set_part xcvu13p-flga2577-2-e" in calls

    rc, out = run_tcl(ddir / "hls_flow.tcl", tmp_path, {"QCASCADE_HLS_STEPS": "cosim"})
    names = [c.split()[1] for c in out if c.startswith("CALL ")]
    assert rc == 0 and "cosim_design" in names and "csynth_design" not in names and "csim_design" not in names
    assert any(c == f"CALL open_project {top_name}_prj" for c in out)  # no reset: keeps csynth results
    rc, out = run_tcl(ddir / "hls_flow.tcl", tmp_path, {"QCASCADE_HLS_STEPS": "csim bogus"})
    assert rc == 2 and any("unknown step" in line for line in out)


def test_vivado_tcl_static(top, tmp_path):
    rc, out = run_tcl(top / "vivado_ooc_synth.tcl", tmp_path)
    assert rc == 1 and any("run Vitis HLS csynth first" in line for line in out)
    rtl = top / "cascade_top_prj" / "solution1" / "syn" / "verilog"
    rtl.mkdir(parents=True)
    (rtl / "cascade_top.v").write_text("module cascade_top(); endmodule\n")
    try:
        rc, out = run_tcl(top / "vivado_ooc_synth.tcl", tmp_path)
    finally:
        shutil.rmtree(top / "cascade_top_prj")
    assert rc == 0, out
    assert "CALL synth_design -top cascade_top -part xcvu13p-flga2577-2-e -mode out_of_context" in out
    assert "CALL report_utilization -file vivado_synth.rpt" in out
    assert any(line.startswith("CALL report_timing ") for line in out)
    assert "CALL report_power -file vivado_power.rpt" in out  # read for the energy per window
    assert "ap_clk -period 5.0" in (top / "qcascade_ooc.xdc").read_text()


def test_missing_tools_raise_with_commands(top, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(ToolNotFoundError) as err:
        synth.synth_main(top.parent.parent)
    msg = str(err.value)
    assert "vitis-run" in msg and "vitis_hls" in msg and "'vivado' is not on PATH" in msg
    assert "vitis-run --mode hls --tcl hls_flow.tcl" in msg and "vivado -mode batch -source vivado_ooc_synth.tcl" in msg
    assert f"cd {top}" in msg and "QCASCADE_HLS_STEPS=" in msg
    with pytest.raises(ToolNotFoundError) as err:
        synth.synth_main(top, steps="vsynth")
    assert "vivado" in str(err.value) and "Vitis HLS" not in str(err.value)
    assert not (top / "synth.json").exists()


def _fake_tool(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/bash\n" f'echo "{name} $PWD $QCASCADE_HLS_STEPS :: $*" >> "{bindir}/calls.log"\n' + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.mark.parametrize("hls_tool", ["vitis-run", "vitis_hls"])
def test_fake_tools_issue_the_right_commands(top, tmp_path, monkeypatch, hls_tool):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_tool(bindir, hls_tool, 'top=$(sed -n "s/^set qc_top //p" design.tcl)\n'
                                 'mkdir -p ${top}_prj/solution1/syn/verilog\n')
    _fake_tool(bindir, "vivado", 'echo "1. CLB Logic" > vivado_synth.rpt\n')
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    args = synth.add_synth_arguments(argparse.ArgumentParser()).parse_args(["--run", str(top.parent.parent)])
    record = synth.synth_main(args)
    calls = (bindir / "calls.log").read_text().splitlines()
    man = tl.load_manifest(top)
    expected_dirs = [(top / man["designs"][d]).resolve() for d in synth.DESIGNS]
    argv = "--mode hls --tcl hls_flow.tcl" if hls_tool == "vitis-run" else "-f hls_flow.tcl"
    assert calls == [line for d in expected_dirs for line in (
        f"{hls_tool} {d} csim csynth cosim export :: {argv}",
        f"vivado {d}  :: -mode batch -source vivado_ooc_synth.tcl")]
    assert all((d / "vivado_synth.rpt").is_file() for d in expected_dirs)
    saved = json.loads((top / "synth.json").read_text())
    assert saved["hls_tool"] == hls_tool and record["runs"][0]["designs"].keys() == set(synth.DESIGNS)
    assert synth.design_dirs(top)["simple"] == expected_dirs[0]
    for d in expected_dirs:  # leave the shared folder as generated
        for prj in d.glob("*_prj"):
            shutil.rmtree(prj)
        (d / "vivado_synth.rpt").unlink()


def test_dry_run_and_bad_steps(top, capsys):
    plan = synth.synth_main(top, steps="csynth,vsynth", designs="cascade", dry_run=True)["plan"]
    assert [p["tool"] for p in plan] == ["vitis-run", "vivado"]
    assert "QCASCADE_HLS_STEPS=csynth vitis-run" in capsys.readouterr().out
    with pytest.raises(Exception):
        synth.synth_main(top, steps="csynth,place")


@pytest.mark.slow
def test_vitis_source_set_builds_as_one_binary(top, tmp_path):
    """The sources design.tcl hands Vitis (weights inline, one binary) give the .so build's results."""
    man = tl.load_manifest(top)
    ap = top / man["simple"]["copy_dir"] / "firmware" / "ap_types"
    sources = ["cascade_top.cpp", "cascade_tb.cpp"] + [f"{man[r]['copy_dir']}/firmware/{man[r]['project']}.cpp"
                                                         for r in ("simple", "complex")]
    exe = tmp_path / "one_binary"
    proc = subprocess.run(["g++", "-O2", "-std=c++17", "-DQCASCADE_WEIGHTS_INLINE", "-isystem", str(ap), "-I", ".",
                           *sources, "-o", str(exe)], cwd=top, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    X = np.round(np.random.default_rng(5).normal(0, 1, (40, 64, 4)) * 256) / 256
    tl.build_csim(top)
    shared = csim.run_cascade_binary(top, X)["results_file"].read_text()
    data = tl.write_windows(tmp_path / "w.f32", X, 64, 4)
    proc = subprocess.run([str(exe), str(data), str(tmp_path / "one.txt")], cwd=top, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "one.txt").read_text() == shared
