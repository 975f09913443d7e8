"""bench.bench_pages: each setting measured in its own process, and the setting really applied."""

import re

import pytest

from bench import bench_pages


def test_each_setting_runs_in_its_own_process_with_that_setting(capsys):
    assert bench_pages.main(["--mib", "8", "--times", "2", "--pause", "0", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [r.split("|")[2].strip() for r in rows] == ["on", "off"]  # what NumPy reports in the probe
    for r in rows:
        fills = [float(s) for s in r.split("|")[3].split(",")]
        assert len(fills) == 2 and all(s >= 0 for s in fills)
    assert "--mib 8 --times 2 --pause 0 --rounds 1" in out


@pytest.mark.parametrize("args", [["--mib", "0"], ["--rounds", "x"], ["--pause", "-1"]])
def test_bad_arguments_are_usage_errors(args, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_pages.main(args)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
