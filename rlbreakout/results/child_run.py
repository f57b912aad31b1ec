"""A chapter script run as a child process of the campaign: its output echoed, its summary found, its deadline kept.

The campaign runs each planned run as a learner would type it (rlbreakout/results/campaign.py);
this module is the part that starts the process: in the checkout whose code must run (this
repository, or a worktree of the commit a run started from), with SIGINT restored, and
stopped as Ctrl-C stops it once the campaign's hours are up.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlbreakout.errors import RLBreakoutError
from rlbreakout.provenance import REPO_ROOT
from rlbreakout.runs import SUMMARY_FILE

#: How often a child past the campaign's deadline is checked for a checkpoint to stop at.
DEADLINE_POLL_SECONDS = 0.5


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class ChildRun:
    """Run a script of a checkout in a child process, echo its output, return its exit code and summary path.

    ``root`` is the checkout (this repository, or a worktree of the commit a run started from):
    the child runs there and imports that checkout's package, not the one pip installed
    editable. Past ``deadline`` (``time.monotonic()``), the child is interrupted as Ctrl-C
    does (it saves a checkpoint and exits 130) as soon as ``may_stop(started)`` says so,
    ``started`` being the child's start (``time.time()``): the campaign waits for a checkpoint
    of this process, and never stops a run that has trained all its steps and is evaluating.
    """

    python: str = sys.executable
    echo: Callable[[str], None] = field(default=lambda line: print(line, end="", flush=True))
    root: Path = REPO_ROOT
    deadline: float | None = None
    may_stop: Callable[[float], bool] = field(default=lambda started: True)

    def rooted(self, root: Path) -> "ChildRun":
        return ChildRun(self.python, self.echo, Path(root), self.deadline, self.may_stop)

    def _stop_at_deadline(self, child: subprocess.Popen[str], started: float) -> None:
        assert self.deadline is not None
        while child.poll() is None:
            if time.monotonic() >= self.deadline and self.may_stop(started):
                child.send_signal(signal.SIGINT)
                return
            time.sleep(DEADLINE_POLL_SECONDS)

    def __call__(self, args: Sequence[str]) -> tuple[int, str]:
        command = [self.python, *args]
        self.echo(f"$ {shlex.join(command)}\n")
        environ = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(self.root), os.environ.get("PYTHONPATH", "")) if p)}
        started = time.time()
        # SIGINT back to its default in the child: a campaign started in the background (nohup,
        # `&`) ignores it, the child would inherit that, and the deadline's Ctrl-C would do nothing.
        with subprocess.Popen(command, cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              bufsize=1, env=environ, preexec_fn=_default_sigint) as child:
            if self.deadline is not None:
                threading.Thread(target=self._stop_at_deadline, args=(child, started), daemon=True).start()
            summary_path = ""
            assert child.stdout is not None
            for line in child.stdout:
                self.echo(line)
                if line.strip().endswith(SUMMARY_FILE):  # the CLI contract: the summary's path, printed last
                    summary_path = line.strip()
            code = child.wait()
        if code == 0 and not summary_path:
            raise RLBreakoutError(f"{shlex.join(args)} printed no {SUMMARY_FILE} path; is it a training script?")
        return code, summary_path


#: The exit code of a script stopped by Ctrl-C (SIGINT) after saving its checkpoint.
INTERRUPTED_EXIT = 130


def in_repo(path: Path, root: Path = REPO_ROOT) -> Path:
    """``path`` as a child running in ``root`` should see it: relative when inside this repository.

    So the commands a ledger file records read ``--logdir runs/campaign``, as a learner types them.
    A child in another checkout (a worktree) gets absolute paths.
    """
    if Path(root).resolve() != REPO_ROOT:
        return Path(path).resolve()
    try:
        return Path(path).resolve().relative_to(REPO_ROOT)
    except ValueError:
        return Path(path)
