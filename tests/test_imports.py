"""The package's imports point one way: no cycle, and no hidden import inside a function.

Imports inside functions hide a cycle from Python but not from this test: it reads every
module of rlbreakout/ with ``ast``, function-level imports included.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "rlbreakout"
#: Optional dependencies (extras), the only imports allowed inside functions.
OPTIONAL_MODULES = ("stable_retro", "retro", "sb3_contrib", "cv2", "psycopg2")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text()) for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported_names(node: ast.Import | ast.ImportFrom, importer: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative import: resolve against the importer's package
        base = importer.split(".")[: -node.level] if not importer.endswith("__init__") else importer.split(".")
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    return [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]


def import_graph(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name] |= {target for target in imported_names(node, name) if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules (first == last), or None; depth-first search."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_checker_finds_a_cycle_through_a_function_level_import() -> None:
    modules = {
        "rlbreakout.a": ast.parse("import rlbreakout.b\n"),
        "rlbreakout.b": ast.parse("def f():\n    from rlbreakout.a import x\n"),
        "rlbreakout.c": ast.parse("from rlbreakout import b\n"),
    }
    assert find_cycle(import_graph(modules)) == ["rlbreakout.a", "rlbreakout.b", "rlbreakout.a"]
    del modules["rlbreakout.b"]
    assert find_cycle(import_graph(modules)) is None


def test_no_import_cycle_in_the_package() -> None:
    cycle = find_cycle(import_graph(package_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_only_optional_dependencies_are_imported_inside_functions() -> None:
    hidden: list[str] = []
    for name, tree in package_modules().items():
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    top = (node.names[0].name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
                    if top not in OPTIONAL_MODULES:
                        hidden.append(f"{name}.{function.name}: {ast.unparse(node)}")
    assert not hidden, "imports inside functions (move them to the top of the module):\n" + "\n".join(hidden)
