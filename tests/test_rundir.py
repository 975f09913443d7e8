"""Run directories: never overwritten without --force, resumed at the first unfinished step."""

import json

import pytest

from qcascade.config import load_config
from qcascade.errors import RunDirError
from qcascade.rundir import Step, prepare_run_dir, run_steps


class Interrupted(Exception):
    pass


def make_steps(calls, fail_at=None):
    def make(name):
        def fn(ctx):
            if name == fail_at:
                raise Interrupted(name)
            calls.append(name)
            (ctx / f"{name}.out").write_text(name)
        return Step(name, fn)
    return [make(n) for n in ("step_a", "step_b", "step_c")]


def test_killed_run_resumes_from_the_interrupted_step(tmp_path):
    calls = []
    with pytest.raises(Interrupted):
        run_steps(make_steps(calls, fail_at="step_b"), tmp_path, tmp_path)
    assert calls == ["step_a"]
    assert json.loads((tmp_path / "steps.json").read_text())["completed"] == ["step_a"]
    calls.clear()
    log = run_steps(make_steps(calls), tmp_path, tmp_path)
    assert calls == ["step_b", "step_c"]
    assert log.completed == ["step_a", "step_b", "step_c"]
    assert set(log.timings_s) == {"step_a", "step_b", "step_c"}


def test_from_step_reruns_that_step_and_later_ones(tmp_path):
    calls = []
    run_steps(make_steps(calls), tmp_path, tmp_path)
    calls.clear()
    run_steps(make_steps(calls), tmp_path, tmp_path, from_step="step_b")
    assert calls == ["step_b", "step_c"]
    with pytest.raises(RunDirError, match="unknown step"):
        run_steps(make_steps(calls), tmp_path, tmp_path, from_step="step_x")


def test_until_step_stops_early(tmp_path):
    calls = []
    run_steps(make_steps(calls), tmp_path, tmp_path, until_step="step_a")
    assert calls == ["step_a"]


def test_run_dir_is_not_overwritten_without_force(tmp_path):
    run = tmp_path / "run"
    cfg = load_config()
    assert prepare_run_dir(run, cfg, force=False) is False
    (run / "precious.txt").write_text("keep")
    assert prepare_run_dir(run, cfg, force=False) is True  # same config: resume
    other = load_config(overrides={"train": {"epochs_stage1": 1}})
    with pytest.raises(RunDirError, match="different config"):
        prepare_run_dir(run, other, force=False)
    assert (run / "precious.txt").read_text() == "keep"
    assert prepare_run_dir(run, other, force=True) is False
    assert not (run / "precious.txt").exists()


def test_foreign_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not a qcascade run directory"):
        prepare_run_dir(tmp_path, load_config(), force=False)
    assert (tmp_path / "notes.txt").exists()


def test_rerun_of_one_step_goes_through_the_step_log(tmp_path):
    """``qcascade convert/csim/report`` (run_step_checked) records time and written files like run_steps."""
    from types import SimpleNamespace

    from qcascade.rundir import StepLog, run_step_checked

    calls = []
    steps = make_steps(calls)
    first = steps[0].fn
    steps[0] = Step("step_a", lambda ctx: (first(ctx), (ctx / "a.json").write_text("{}")))
    run_steps(steps, tmp_path, tmp_path, until_step="step_b")
    assert "a.json" in StepLog.load(tmp_path / "steps.json").outputs["step_a"]
    before = StepLog.load(tmp_path / "steps.json")
    assert "step_c" not in before.completed

    def rerun(ctx):
        (ctx.unit_dir / "a.json").write_text('{"by": "step_c"}')  # takes over step_a's file
        (ctx.unit_dir / "new.json").write_text("{}")

    ctx = SimpleNamespace(unit_dir=tmp_path)
    run_step_checked(Step("step_c", rerun), ctx)
    after = StepLog.load(tmp_path / "steps.json")
    assert after.completed == ["step_a", "step_b", "step_c"]
    assert "step_c" in after.timings_s
    assert set(after.outputs["step_c"]) == {"a.json", "new.json"}
    assert "a.json" not in after.outputs["step_a"]  # the latest writer owns the file
    # A resume sees nothing damaged: the rewritten file belongs to the step that rewrote it.
    calls.clear()
    run_steps(steps, tmp_path, tmp_path)
    assert calls == []
