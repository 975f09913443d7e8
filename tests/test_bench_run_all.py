"""`python -m bench.run_all --assemble`: BENCHMARKS.md from the section files, nothing re-measured."""

from pathlib import Path

from bench import run_all


def test_assemble_writes_every_section_file_with_its_stamp_and_measures_nothing(tmp_path, monkeypatch):
    measured = []
    monkeypatch.setattr(run_all, "_section", lambda name, hw=None: measured.append(name))
    out = tmp_path / "B.md"
    assert run_all.main(["--assemble", "--out", str(out)]) == 0
    text = out.read_text()
    sections = sorted((Path(run_all.ROOT) / "bench" / "sections").glob("*.md"))
    assert measured == [] and sections
    for f in sections:
        stamp = f.read_text().splitlines()[0].removeprefix("<!-- measured ").removesuffix(" -->")
        assert f"<!-- section {f.stem}: measured {stamp} -->" in text
