"""The g++ build of the cascade C simulation, and hls4ml models predicting through it.

``build_csim`` compiles each model copy into its own shared library (``-Wl,-Bsymbolic`` keeps
each model's text-weight loader on its own ``WEIGHTS_DIR``) and links the top level and
testbench against both; ``build_csim.sh`` holds the same commands for manual rebuilds.
:func:`use_csim_build` lets the hls4ml models predict through those same libraries, so a run
compiles each model's C++ once.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shlex
import shutil
import string
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from qcascade.errors import ConfigError, QCascadeError, ToolNotFoundError
from qcascade.hls import manifest as tl
from qcascade.hls.identifiers import check_identifier
from qcascade.io_utils import atomic_write_json, atomic_write_text

__all__ = ["BUILD", "CSIM_EXE", "csim_commands", "write_build_script", "build_csim", "use_csim_build"]

BUILD = "csim_build"
CSIM_EXE = f"{BUILD}/cascade_csim"
_FLAGS = ["-O2", "-std=c++17", "-fPIC"]


def csim_commands(out_dir: Path, manifest: dict, cxx: str, werror: bool = False) -> list[list[tuple[str, list[str]]]]:
    """The g++ build as groups of ``(name, argv)``; commands within a group are independent."""
    b = Path(BUILD)
    compiles, links, libs = [], [], []
    for role in ("complex", "simple"):  # longest compile first, for parallel builds
        m = manifest[role]
        p = check_identifier(f"{role} project", m["project"])
        d = Path("models") / p
        if m["copy_dir"] != str(d):
            raise ConfigError(f"{out_dir / tl.MANIFEST}: {role} copy_dir {m['copy_dir']!r} is not {str(d)!r}")
        inc = ["-isystem", str(d / "firmware" / "ap_types")]
        # -fno-gnu-unique: unique symbols would be shared across the libraries despite -Bsymbolic.
        # WEIGHTS_DIR is relative to the top-level folder (the testbench runs there): only validated
        # identifiers reach the macro, never the run path.
        flags = _FLAGS + ["-fno-gnu-unique", f'-DWEIGHTS_DIR="{d / "firmware" / "weights"}"'] + inc
        compiles.append((f"{p}.o", [cxx, *flags, *_deps(b / f"{p}.o"), "-c", str(d / "firmware" / f"{p}.cpp"),
                                    "-o", str(b / f"{p}.o")]))
        compiles.append((f"{p}_bridge.o", [cxx, *flags, *_deps(b / f"{p}_bridge.o"), "-c", str(d / f"{p}_bridge.cpp"),
                                           "-o", str(b / f"{p}_bridge.o")]))
        links.append((f"lib{p}.so", [cxx, "-shared", "-Wl,-Bsymbolic", f"-Wl,-soname,lib{p}.so", "-o",
                                     str(b / f"lib{p}.so"), str(b / f"{p}.o"), str(b / f"{p}_bridge.o")]))
        libs.append(str(b / f"lib{p}.so"))
    # HLS pragmas are for Vitis; (maybe-)uninitialized fires inside the bundled ap_private.h
    # constructors once inlined at -O2 (false positives in hls4ml's bundled ap_types, not in our code).
    warn = ["-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas", "-Wno-maybe-uninitialized",
            "-Wno-uninitialized"] if werror else []
    inc = ["-isystem", str(Path(manifest["simple"]["copy_dir"]) / "firmware" / "ap_types"), "-I", "."]
    for src in ("cascade_top", "cascade_tb"):
        compiles.append((f"{src}.o", [cxx, *_FLAGS, *warn, *inc, *_deps(b / f"{src}.o"), "-c", f"{src}.cpp",
                                      "-o", str(b / f"{src}.o")]))
    exe = [cxx, "-o", CSIM_EXE, str(b / "cascade_top.o"), str(b / "cascade_tb.o"), *libs, "-Wl,-rpath,$ORIGIN"]
    return [compiles, links, [("cascade_csim", exe)]]


def _deps(obj: Path) -> list[str]:
    return ["-MMD", "-MF", f"{obj}.d"]


def _up_to_date(out_dir: Path, cmd: list[str]) -> bool:
    """True if the step's output is newer than its inputs (g++ -MMD lists) and its command is unchanged."""
    out = out_dir / cmd[cmd.index("-o") + 1]
    stamp = out.with_name(out.name + ".cmd")
    if not out.is_file() or not stamp.is_file() or stamp.read_text() != shlex.join(cmd):
        return False
    if "-c" in cmd:
        dep = out.with_name(out.name + ".d")
        if not dep.is_file():
            return False
        inputs = dep.read_text().replace("\\\n", " ").split(":", 1)[-1].split()
    else:
        inputs = [a for a in cmd[1:] if a.endswith((".o", ".so")) and not a.startswith("-")
                  and a != cmd[cmd.index("-o") + 1]]
    mtime = out.stat().st_mtime
    return all((out_dir / i).is_file() and (out_dir / i).stat().st_mtime <= mtime for i in inputs)


def write_build_script(out_dir: Path, manifest: dict) -> Path:
    """Write ``build_csim.sh`` (the same commands as :func:`build_csim`, for manual rebuilds)."""
    lines = [" ".join(shlex.quote(a) for a in cmd).replace("'${CXX}'", '"${CXX}"')
             for group in csim_commands(out_dir, manifest, "${CXX}") for _, cmd in group]
    text = string.Template((tl.TEMPLATES / "build_csim.sh.in").read_text()).substitute(
        build=BUILD, commands="\n".join(lines), exe=CSIM_EXE)
    path = atomic_write_text(out_dir / "build_csim.sh", text)
    path.chmod(0o755)
    return path


