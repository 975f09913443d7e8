"""Vendor flow: Vitis HLS (csim, csynth, cosim, export) and Vivado out-of-context synthesis.

Three designs live in a generated top-level folder: the two model copies
(``models/<project>``) and the cascade (``.``). Each holds ``design.tcl`` plus the generic
``hls_flow.tcl`` and ``vivado_ooc_synth.tcl`` from ``vivado_scripts/``. Vitis HLS and Vivado
are not needed to generate anything; :func:`run_synth` runs the scripts when the tools are on
PATH and otherwise raises :class:`ToolNotFoundError` with the exact commands to run elsewhere.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import string
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

from qcascade import __version__
from qcascade.errors import ConfigError, QCascadeError, ToolNotFoundError
from qcascade.hls import manifest as tl
from qcascade.hls.identifiers import check_identifier, check_number, check_part, check_token
from qcascade.io_utils import atomic_write_json, atomic_write_text

STEPS = ("csim", "csynth", "cosim", "export", "vsynth")
HLS_STEPS = STEPS[:4]
DESIGNS = ("simple", "complex", "cascade")
SCRIPTS = ("hls_flow.tcl", "vivado_ooc_synth.tcl")
HLS_TOOLS = {"vitis-run": ["vitis-run", "--mode", "hls", "--tcl", "hls_flow.tcl"],
             "vitis_hls": ["vitis_hls", "-f", "hls_flow.tcl"]}
VIVADO_CMD = ["vivado", "-mode", "batch", "-source", "vivado_ooc_synth.tcl"]
_REL_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\Z")


def scripts_dir() -> Path:
    """The repository's ``vivado_scripts/`` folder (generic flow scripts)."""
    from qcascade.package_data import resource_dir

    path = resource_dir("vivado_scripts")
    if not all((path / s).is_file() for s in SCRIPTS):
        raise QCascadeError(f"{path}: flow scripts {SCRIPTS} not found; reinstall qcascade")
    return path


def write_flow_scripts(out_dir: Path, manifest: dict) -> dict[str, Path]:
    """Write ``design.tcl``/``qcascade_ooc.xdc`` and copy the flow scripts into each design folder."""
    paths = {}
    for label in DESIGNS:
        if label == "cascade":
            top = manifest["top"]
            sources = [f"{top}.cpp"] + [f"{manifest[r]['copy_dir']}/firmware/{manifest[r]['project']}.cpp"
                                        for r in ("simple", "complex")]
            tb_sources = ["cascade_tb.cpp"]
        else:
            top = manifest[label]["project"]
            sources, tb_sources = [f"firmware/{top}.cpp"], [f"{top}_test.cpp"]
        ddir = out_dir / manifest["designs"][label]
        for rel in sources + tb_sources:
            if not _REL_PATH.match(rel) or ".." in rel.split("/"):
                raise ConfigError(f"unsafe path for the TCL flow: {rel!r}")
        subs = {"version": __version__, "config_hash": check_token("config_hash", manifest["config_hash"]),
                "top": check_identifier("top", top), "part": check_part("part", manifest["part"]),
                "clock_period": repr(check_number("clock_period", manifest["clock_period"], 0.1, 1000.0)),
                "clock_uncertainty": check_token("clock_uncertainty", manifest["clock_uncertainty"]),
                "sources": " ".join(sources), "tb_sources": " ".join(tb_sources), "tb_files": "tb_data"}
        for name in ("design.tcl", "qcascade_ooc.xdc"):
            text = string.Template((tl.TEMPLATES / f"{name}.in").read_text()).substitute(subs)
            paths[f"{name.split('.')[0]}_{label}"] = atomic_write_text(ddir / name, text)
        for script in SCRIPTS:
            shutil.copy2(scripts_dir() / script, ddir / script)
    return paths


