"""The package's shape: every module imports on its own, no import cycles (lazy imports inside functions
count too: they only hide a cycle), core depends on nothing above it, modules stay small."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "synthgen"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__main__.py"}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> set[str]:
    """Every synthgen module `path` imports, at any depth (function-level imports included), except under
    `if TYPE_CHECKING:`. `from synthgen.x import y` counts as synthgen.x.y when that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = {id(n) for block in ast.walk(tree) if _type_checking_only(block) for n in ast.walk(block)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "synthgen":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "synthgen")
    return {m for m in out if m in MODULES}


def graph() -> dict[str, set[str]]:
    return {m: imports_of(p) - {m} for m, p in MODULES.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative DFS with colours)."""
    state: dict[str, int] = {}
    for start in sorted(edges):
        if state.get(start):
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            nxt = next(children, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(sorted(edges.get(nxt, ())))))
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_core_imports_nothing_above_it():
    bad = {m: sorted(t for t in deps if not t.startswith("synthgen.core"))
           for m, deps in graph().items() if m.startswith("synthgen.core")}
    assert not {m: d for m, d in bad.items() if d}


def test_only_the_cli_and_commands_reach_into_commands():
    bad = [(m, t) for m, deps in graph().items() for t in deps
           if t.startswith("synthgen.commands") and not m.startswith(("synthgen.commands", "synthgen.cli",
                                                                         "synthgen.evaluation"))]
    assert not bad


def test_modules_stay_small():
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def _import_alone(module: str) -> tuple[str, str]:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    return module, (proc.stderr.strip().splitlines() or ["?"])[-1] if proc.returncode else ""


@pytest.mark.parametrize("chunk", range(4))
def test_every_module_imports_in_a_fresh_interpreter(chunk):
    """A module that only imports after another one was imported first hides an ordering bug (or a cycle)."""
    mine = sorted(MODULES)[chunk::4]
    with ThreadPoolExecutor(2) as pool:
        failed = {m: err for m, err in pool.map(_import_alone, mine) if err}
    assert not failed
