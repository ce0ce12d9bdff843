"""The layout keeps its promises: no import cycles between fairflip's modules, and the core never drives
experiments (nothing in the library imports the experiment engine, the CLI or the benchmarks at module level)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"fairflip": "fairflip", "solvers": "fairflip.solvers", "experiments": "fairflip.experiments"}


def _modules() -> dict[str, Path]:
    mods = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            mods[".".join([package, *parts])] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Modules of fairflip imported at module level by ``name`` (imports inside functions are lazy on purpose)."""
    base = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in mods}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                module = ".".join(parts + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = {f"{module}.{a.name}" for a in node.names} & set(mods)
            # `from . import sibling` imports the sibling, not the package's other contents
            if submodules and len(submodules) == len(node.names):
                out |= submodules
            elif module in mods:
                out |= {module} | submodules
    out.discard(name)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return defaultdict(set, {name: _imports(name, path, mods) for name, path in mods.items()})


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(u: str, stack: list[str]) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v, stack)
        stack.pop()
        state[u] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_core_does_not_import_the_drivers():
    drivers = ("fairflip.experiments", "fairflip.cli")
    graph = _graph()
    core = [m for m in graph if not m.startswith(drivers) and m != "fairflip.__main__"]  # `python -m fairflip` is the CLI
    offenders = {m: sorted(d for d in graph[m] if d.startswith(drivers)) for m in core}
    offenders = {m: d for m, d in offenders.items() if d}
    assert not offenders, offenders
