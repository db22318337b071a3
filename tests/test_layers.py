"""The layout holds: one ``jetfm`` namespace, imports that flow one way, and no import cycles.

Data flows backbone -> retrieval -> tools -> agent: a layer may import the ones before it, never
one after it, not even inside a function. ``jetfm.errors`` (the error root) sits below all of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("backbone", "retrieval", "tools", "agent")


def _modules() -> dict[str, Path]:
    out = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("jetfm", *parts))
            out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> set[str]:
    """Every jetfm module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jetfm")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jetfm"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_package_is_installed_under_jetfm():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(("jetfm", *p.parent.relative_to(ROOT).parts))
        for layer in LAYERS
        for p in (ROOT / layer).rglob("__init__.py")
    }
    assert folders | {"jetfm"} == listed


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_flow_one_way(layer):
    modules = _modules()
    allowed = set(LAYERS[: LAYERS.index(layer) + 1])
    wrong = []
    for name, path in modules.items():
        if _layer(name) != layer:
            continue
        for target in _imports(path):
            other = _layer(target)
            if other is not None and other not in allowed:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "imports against the flow backbone -> retrieval -> tools -> agent:\n" + "\n".join(wrong)


def test_no_import_cycles():
    modules = _modules()
    graph = {name: {t for t in _imports(path) if t in modules and t != name} for name, path in modules.items()}
    # A package's __init__ is not an edge target: importing jetfm.tools.x runs jetfm/tools/__init__.
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
