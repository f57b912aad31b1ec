"""A chapter script's definitions without its story: imports, CONSTANTS, functions, classes.

Why: a chapter script runs its lesson at module level (cell by cell, as in Spyder), so
importing it would train. A later chapter that builds on it (2.5 on 2.4) or a test that
checks one of its functions needs only what it *defines*. :func:`load_definitions` runs
exactly those statements of the script, in their order, into a fresh module: one copy of
the code, the one the learner reads.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path
from types import ModuleType

from rlbreakout.errors import RLBreakoutError

#: Statements that define something and run nothing of the story.
DEFINITION_NODES = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def is_definition(node: ast.stmt) -> bool:
    """Imports, functions, classes, and assignments to UPPER_CASE names (the script's constants)."""
    if isinstance(node, DEFINITION_NODES):
        return True
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    return bool(targets) and all(isinstance(t, ast.Name) and t.id.isupper() for t in targets)


def load_definitions(script: str | os.PathLike[str], name: str | None = None) -> ModuleType:
    """The definitions of ``script`` (see :func:`is_definition`) as a module named ``name``.

    The module's ``__doc__`` is the script's docstring and ``__file__`` its path; it is
    registered in ``sys.modules`` (dataclasses and pickling look their module up there).
    """
    path = Path(script).resolve()
    if not path.is_file():
        raise RLBreakoutError(f"no script {path} to load definitions from.")
    tree = ast.parse(path.read_text(), filename=str(path))
    module = ModuleType(name or f"definitions_of_{path.stem.replace('.', '_')}", ast.get_docstring(tree))
    module.__file__ = str(path)
    body = [node for node in tree.body if is_definition(node)]
    sys.modules[module.__name__] = module
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), module.__dict__)
    return module
