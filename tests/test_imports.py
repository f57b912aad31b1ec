"""The package's imports point one way: down the README's layers, no cycle, none hidden in a function.

The layers are read from the README's module map (one place, the one a learner reads): each
table row names a layer (blank: the row above's) and a module (``envs.py``, ``speed/fast.py``)
or a folder (``aimbot/``); the layers come in the order they first appear. A module may
import from its own layer and earlier ones only. Imports inside functions hide a cycle from
Python but not from this test: it reads every module of rlbreakout/ with ``ast``,
function-level imports included.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "rlbreakout"
README = PACKAGE_DIR.parent / "README.md"
MODULE_MAP_HEADING = "## Module map"
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


def module_map(readme: str) -> list[tuple[str, str]]:
    """(layer, dotted module or folder) for each module the README's module map names, in order."""
    section = readme.split(MODULE_MAP_HEADING, 1)[1].split("\n## ", 1)[0]
    rows: list[tuple[str, str]] = []
    layer = ""
    for line in section.splitlines():
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "layer" or all(cell and set(cell) <= set("-:") for cell in cells):
            continue  # the header and the |---| row
        layer = cells[0] or layer
        path = re.fullmatch(r"`([\w/]+?)(\.py|/)`", cells[1])
        assert path, f"module map row without a module path: {line}"
        rows.append((layer, "rlbreakout." + path.group(1).replace("/", ".")))
    return rows


def layer_of(modules: list[str], rows: list[tuple[str, str]]) -> dict[str, int]:
    """Each module's layer (0: the first): its own row, else its folder's; a package's ``__init__``
    sits in the lowest layer of what it holds (the root package in the first)."""
    order = list(dict.fromkeys(layer for layer, _ in rows))
    named = {name: order.index(layer) for layer, name in rows}
    layers: dict[str, int] = {}
    for module in modules:
        owners = [name for name in named if module == name or module.startswith(name + ".")]
        inside = [named[name] for name in named if name.startswith(module + ".")]
        if owners:
            layers[module] = named[max(owners, key=len)]
        elif inside or module == "rlbreakout":
            layers[module] = min(inside, default=0)
    return layers


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int], names: list[str]) -> list[str]:
    """Each import of a module in a later layer than the importer's, as a readable line."""
    return [f"{importer} ({names[layers[importer]]}) imports {target} ({names[layers[target]]})"
            for importer in sorted(graph) for target in sorted(graph[importer])
            if layers[target] > layers[importer]]


def readme_layers() -> tuple[list[tuple[str, str]], list[str]]:
    rows = module_map(README.read_text())
    return rows, list(dict.fromkeys(layer for layer, _ in rows))


def test_the_checker_finds_an_import_from_a_later_layer() -> None:
    rows = [("settings", "rlbreakout.errors"), ("envs", "rlbreakout.envs"), ("speed", "rlbreakout.speed"),
            ("training", "rlbreakout.training")]
    modules = {"rlbreakout.errors": ast.parse(""), "rlbreakout.envs": ast.parse("import rlbreakout.errors\n"),
               "rlbreakout.speed": ast.parse(""), "rlbreakout.speed.fast": ast.parse("from rlbreakout.envs import x\n"),
               "rlbreakout.training": ast.parse("from rlbreakout.speed import fast\n")}
    names = list(dict.fromkeys(layer for layer, _ in rows))
    layers = layer_of(list(modules), rows)
    assert upward_imports(import_graph(modules), layers, names) == []
    modules["rlbreakout.envs"] = ast.parse("def f():\n    from rlbreakout.speed.fast import y\n")
    assert upward_imports(import_graph(modules), layer_of(list(modules), rows), names) == [
        "rlbreakout.envs (envs) imports rlbreakout.speed.fast (speed)"]


def test_the_module_map_names_every_module_and_only_modules_that_exist() -> None:
    rows, names = readme_layers()
    modules = list(package_modules())
    layers = layer_of(modules, rows)
    assert [module for module in modules if module not in layers] == [], "add these to README.md's module map"
    assert [name for _, name in rows if name not in modules] == [], "the module map names modules that do not exist"
    runs = [layer for i, (layer, _) in enumerate(rows) if i == 0 or rows[i - 1][0] != layer]
    assert runs == names, f"each layer's rows must stand together, in one order: {runs}"


def test_no_module_imports_from_a_later_layer() -> None:
    rows, names = readme_layers()
    modules = package_modules()
    upward = upward_imports(import_graph(modules), layer_of(list(modules), rows), names)
    assert not upward, ("imports that point up the README's layers (" + " -> ".join(names) + "):\n"
                        + "\n".join(upward))


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


def test_the_module_map_names_every_folder_of_the_package_and_each_says_where_to_start() -> None:
    """The map's opening sentence lists the package's folders; each folder's __init__.py has a docstring."""
    section = README.read_text().split(MODULE_MAP_HEADING, 1)[1]
    listed = re.search(r"a folder per family of concepts \(([^)]*)\)", re.sub(r"\s+", " ", section))
    assert listed, "README.md's module map no longer lists the package's folders"
    named = sorted(re.findall(r"`(\w+)/`", listed.group(1)))
    folders = sorted(path.parent.name for path in PACKAGE_DIR.glob("*/__init__.py"))
    assert named == folders, f"the module map lists {named}; the package's folders are {folders}"
    silent = [folder for folder in folders if not ast.get_docstring(ast.parse((PACKAGE_DIR / folder / "__init__.py").read_text()))]
    assert not silent, f"folders whose __init__.py does not say which module to open first: {silent}"
