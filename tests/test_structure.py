"""Structural checks on the package: no import cycles, no oversized modules.

The import graph counts every import statement, including those inside
functions, because a function-local import only hides a cycle from the
interpreter at load time; the modules still depend on each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG_ROOT = Path(__file__).resolve().parents[1] / "qcascade"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    """Dotted module name of a file under the package root."""
    rel = path.relative_to(PKG_ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG_ROOT.rglob("*.py"))}


def _resolve_relative(module: str, is_pkg: bool, level: int, target: str | None) -> str:
    base = module.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def import_graph() -> dict[str, set[str]]:
    """Map each qcascade module to the qcascade modules it imports (anywhere in its body)."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = (
                    _resolve_relative(name, is_pkg, node.level, node.module)
                    if node.level
                    else (node.module or "")
                )
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_graph_sees_function_local_imports():
    graph = import_graph()
    # qcascade.cli imports the pipeline inside its command functions; the graph must see that.
    assert graph["qcascade.cli"], "import graph found no imports in qcascade.cli"


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles among qcascade modules: " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_no_module_over_400_lines():
    too_long = {
        name: len(path.read_text().splitlines())
        for name, path in _modules().items()
        if len(path.read_text().splitlines()) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


def test_config_reference_is_up_to_date():
    """docs/config.md is generated from the config dataclasses; regenerate it when they change."""
    from qcascade.config_reference import reference_markdown

    doc = PKG_ROOT.parent / "docs" / "config.md"
    assert doc.read_text() == reference_markdown(), (
        "docs/config.md is stale: run `python -m qcascade.config_reference --out docs/config.md`")


def test_readme_is_a_short_users_document_with_working_doc_links():
    import re

    root = PKG_ROOT.parent
    text = (root / "README.md").read_text()
    assert len(text.splitlines()) <= 250, "README.md over 250 lines: move rationale to docs/"
    missing = [p for p in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", text) if not (root / p).exists()]
    assert not missing, f"README links to missing files: {missing}"
