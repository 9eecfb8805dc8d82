"""Measure the package's import graph: layers, upward imports, circles, module and function sizes.

`python scripts/architecture.py` prints the figures; `tests/test_architecture.py` holds the limits
(0 import circles, at most 5 upward imports, each listed in ALLOWED_UPWARD with its reason, no module
over 400 lines, no function over 60 lines). Every import counts, module-level or inside a function,
because a function-local import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "workbench"

#: floors from bottom to top; a module may import only from its own floor or below. The first
#: matching prefix decides ("workbench.engines.base" before "workbench.engines").
LAYERS: list[tuple[str, int]] = [
    ("workbench.types", 0),
    ("workbench.settings", 0),
    ("workbench.format", 0),
    ("workbench.metric_registry", 0),
    ("workbench.knobs", 1),
    ("workbench.estimate", 1),
    ("workbench.metrics", 1),
    ("workbench.devicemem", 1),
    ("workbench.gridfile", 1),
    ("workbench.spec", 2),
    ("workbench.engines", 3),
    ("workbench.accuracy", 4),
    ("workbench.trials", 5),
    ("workbench.study", 6),
    ("workbench.tracking", 6),
    ("workbench.plots", 7),
    ("workbench.report", 8),
    ("workbench.export", 8),
    ("workbench.grid", 8),
    ("workbench.transfer", 8),
    ("workbench.strategies", 8),
    ("workbench.doctor", 8),
    ("workbench.tiny_model", 8),
    ("workbench.api", 9),
    ("workbench.cli", 10),
    ("workbench", 10),
]

#: imports that run upward on purpose, (importer, imported) -> why
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("workbench.spec.registry", "workbench.engines"): (
        "a study file is checked against the engine it names (its knobs, options model and option "
        "checks): a name lookup in the registry, which imports no spec module, so no circle"
    ),
}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def floor(mod: str) -> int:
    for prefix, f in LAYERS:
        if mod == prefix or mod.startswith(prefix + "."):
            return f
    raise KeyError(f"{mod} is in no layer: add it to LAYERS in scripts/architecture.py")


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(mod: str, node: ast.ImportFrom, is_pkg: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the workbench modules it imports (a `from pkg import name` of a submodule counts as it)."""
    graph: dict[str, set[str]] = {}
    for mod, path in mods.items():
        out: set[str] = set()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, node, path.name == "__init__.py")
                # `from pkg import x` runs pkg's __init__ too: a dependency when that __init__ imports anything
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                runs_init = base in mods and "import" in mods[base].read_text()
                targets = ([base] if runs_init or not subs else []) + subs
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t.startswith("workbench") and t != mod:
                    out.add(t)
        graph[mod] = out
    return graph


def _is_reexport(importer: str, imported: str) -> bool:
    """A package's __init__ re-exporting its own submodules is not a dependency between floors."""
    return imported.startswith(importer + ".")


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted(
        (a, b) for a, bs in graph.items() for b in bs if floor(b) > floor(a) and not _is_reexport(a, b)
    )


def _related(a: str, b: str) -> bool:
    return a.startswith(b + ".") or b.startswith(a + ".")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Import circles: strongly connected components (Tarjan) over every import, a package's `__init__`
    included, that hold two modules neither of which is the other's package (a package re-exporting its
    own submodules, which import nothing back through it but themselves, is no circle)."""
    edges = graph
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if any(not _related(x, y) for x in comp for y in comp if x < y):
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def long_functions(mods: dict[str, Path]) -> list[tuple[str, str, int]]:
    out = []
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    out.append((mod, node.name, n))
    return sorted(out, key=lambda x: -x[2])


def long_modules(mods: dict[str, Path]) -> list[tuple[str, int]]:
    sizes = [(m, len(p.read_text().splitlines())) for m, p in mods.items()]
    return sorted([(m, n) for m, n in sizes if n > MAX_MODULE_LINES], key=lambda x: -x[1])


def main() -> int:
    mods = modules()
    graph = imports(mods)
    up = upward(graph)
    print(f"modules: {len(mods)}, import edges: {sum(len(v) for v in graph.values())}")
    print(f"import circles: {len(cycles(graph))}")
    for c in cycles(graph):
        print("  circle:", " -> ".join(c))
    print(f"upward imports: {len(up)}")
    for a, b in up:
        why = ALLOWED_UPWARD.get((a, b), "NOT EXPLAINED")
        print(f"  {a} (floor {floor(a)}) -> {b} (floor {floor(b)}): {why}")
    print(f"modules over {MAX_MODULE_LINES} lines: {len(long_modules(mods))}")
    for m, n in long_modules(mods):
        print(f"  {m}: {n}")
    print(
        f"functions over {MAX_FUNCTION_LINES} lines (shown only; the gate is ruff C901/PLR0912/PLR0915): {len(long_functions(mods))}"
    )
    for m, f, n in long_functions(mods):
        print(f"  {m}.{f}: {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
