"""No import cycle anywhere in ``streams/``, counting imports under ``TYPE_CHECKING`` and inside
functions too: a cycle hidden that way still ties the modules together."""

from __future__ import annotations

import ast
from pathlib import Path

import streams

PACKAGE = Path(streams.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the streams modules it imports (a package import counts as its __init__)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            if found := visit(target):
                return found
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        if found := visit(start):
            return found
    return None


def test_the_import_graph_is_found() -> None:
    graph = imports()
    assert "streams.scoring.engine" in graph["streams.runtime.loop"]
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_in_streams() -> None:
    assert cycle(imports()) is None


def test_the_scoring_core_imports_no_io() -> None:
    graph = imports()
    core = [m for m in graph if m.startswith("streams.scoring")]
    for module in core:
        allowed = ("streams.scoring", "streams.contracts", "streams.records")
        assert not {m for m in graph[module] if not m.startswith(allowed)}, module


def test_the_records_module_imports_nothing_of_rapport() -> None:
    """Every stage uses the record shapes, so they depend on no stage."""
    graph = imports()
    assert "streams.records" in graph["streams.scoring.state"]
    assert graph["streams.records"] == set()
