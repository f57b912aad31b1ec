"""Run a chapter script the way Spyder does: cell by cell, in one IPython console.

Spyder's "Run cell and advance" sends each ``# %%`` cell of the file to an IPython
``InteractiveShell`` in turn; variables stay in the console for the Variable Explorer.
:func:`run_cells` does the same with a real InteractiveShell and fails on the first
cell that raises, naming it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
#: A Spyder cell starts at a line that begins with ``# %%`` (at column 0).
CELL_MARKER = re.compile(r"^# %%")


@dataclass
class Cell:
    title: str
    first_line: int
    code: str


def split_cells(path: Path) -> list[Cell]:
    """The file's cells, as Spyder cuts them: the text before the first marker is a cell too."""
    cells: list[Cell] = []
    title, start, lines = "(top of file)", 1, []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if CELL_MARKER.match(line):
            if any(text.strip() for text in lines):
                cells.append(Cell(title, start, "\n".join(lines) + "\n"))
            title, start, lines = line[4:].strip() or "(untitled)", number, [line]
        else:
            lines.append(line)
    if any(text.strip() for text in lines):
        cells.append(Cell(title, start, "\n".join(lines) + "\n"))
    return cells


def run_cells(script: str, *flags: str, before_cell: Callable[[Cell, dict[str, Any]], None] | None = None
              ) -> dict[str, Any]:
    """Run ``script``'s cells one after another in a fresh InteractiveShell; return its namespace.

    ``before_cell(cell, namespace)``, if given, runs before each cell, as a learner may inspect
    or change a variable in the console between two cells.

    ``sys.argv`` is ``[script, *flags]`` (Spyder's console has ``['']``; tests pass tiny
    settings), the working directory is the repository root, and ``__file__`` is set, as
    Spyder's ``runcell`` does.
    """
    from IPython.core.interactiveshell import InteractiveShell

    path = REPO_ROOT / script
    saved_argv, saved_cwd, saved_hook = sys.argv, os.getcwd(), sys.excepthook
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.user_ns["__file__"] = str(path)
    sys.argv = [str(path), *flags]
    os.chdir(REPO_ROOT)
    try:
        for cell in split_cells(path):
            if before_cell is not None:
                before_cell(cell, shell.user_ns)
            result = shell.run_cell(cell.code, store_history=False)
            if not result.success:
                error = result.error_in_exec or result.error_before_exec
                raise AssertionError(f"{script}: cell {cell.title!r} (line {cell.first_line}) raised "
                                     f"{type(error).__name__}: {error}")
        return dict(shell.user_ns)
    finally:
        sys.argv, sys.excepthook = saved_argv, saved_hook
        os.chdir(saved_cwd)
        InteractiveShell.clear_instance()