def find_toplevels(run_dir: str | Path) -> list[Path]:
    """The generated top-level folders in ``run_dir`` (itself, or descendants holding the manifest)."""
    run_dir = Path(run_dir)
    if (run_dir / tl.MANIFEST).is_file():
        return [run_dir.resolve()]
    found = sorted(p.parent.resolve() for p in run_dir.glob(f"**/{tl.MANIFEST}")
                   if "models" not in p.relative_to(run_dir).parts)
    if not found:
        raise QCascadeError(f"{run_dir}: no generated top level ({tl.MANIFEST}); run the csim step first")
    return found


def design_dirs(top_dir: str | Path) -> dict[str, Path]:
    """Folder of each design (``simple``, ``complex``, ``cascade``): where its vendor reports land."""
    manifest = tl.load_manifest(top_dir)
    return {label: (Path(top_dir) / manifest["designs"][label]).resolve() for label in DESIGNS}


def flow_plan(top_dir: Path, steps: Sequence[str], designs: Sequence[str], hls_tool: str = "vitis-run") -> list[dict]:
    """The tool invocations for ``steps`` x ``designs``, in run order."""
    manifest = tl.load_manifest(top_dir)
    hls = [s for s in HLS_STEPS if s in steps]
    plan = []
    for label in designs:
        ddir = (top_dir / manifest["designs"][label]).resolve()
        if hls:
            plan.append({"design": label, "dir": ddir, "tool": hls_tool, "steps": hls, "argv": HLS_TOOLS[hls_tool],
                         "env": {"QCASCADE_HLS_STEPS": " ".join(hls)}, "log": ddir / "qcascade_hls.log"})
        if "vsynth" in steps:
            plan.append({"design": label, "dir": ddir, "tool": "vivado", "steps": ["vsynth"], "argv": VIVADO_CMD,
                         "env": {}, "log": ddir / "qcascade_vivado.log"})
    return plan


def shell_commands(plan: list[dict]) -> str:
    """The plan as shell lines a user can paste on a machine with the tools."""
    lines = []
    for item in plan:
        env = "".join(f"{k}={shlex.quote(v)} " for k, v in item["env"].items())
        lines.append(f"(cd {shlex.quote(str(item['dir']))} && {env}{shlex.join(item['argv'])})")
    return "\n".join(lines)


def run_synth(run_dir: str | Path, steps: Sequence[str] = STEPS, designs: Sequence[str] = DESIGNS) -> dict:
    """Run the vendor flow for every top level in ``run_dir``; write ``synth.json`` in each.

    Returns:
        ``{"runs": [record, ...]}``, one record per top level: ``top_dir``, ``hls_tool``,
        ``steps`` and per design its ``dir``, ``runs`` (argv, exit code, seconds, log) and
        ``report`` (:func:`qcascade.hls.reports.parse_hls_dir`).

    Raises:
        ToolNotFoundError: a needed tool is not on PATH (nothing is run; the message names the
            binary, the steps needing it and the commands to run on a machine that has it).
        QCascadeError: a tool failed (see the named log).
    """
    steps, designs = _check_choice("steps", steps, STEPS), _check_choice("designs", designs, DESIGNS)
    tops = find_toplevels(run_dir)
    hls_tool = next((t for t in HLS_TOOLS if shutil.which(t)), None)
    plans = [(top, flow_plan(top, steps, designs, hls_tool or "vitis-run")) for top in tops]
    missing = []
    if hls_tool is None and any(s in HLS_STEPS for s in steps):
        missing.append(f"Vitis HLS: neither 'vitis-run' nor 'vitis_hls' is on PATH (needed for steps "
                       f"{', '.join(s for s in steps if s in HLS_STEPS)})")
    if "vsynth" in steps and shutil.which("vivado") is None:
        missing.append("Vivado: 'vivado' is not on PATH (needed for step vsynth, out-of-context synthesis)")
    if missing:
        raise ToolNotFoundError(
            "; ".join(missing) + f". On a machine with the tools on PATH run:\n  qcascade synth --run {run_dir} "
            f"--steps {','.join(steps)} --designs {','.join(designs)}\nor, after copying the generated folder(s):\n"
            + "\n".join(shell_commands(plan) for _, plan in plans))
    return {"runs": [_run_plan(top, plan, steps, hls_tool) for top, plan in plans]}


