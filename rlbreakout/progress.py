"""Progress on long work: a bar on a terminal, and a line every N steps everywhere else.

A run started with ``nohup``, into a log file or from a notebook has no terminal, so
tqdm's bar would print nothing readable until the end; :class:`ProgressLine` prints one
line instead: steps done, steps per second and the last game scores.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

#: At most this many env steps between two progress lines.
MAX_STEPS_BETWEEN_LINES = 10_000
#: Short runs print about this many lines.
LINES_PER_RUN = 10
#: Game scores shown at the end of each line.
SCORES_SHOWN = 5


def on_terminal(stream: TextIO | None = None) -> bool:
    """True when a progress bar can be drawn (the stream is an interactive terminal)."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


def steps_between_lines(total_steps: int) -> int:
    """A line every tenth of the run, and at least every :data:`MAX_STEPS_BETWEEN_LINES` steps."""
    return max(1, min(MAX_STEPS_BETWEEN_LINES, total_steps // LINES_PER_RUN))


class ProgressLine:
    """Print ``step N/total (p%), S steps/s, last games: ...`` every ``every`` steps.

    :param total_steps: the steps this run will do (for the percentage)
    :param every: steps between lines (default: :func:`steps_between_lines`)
    :param enabled: print at all (default: only when no terminal shows a bar)
    """

    def __init__(self, total_steps: int, every: int | None = None, *, enabled: bool | None = None,
                 stream: TextIO | None = None, start_step: int = 0) -> None:
        self.total_steps = int(total_steps)
        self.every = int(every) if every else steps_between_lines(self.total_steps)
        self.enabled = (not on_terminal()) if enabled is None else enabled
        self.stream = stream
        self.start_step = int(start_step)
        self.next_step = self.start_step + self.every
        self.started = time.perf_counter()
        self.lines: list[str] = []

    def update(self, step: int, scores: Sequence[float] = ()) -> str | None:
        """Print (and return) a line when ``step`` has passed the next mark; else None."""
        if not self.enabled or step < self.next_step:
            return None
        while self.next_step <= step:
            self.next_step += self.every
        seconds = max(time.perf_counter() - self.started, 1e-9)
        rate = (step - self.start_step) / seconds
        percent = 100.0 * step / self.total_steps if self.total_steps else 100.0
        last = " ".join(f"{s:g}" for s in list(scores)[-SCORES_SHOWN:]) or "none yet"
        line = f"step {step:,}/{self.total_steps:,} ({percent:.0f}%), {rate:,.0f} steps/s, last games: {last}"
        print(line, file=self.stream or sys.stdout, flush=True)
        self.lines.append(line)
        return line