def build_csim(out_dir: str | Path, *, jobs: int = 1, cxx: str = "g++", werror: bool = False) -> Path:
    """Compile the cascade C simulation with g++ and return the executable.

    Steps whose output is newer than their inputs (per ``g++ -MMD``) and whose command is
    unchanged are skipped, so a regenerated top level (e.g. a new tau) relinks without
    recompiling the models. ``csim_build/build_times.json``: each step's compile seconds (a
    skipped step keeps those of the build that made its output), ``rebuilt`` (the steps this
    call compiled) and ``rebuilt_seconds``.

    Args:
        out_dir: folder written by :func:`qcascade.hls.toplevel.generate_toplevel`.
        jobs: parallel compiles (the machine may be shared: default 1).
        cxx: compiler.
        werror: compile the top level and testbench with ``-Wall -Werror``.

    Raises:
        ToolNotFoundError: ``cxx`` is not on PATH.
        QCascadeError: a step failed (command and stderr in the message).
    """
    out_dir = Path(out_dir).resolve()
    if shutil.which(cxx) is None:
        raise ToolNotFoundError(f"{cxx!r} not found on PATH: needed to build the C simulation in {out_dir}")
    (out_dir / BUILD).mkdir(exist_ok=True)
    times = out_dir / BUILD / "build_times.json"
    try:  # an up-to-date step keeps the time of the build that made it
        before = json.loads(times.read_text())["seconds"] if times.is_file() else {}
    except (ValueError, KeyError, TypeError):
        before = {}
    seconds: dict[str, float] = {}
    rebuilt: list[str] = []
    for group in csim_commands(out_dir, tl.load_manifest(out_dir), cxx, werror):
        pending, running = [], []
        for name, cmd in group:
            if _up_to_date(out_dir, cmd):
                seconds[name] = float(before.get(name, 0.0))
            else:
                pending.append((name, cmd))
        while pending or running:
            while pending and len(running) < max(1, jobs):
                name, cmd = pending.pop(0)
                # stderr to a file: a pipe nobody reads while another job is awaited could fill up.
                errf = tempfile.TemporaryFile(mode="w+")
                proc = subprocess.Popen(cmd, cwd=out_dir, stdout=subprocess.DEVNULL, stderr=errf, text=True)
                running.append((name, cmd, proc, time.monotonic(), errf))
            done = next((job for job in running if job[2].poll() is not None), None)
            if done is None:
                time.sleep(0.05)
                continue
            running.remove(done)
            name, cmd, proc, t0, errf = done
            seconds[name] = round(time.monotonic() - t0, 2)
            rebuilt.append(name)
            errf.seek(0)
            err = errf.read()
            errf.close()
            stamp = out_dir / (cmd[cmd.index("-o") + 1] + ".cmd")
            if proc.returncode == 0:
                stamp.write_text(shlex.join(cmd))
            else:
                stamp.unlink(missing_ok=True)
                for _, _, other, _, other_err in running:
                    other.kill()
                    other.wait()
                    other_err.close()
                raise QCascadeError(f"{out_dir}: build step {name} failed:\n{shlex.join(cmd)}\n{err[-4000:]}")
    atomic_write_json(times, {"cxx": cxx, "jobs": jobs, "seconds": seconds, "rebuilt": rebuilt,
                              "total": round(sum(seconds.values()), 2),
                              "rebuilt_seconds": round(sum(seconds[n] for n in rebuilt), 2)})
    return out_dir / CSIM_EXE


def use_csim_build(hls_models: dict, toplevel_dir: str | Path) -> None:
    """Make written (not compiled) hls4ml models predict through the C simulation's libraries.

    ``build_csim`` compiles each model's generated C++, bridge included, into
    ``csim_build/lib<project>.so``; hls4ml's ``predict()`` only needs that library's
    ``<project>_float`` function, so loading it spares the second compile hls4ml's ``compile()``
    would do. The libraries read their weights from ``WEIGHTS_DIR``, relative to the top-level
    folder, at their first call: that call is made here, from that folder.

    Args:
        hls_models: ``{"simple": ModelGraph, "complex": ModelGraph}`` the top level was generated from.
        toplevel_dir: folder of :func:`qcascade.hls.toplevel.generate_toplevel`, built by :func:`build_csim`.

    Raises:
        QCascadeError: a library is missing (not built) or belongs to another project.
    """
    top = Path(toplevel_dir).resolve()
    man = tl.load_manifest(top)
    for role, model in hls_models.items():
        project = man[role]["project"]
        if model.config.get_project_name() != project:
            raise QCascadeError(f"{top}: the {role} library is project {project!r}, the hls4ml model "
                                f"{model.config.get_project_name()!r}: regenerate the top level")
        lib = top / BUILD / f"lib{project}.so"
        if not lib.is_file():
            raise QCascadeError(f"{lib}: not built; run build_csim({str(top)!r}) first")
        # dlopen returns the library already loaded from a path, even after a rebuild there: load
        # a private copy (deleted once open) so a model never predicts with a stale build.
        private = lib.with_name(f".{lib.name}.{os.getpid()}.{time.monotonic_ns()}")
        shutil.copy2(lib, private)
        try:
            model._top_function_lib = ctypes.cdll.LoadLibrary(str(private))
        finally:
            private.unlink()
        shape = tuple(model.get_input_variables()[0].shape)
        with _working_dir(top):
            model.predict(np.zeros((1, *shape), np.float32))


@contextlib.contextmanager
def _working_dir(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