def _run_plan(top: Path, plan: list[dict], steps: Sequence[str], hls_tool: str | None) -> dict:
    record: dict[str, Any] = {"top_dir": str(top), "steps": list(steps), "designs": {}, "hls_tool": hls_tool}
    for item in plan:
        t0 = time.monotonic()
        with open(item["log"], "w") as log:
            proc = subprocess.run(item["argv"], cwd=item["dir"], env={**os.environ, **item["env"]},
                                  stdout=log, stderr=subprocess.STDOUT)
        entry = record["designs"].setdefault(item["design"], {"dir": str(item["dir"]), "runs": []})
        entry["runs"].append({"tool": item["tool"], "steps": item["steps"], "argv": item["argv"],
                              "returncode": proc.returncode, "seconds": round(time.monotonic() - t0, 1),
                              "log": str(item["log"])})
        if proc.returncode != 0:
            atomic_write_json(top / "synth.json", record)
            raise QCascadeError(f"{item['tool']} failed for design {item['design']} (steps {item['steps']}), "
                                f"exit {proc.returncode}: see {item['log']}")
    for label, entry in record["designs"].items():
        entry["report"] = _parse_reports(Path(entry["dir"]))
    atomic_write_json(top / "synth.json", record)
    return record


def add_synth_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``qcascade synth``."""
    parser.add_argument("--run", required=True, type=Path, help="run directory holding the generated top level")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    parser.add_argument("--designs", default=",".join(DESIGNS), help=f"comma-separated subset of {','.join(DESIGNS)}")
    parser.add_argument("--dry-run", action="store_true", help="print the tool commands instead of running them")
    return parser


def synth_main(args: argparse.Namespace | str | Path, steps: Sequence[str] | str = STEPS,
               designs: Sequence[str] | str = DESIGNS, dry_run: bool = False) -> dict:
    """Entry point: ``synth_main(args)`` from the CLI, or ``synth_main(run_dir, steps=...)``."""
    if isinstance(args, argparse.Namespace):
        run_dir, steps, designs, dry_run = args.run, args.steps, args.designs, args.dry_run
    else:
        run_dir = args
    steps = steps.split(",") if isinstance(steps, str) else steps
    designs = designs.split(",") if isinstance(designs, str) else designs
    if dry_run:
        plan = [item for top in find_toplevels(run_dir) for item in flow_plan(
            top, _check_choice("steps", steps, STEPS), _check_choice("designs", designs, DESIGNS))]
        print(shell_commands(plan))
        return {"plan": [{k: str(v) if isinstance(v, Path) else v for k, v in p.items()} for p in plan]}
    from qcascade.rundir import is_run_dir
    from qcascade.runlock import RunLock

    if is_run_dir(Path(run_dir)):  # not while a training run rewrites the same projects
        with RunLock(run_dir):
            return run_synth(run_dir, steps, designs)
    return run_synth(run_dir, steps, designs)


def _check_choice(label: str, values: Sequence[str], allowed: Sequence[str]) -> list[str]:
    values = [v.strip() for v in values if v.strip()]
    bad = [v for v in values if v not in allowed]
    if bad or not values:
        raise ConfigError(f"{label}: {bad or 'nothing'} not in {list(allowed)}")
    return [v for v in allowed if v in values]  # canonical order


def _parse_reports(ddir: Path) -> dict | None:
    try:
        from qcascade.hls.reports import parse_hls_dir
    except ImportError:
        return None
    try:
        return parse_hls_dir(ddir)
    except Exception as exc:  # a report problem must not hide the finished runs
        return {"error": f"{type(exc).__name__}: {exc}"}
