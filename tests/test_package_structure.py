"""The package's shape: no module over 500 lines, and module-level imports that form no cycle.

The brief's readability rules ("no module over about 500 lines, no import
cycles") held only for ``riskmodels/report`` by test
(``test_report_structure.py``); this checks every module of the package. The
import graph is read from the source (``ast``, nothing executed): edges are
the top-level ``import`` / ``from ... import`` statements between riskmodels
modules (imports inside functions or under ``if TYPE_CHECKING:`` run later or
never, so they cannot close a cycle at import time). ``from pkg import name``
is an edge to the submodule ``pkg.name`` when that is a module, else to
``pkg`` itself (its ``__init__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "riskmodels"
LIMIT = 500


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def test_no_module_over_500_lines() -> None:
    sizes = {name: len(p.read_text().splitlines()) for name, p in _modules().items()}
    over = {n: s for n, s in sizes.items() if s > LIMIT}
    assert not over, f"modules over {LIMIT} lines (split them by what they hold): {over}"


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, p in mods.items():
        deps: set[str] = set()
        for node in ast.parse(p.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    deps.add(sub if sub in mods else node.module)
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first import cycle of a depth-first walk, or None."""
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> list[str] | None:
        if state.get(n) == 1:
            return [*stack, n]
        if state.get(n) == 2:
            return None
        state[n] = 1
        for d in sorted(graph.get(n, ())):
            found = visit(d, [*stack, n])
            if found:
                return found
        state[n] = 2
        return None

    for n in sorted(graph):
        found = visit(n, [])
        if found:
            return found
    return None


def test_module_level_imports_form_no_cycle() -> None:
    graph = _graph()
    assert len(graph) > 100  # the walk saw the package
    assert sum(map(len, graph.values())) > 200  # and its imports
    found = _cycle(graph)
    assert found is None, f"import cycle: {' -> '.join(found)}"


def test_the_cycle_check_can_fail() -> None:
    """The walk finds a three-module cycle and a self-contained chain has none (the check is not vacuous)."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
