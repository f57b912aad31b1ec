"""Spyder's own console kernel, driven as Spyder drives it: cells sent one by one, the Settings cell edited.

Spyder starts ``python -m spyder_kernels.console -f <connection file>`` through jupyter_client,
in the script's folder, and ``%runcell`` runs a cell's code (the editor's text, saved or
not) in the console's namespace with ``__file__`` set to the script. :class:`SpyderConsole`
does the same: the learner's edits of the Settings cell are applied to the code that is sent.
"""

from __future__ import annotations

import os
import queue
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager

from cells import split_cells

#: How long one cell may run before the test fails with the cell's name.
CELL_TIMEOUT_SECONDS = 300
STARTUP_TIMEOUT_SECONDS = 120


def edit_settings(code: str, edits: dict[str, str]) -> str:
    """``code`` with each ``NAME = ...`` line of ``edits`` given the new value (the comment kept)."""
    for name, value in edits.items():
        pattern = re.compile(rf"^{name} = [^#\n]*?(\s*#.*)?$", re.M)
        code, count = pattern.subn(lambda m, v=value: f"{name} = {v}{m.group(1) or ''}", code)
        if count != 1:
            raise AssertionError(f"no single line '{name} = ...' to edit in the cell")
    return code


@dataclass
class CellResult:
    title: str
    ok: bool
    stdout: str
    error: str = ""


@dataclass
class SpyderConsole:
    """A spyder-kernels console in ``cwd``; :meth:`run_script` sends a script's cells in order."""

    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    outputs: list[CellResult] = field(default_factory=list)

    def __enter__(self) -> "SpyderConsole":
        self.manager = KernelManager()
        self.manager._kernel_spec = KernelSpec(  # what Spyder's SpyderKernelSpec starts
            argv=[sys.executable, "-m", "spyder_kernels.console", "-f", "{connection_file}"],
            display_name="Spyder console", language="python")
        self.manager.start_kernel(cwd=str(self.cwd), env={**os.environ, **self.env})
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=STARTUP_TIMEOUT_SECONDS)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)

    def execute(self, code: str, title: str = "code") -> CellResult:
        msg_id = self.client.execute(code, store_history=False)
        stdout: list[str] = []
        error = ""
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=CELL_TIMEOUT_SECONDS)
            except queue.Empty as exc:
                raise AssertionError(f"cell {title!r} ran past {CELL_TIMEOUT_SECONDS} s") from exc
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                stdout.append(content["text"])
            elif kind == "error":
                error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                break
        reply = self.client.get_shell_msg(timeout=CELL_TIMEOUT_SECONDS)
        result = CellResult(title, reply["content"]["status"] == "ok" and not error, "".join(stdout), error)
        self.outputs.append(result)
        return result

    def reset(self) -> None:
        """An empty namespace, as Spyder's "Remove all variables before execution" gives each run."""
        assert self.execute("get_ipython().run_line_magic('reset', '-f')", "reset").ok
        self.outputs.clear()

    def value(self, expression: str) -> Any:
        """An expression's value in the console (its repr, evaluated back here)."""
        result = self.execute(f"print(repr({expression}))", expression)
        assert result.ok, result.error
        return eval(result.stdout.strip())

    def run_script(self, script: Path, edits: dict[str, str]) -> str:
        """Every cell of ``script`` in order, as %runcell sends it, the Settings cell edited; all stdout."""
        assert self.execute(f"__file__ = {str(script)!r}", "__file__").ok
        for cell in split_cells(script):
            code = edit_settings(cell.code, edits) if cell.title.startswith("Settings") else cell.code
            result = self.execute(code, cell.title)
            if not result.ok:
                raise AssertionError(f"{script.name}: cell {cell.title!r} (line {cell.first_line}) raised "
                                     f"{result.error}\n{result.stdout[-3000:]}")
        return "".join(r.stdout for r in self.outputs)
