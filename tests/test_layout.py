"""The layout's rules, checked so that they hold as the code grows: no
module of the node or the session over 380 lines, and no import circle
among the modules (read from their source, as Python would import them at
load time; what a function imports when it runs, or a ``TYPE_CHECKING``
block, is no circle: neither runs while the modules load).  The stand-in
(``wwnode/fakewa/``) is a model of WhatsApp's page, not a part of the node,
and is held to the circle rule only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("wwnode", "sessionproc")
MAX_LINES = 380


def modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, whether it is a package's ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def load_time_imports(name: str, path: Path, is_package: bool, known: set[str]) -> set[str]:
    """The project's modules ``name`` imports at its top level."""
    package = name if is_package else name.rpartition(".")[0]
    deps: set[str] = set()
    statements = list(ast.parse(path.read_text()).body)
    for node in statements:
        if isinstance(node, ast.Try):  # runs at load time too
            statements += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.Import):
            deps |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # ``from . import world`` needs the module world; ``from .world
            # import World`` needs world; both load the package first, which
            # Python has begun already for a module inside it.
            for alias in node.names:
                deps.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    return {d for d in deps if d in known and d != name and not name.startswith(d + ".")}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_of_the_node_or_the_session_is_over_380_lines():
    long = {name: n for name, (path, _) in modules().items()
            if not name.startswith("wwnode.fakewa") and (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these along their jobs: {long}"


def test_no_import_circle():
    found = modules()
    graph = {name: load_time_imports(name, path, is_package, set(found)) for name, (path, is_package) in found.items()}
    assert circles(graph) == []


def test_the_circle_check_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
