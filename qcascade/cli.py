"""Command-line interface: ``qcascade {analyze,train,convert,csim,synth,report}`` and ``train_qkeras.py``.

Errors a user can fix (bad config, bad data, missing tools) are printed as one clear line and exit
with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from qcascade.errors import QCascadeError

QUICK_OVERRIDES = {
    "data": {"synthetic": {"n_patients": 1, "n_seizures": 3}},
    "train": {"epochs_stage1": 4, "epochs_stage2": 3, "epochs_stage3": 2, "folds": "first"},
    "hls": {"csim_windows": 64},
}


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML run config (defaults: the synthetic cohort)")
    p.add_argument("--dataset", choices=["synthetic", "swec-short", "swec-long", "bonn"])
    p.add_argument("--data-dir", type=Path, help="root of a SWEC-ETHZ folder (ID<n>/...), or the Bonn folder")
    p.add_argument("--patient", action="append", metavar="ID",
                   help="restrict the run to this patient (repeatable)")
    p.add_argument("--pooled", action="store_true",
                   help="one cross-patient cascade (electrodes padded to 128 with a mask)")
    p.add_argument("--out", type=Path, help="run directory (default projects/<dataset>[-quick])")
    p.add_argument("--quick", action="store_true", help="small smoke profile (a few minutes)")
    p.add_argument("--force", action="store_true", help="replace an existing run directory")
    p.add_argument("--seed", type=int, help="override the config seed")
    p.add_argument("--from-step", metavar="STEP", help="rerun from this step (see --list-steps)")
    p.add_argument("--until-step", metavar="STEP", help="stop after this step")
    p.add_argument("--list-steps", action="store_true", help="print the build steps and exit")
    p.add_argument("--strict", action="store_true",
                   help="refuse a hardware design that does not fit hls.target (exit status 2)")
    p.add_argument("-v", "--verbose", action="store_true")


def resolve_train_config(args: argparse.Namespace):
    """Config file + --quick profile + command-line flags -> validated RunConfig."""
    from qcascade.config import _merge, load_config

    overrides: dict = dict(QUICK_OVERRIDES) if args.quick else {}
    flags: dict = {"data": {}}
    if args.dataset:
        flags["data"]["dataset"] = args.dataset
    if args.data_dir:
        flags["data"]["data_dir"] = str(args.data_dir)
    if args.patient:
        flags["data"]["patients"] = list(args.patient)
    if args.pooled:
        flags["pooled"] = True
    if args.seed is not None:
        flags["train"] = {"seed": args.seed}
    if getattr(args, "strict", False):
        flags["hls"] = {"strict": True}
    # The user's own values are validated first: --quick must not overwrite (and so hide) a bad one.
    cfg = load_config(args.config, flags)
    return load_config(args.config, _merge(overrides, flags)) if args.quick else cfg


def train_main(args: argparse.Namespace) -> int:
    from qcascade.pipeline import STEPS, run_pipeline

    if args.list_steps:
        for step in STEPS:
            print(f"{step.name:22s} {step.doc}")
        return 0
    cfg = resolve_train_config(args)
    out = args.out or Path("projects") / (cfg.data.dataset + ("-quick" if args.quick else ""))
    run_pipeline(cfg, out, force=args.force, from_step=args.from_step, until_step=args.until_step)
    return 0


def _setup_logging(verbose: bool) -> None:
    # TF 2.14 logs cuDNN/cuFFT/cuBLAS "Unable to register factory" at ERROR on every import, GPU or
    # not: only --verbose shows its C++ errors (Python exceptions still carry real failures).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if verbose else "3")
    from qcascade.progress import setup_console_logging

    setup_console_logging(verbose)


def _run_guarded(fn, args) -> int:
    from qcascade.runtime import numpy_base_pages

    numpy_base_pages()  # every subcommand (analyze too), before it builds any array
    _setup_logging(getattr(args, "verbose", False))
    try:
        return fn(args)
    except QCascadeError as exc:
        print(f"qcascade: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qcascade: interrupted; rerun the same command to resume from the last completed step",
              file=sys.stderr)
        return 130


def train_entry(argv: list[str]) -> int:
    """Entry point of ``train_qkeras.py``."""
    parser = argparse.ArgumentParser(prog="train_qkeras.py", description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    return _run_guarded(train_main, parser.parse_args(argv))


def _run_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, help="run directory (projects/<run>)")
    p.add_argument("--patient", action="append", metavar="ID", help="only these units")
    p.add_argument("--strict", action="store_true", help="refuse a design that does not fit hls.target")
    p.add_argument("-v", "--verbose", action="store_true")


def _unit_step_main(step_names: list[str]):
    def main(args: argparse.Namespace) -> int:
        from qcascade.pipeline import rerun_steps

        rerun_steps(args.run, step_names, patients=args.patient, strict=getattr(args, "strict", False))
        return 0
    return main


def report_main(args: argparse.Namespace) -> int:
    from qcascade.hls.reports import main_report

    if args.hls_dir is not None:
        print(main_report(str(args.hls_dir), as_json=args.json))
        return 0
    return _unit_step_main(["step_report"])(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``qcascade`` console script."""
    parser = argparse.ArgumentParser(prog="qcascade", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    from qcascade.analysis import add_analyze_arguments, analyze_main
    p = sub.add_parser("analyze", help="data analysis: electrode separability, difficulty, spectra")
    add_analyze_arguments(p)
    p.set_defaults(fn=analyze_main)

    p = sub.add_parser("train", help="the full flow (same as train_qkeras.py)")
    add_train_arguments(p)
    p.set_defaults(fn=train_main)

    p = sub.add_parser("convert", help="hls4ml projects for each submodel of a run")
    _run_dir_arg(p)
    p.set_defaults(fn=_unit_step_main(["step_convert"]))

    p = sub.add_parser("csim", help="C simulation of the submodels and the cascade top level")
    _run_dir_arg(p)
    p.set_defaults(fn=_unit_step_main(["step_csim"]))

    from qcascade.hls.synth import add_synth_arguments, synth_main
    p = sub.add_parser("synth", help="Vitis HLS csynth/cosim/export and Vivado synthesis (needs the tools)")
    add_synth_arguments(p)
    p.set_defaults(fn=synth_main)

    p = sub.add_parser("report", help="hardware report of a run, or of any hls4ml output folder")
    p.add_argument("--run", type=Path, help="run directory (projects/<run>)")
    p.add_argument("--hls-dir", type=Path, help="any hls4ml output folder")
    p.add_argument("--json", action="store_true", help="print JSON (with --hls-dir)")
    p.add_argument("--patient", action="append", metavar="ID")
    p.add_argument("--strict", action="store_true", help="refuse a design that does not fit hls.target")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(fn=report_main)

    args = parser.parse_args(argv)
    if args.command == "report" and (args.run is None) == (args.hls_dir is None):
        parser.error("report: give exactly one of --run or --hls-dir")
    return _run_guarded(args.fn, args)


if __name__ == "__main__":
    sys.exit(main())
