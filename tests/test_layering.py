"""The import graph of ``lvlm/``: no cycle between modules, and every import points down the layers.

Imports are read with ``ast`` (those inside functions too), so a lazy import cannot hide a cycle.
Layers, bottom to top: constants / errors / registry / utils → templates → models → data →
eval, construction → report → training → study, export → cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "lvlm"
LAYERS = {
    "__init__": 0,
    "constants": 0,
    "errors": 0,
    "registry": 0,
    "utils": 0,
    "templates": 1,
    "models": 2,
    "data": 3,
    "eval": 4,
    "construction": 4,
    "report": 5,
    "training": 6,
    "study": 7,
    "export": 7,
    "cli": 8,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """``lvlm`` modules imported by the file (``from a import b`` counts ``a.b`` when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("lvlm"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lvlm"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imported_modules(path, known) - {name} for name, path in modules.items()}


def layer_of(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    assert top in LAYERS, f"{module}: top-level '{top}' has no layer; add it to LAYERS in this test"
    return top, LAYERS[top]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 50, "the package was not found"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_point_down_the_layers():
    upward = []
    for importer, targets in import_graph().items():
        top, rank = layer_of(importer)
        for target in targets:
            other, other_rank = layer_of(target)
            if other != top and other_rank >= rank and not (rank == 0 and other_rank == 0):
                upward.append(f"{importer} -> {target}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(sorted(upward))


def test_cycle_finder_detects_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
