"""No import cycles among our modules (``pipeline``, ``plugins``, ``ui``).

The graph is read from the source with ``ast``, nothing is imported. Every import statement
counts: one inside a function or under ``if TYPE_CHECKING:`` hides a cycle from the
interpreter, not from a reader, who still has to understand both modules to follow either.
``from a import b`` is an edge to the module ``a.b`` when it is one, else to ``a``; the
parent packages Python imports on the way are not edges (as grimp and import-linter count).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "plugins", "ui")

# Cycles known today, each as the set of its modules (none left; the ops twins' was broken in
# issue 16): a listed cycle that no longer exists fails the test too, so this list only shrinks.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()


@dataclass(frozen=True)
class Module:
    path: Path
    is_package: bool


def find_modules(root: Path = ROOT) -> dict[str, Module]:
    """Dotted name -> source file, for every ``.py`` and ``.pyi`` (a compiled module's stub)."""
    found: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py*")):
            if path.suffix not in (".py", ".pyi") or ".venv" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            if name not in found or path.suffix == ".py":  # the source wins over its stub
                found[name] = Module(path, is_package)
    return found


def _owner(name: str, modules: dict[str, Module]) -> str | None:
    """The module ``name`` lives in: itself, or its nearest enclosing package of ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, modules: dict[str, Module]) -> Iterator[tuple[str, int]]:
    """(imported module of ours, line) for every import statement in module ``name``."""
    module = modules[name]
    if module.path.suffix == ".pyi":  # a stub's imports never run
        return
    package = name if module.is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(module.path.read_text(), str(module.path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _owner(alias.name, modules)) is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: up level - 1 packages from this module's own
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                target = submodule if submodule in modules else _owner(source, modules)
                if target is not None:
                    yield target, node.lineno


def import_graph(modules: dict[str, Module]) -> dict[str, dict[str, int]]:
    """Module -> {module it imports: line of the first such import}."""
    graph: dict[str, dict[str, int]] = {}
    for name in modules:
        edges: dict[str, int] = {}
        for target, line in imports_of(name, modules):
            if target != name:
                edges[target] = min(line, edges.get(target, line))
        graph[name] = edges
    return graph


def strongly_connected(graph: dict[str, dict[str, int]]) -> list[frozenset[str]]:
    """The graph's cycles as strongly connected components of two or more modules (Tarjan's,
    iterative: a deep import chain must not hit the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(frozenset(component))
    return found


def describe(component: frozenset[str], graph: dict[str, dict[str, int]]) -> str:
    """One cycle through ``component``, each step with the line of its import, e.g.
    ``a (line 3) -> b (line 9) -> a``."""
    start = min(component)
    # Breadth-first from start back to start, inside the component: the shortest cycle.
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier and start not in previous:
        following = []
        for node in frontier:
            for succ in sorted(graph[node]):
                if succ in component and succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    path = [start]
    while (path[-1] != start or len(path) == 1) and path[-1] in previous:
        path.append(previous[path[-1]])
    path.reverse()
    steps = [f"{a} (line {graph[a][b]})" for a, b in pairwise(path)]
    others = sorted(component - set(path))
    tail = f"; also in this cycle: {', '.join(others)}" if others else ""
    return " -> ".join([*steps, start]) + tail


def test_no_import_cycles() -> None:
    graph = import_graph(find_modules())
    cycles = strongly_connected(graph)
    new = [describe(c, graph) for c in cycles if c not in KNOWN_CYCLES]
    assert not new, (
        "import cycles (break each: move what both modules need into a third, "
        "or invert the dependency):\n  " + "\n  ".join(new)
    )
    gone = [sorted(c) for c in KNOWN_CYCLES - set(cycles)]
    assert not gone, f"no longer cycles, remove them from KNOWN_CYCLES: {gone}"


def test_a_cycle_is_found_and_named(tmp_path: Path) -> None:
    """The detector itself: a function-level import closing a cycle counts, a relative import
    resolves, and the message names the modules with their import lines."""
    package = tmp_path / "pipeline"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("import os\n\n\ndef f():\n    from pipeline.a import g\n")
    (package / "c.py").write_text("from pipeline import a\n")
    for other in ("plugins", "ui"):
        (tmp_path / other).mkdir()
    graph = import_graph(find_modules(tmp_path))
    assert graph["pipeline.c"] == {"pipeline.a": 1}
    cycles = strongly_connected(graph)
    assert cycles == [frozenset({"pipeline.a", "pipeline.b"})]
    assert describe(cycles[0], graph) == "pipeline.a (line 1) -> pipeline.b (line 5) -> pipeline.a"


def test_test_modules_have_unique_basenames() -> None:
    """The test directories are not packages, so pytest imports each test module by its
    basename: two with one name make the whole collection fail (tests/market/test_books.py
    beside tests/ops/test_books.py did)."""
    tests = Path(__file__).resolve().parent
    seen: dict[str, list[str]] = {}
    for path in sorted(tests.rglob("test_*.py")):
        if (path.parent / "__init__.py").exists():
            continue  # inside a package: imported by its dotted name
        seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
