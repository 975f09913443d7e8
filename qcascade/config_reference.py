"""The config reference, generated from the dataclasses: ``python -m qcascade.config_reference``.

Writes Markdown (one table per section: key, type, default, meaning from the class docstring's
``Attributes:``) to stdout, or to ``--out``; ``docs/config.md`` is this output, and a test keeps
it up to date.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing

from qcascade.config import RunConfig
from qcascade.io_utils import atomic_write_text

_ENTRY = re.compile(r"^(\s+)([a-z_][a-z0-9_]*(?:, [a-z_][a-z0-9_]*)*): (.*)$")


def _attribute_docs(cls) -> dict[str, str]:
    """``{field: text}`` from the ``Attributes:`` section of ``cls``'s docstring."""
    doc = inspect.getdoc(cls) or ""
    if "Attributes:" not in doc:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    indent = None
    for line in doc.split("Attributes:", 1)[1].splitlines():
        m = _ENTRY.match(line)
        if m and (indent is None or len(m.group(1)) == indent):
            indent = len(m.group(1))
            names = m.group(2).split(", ")
            for n in names:
                out[n] = m.group(3).strip()
        elif line.strip() and names and indent is not None and len(line) - len(line.lstrip()) > indent:
            for n in names:
                out[n] += " " + line.strip()
        elif line.strip():
            names = []
    return out


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _fmt(value) -> str:
    if isinstance(value, tuple):
        value = list(value)
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else repr(value) \
        if isinstance(value, str) else str(value)
    return f"`{text}`"


def _type_name(cls, f: dataclasses.Field) -> str:
    """The annotation as written, with a named ``Literal`` alias (``GateRule``) spelled out."""
    hint = typing.get_type_hints(cls)[f.name]
    if typing.get_origin(hint) is typing.Literal and "Literal" not in str(f.type):
        return f"Literal[{', '.join(map(repr, typing.get_args(hint)))}]"
    return str(f.type)


def _sections(cls, prefix: str, out: list[tuple[str, type, list]]) -> None:
    rows, nested = [], []
    docs = _attribute_docs(cls)
    for f in dataclasses.fields(cls):
        value = _default(f)
        if dataclasses.is_dataclass(value):
            nested.append((f"{prefix}{f.name}.", type(value)))
            continue
        rows.append((f.name, _type_name(cls, f), _fmt(value), docs.get(f.name, "").replace("|", "\\|")))
    out.append((prefix.rstrip(".") or "(top level)", cls, rows))
    for p, c in nested:
        _sections(c, p, out)


def reference_markdown() -> str:
    """The whole reference as Markdown."""
    sections: list = []
    _sections(RunConfig, "", sections)
    lines = ["# Configuration reference", "",
             "_Generated from the config dataclasses by `python -m qcascade.config_reference --out docs/config.md`;"
             " do not edit by hand._", "",
             "Every key is optional. Unknown keys, duplicate keys, wrong types and out-of-range values are"
             " errors naming the key. A run saves its resolved config as `config.yaml`.", ""]
    for name, cls, rows in sections:
        if not rows:
            continue
        summary = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        lines += [f"## `{name}`", "", f"{summary} (`{cls.__module__}.{cls.__qualname__}`)", "",
                  "| key | type | default | meaning |", "|---|---|---|---|"]
        lines += [f"| `{k}` | `{t}` | {d} | {m} |" for k, t, d, m in rows]
        lines.append("")
    return "\n".join(lines).replace("``", "`")  # docstrings are reST, the reference is Markdown


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write here (atomically) instead of stdout")
    args = ap.parse_args(argv)
    text = reference_markdown()
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
