"""How long a training will take here, said before it starts: "10,000,000 steps, about 9.1 h here".

Why: a learner who runs a chapter cell by cell in Spyder gets the Settings cell's values,
and 2.3's are the zoo's 1e7 steps. Before :meth:`rlbreakout.runs.Run.training` starts the
clock, it prints the steps to train, the wall time they should take on this machine, and
how to stop and go on (Ctrl-C saves a checkpoint, ``--resume`` continues).

The speed comes from what was measured, newest first: the last finished run of the same
script, with the same ``--fast``, on this CPU (its summary.json in the logdir); else the
ledger's runs of that script (results/*.json), on this CPU or, named, another one; else
the same searches for the other ``--fast`` setting, labelled as such. With nothing
measured the line says so, and the progress lines give steps/s as training goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlbreakout.provenance import REPO_ROOT, cpu_model

#: The ledger folder (results/ at the repository root), read here as plain JSON.
LEDGER_DIR = REPO_ROOT / "results"
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class MeasuredSpeed:
    """Env steps per wall second of an earlier run, and where that figure comes from."""

    steps_per_second: float
    source: str


def wall_steps_per_second(summary: Mapping[str, Any]) -> float | None:
    """Env steps per *wall* second of a summary: its training speed, slowed by its periodic evaluations."""
    speed = float(summary.get("steps_per_second") or 0.0)
    if speed <= 0:
        return None
    train, wall = float(summary.get("train_seconds") or 0.0), float(summary.get("wall_seconds") or 0.0)
    # wall also holds the final evaluation and gif, which do not grow with the steps: ignore
    # ratios that say the run was mostly evaluation (a tiny run)
    return speed * train / wall if train > 0 and wall > 0 and wall < 2 * train else speed


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None  # a half-written or broken file says nothing about speed


def _earlier_runs(script: str, logdir: Path, exclude: Path | None) -> list[tuple[dict[str, Any], bool]]:
    """(summary, trained with --fast) of the finished runs of ``script`` in ``logdir``, newest first."""
    paths = sorted((p for p in (Path(logdir) / script).glob("*/summary.json") if p.parent != exclude),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    runs = []
    for path in paths:
        summary, config = _read(path), _read(path.with_name("config.json")) or {}
        if summary is not None:
            runs.append((summary, bool(config.get("fast"))))
    return runs


def _ledger_runs(script: str, ledger_dir: Path) -> list[tuple[dict[str, Any], bool]]:
    """(summary, trained with --fast) of the ledger's entries of ``script``."""
    runs = []
    for path in sorted(Path(ledger_dir).glob("*.json")):
        entry = _read(path) or {}
        summary = entry.get("summary", {})
        if summary.get("script") == script:
            runs.append((summary, "--fast" in entry.get("planned", {}).get("flags", [])))
    return runs


def measured_speed(script: str, fast: bool, logdir: Path, *, cpu: str | None = None,
                   ledger_dir: Path = LEDGER_DIR, exclude: Path | None = None) -> MeasuredSpeed | None:
    """The newest measured speed of ``script`` (see the module docstring).

    Runs with this ``fast`` flag first; only where none was measured, a run with the other
    setting, its source saying so (``--fast`` often changes the speed by half or more).
    """
    cpu = cpu_model() if cpu is None else cpu
    for wanted in (fast, not fast):
        label = "" if wanted == fast else f" {'with' if wanted else 'without'} --fast (this run: the other way)"
        for summary, was_fast in _earlier_runs(script, logdir, exclude):
            speed = wall_steps_per_second(summary)
            if speed and was_fast == wanted and summary.get("cpu_model") == cpu:
                return MeasuredSpeed(speed, f"your last run of {script} on this CPU{label}")
        ledger = [summary for summary, was_fast in _ledger_runs(script, ledger_dir) if was_fast == wanted]
        for same_cpu in (True, False):
            for summary in ledger:
                speed = wall_steps_per_second(summary)
                if speed and (summary.get("cpu_model") == cpu) == same_cpu:
                    where = "this CPU" if same_cpu else f"another CPU ({summary.get('cpu_model')})"
                    return MeasuredSpeed(speed, f"the ledger's run of {script} on {where}{label}")
    return None


def duration_text(seconds: float) -> str:
    """``42 s``, ``17 min`` or ``9.1 h``."""
    if seconds < 1.5 * SECONDS_PER_MINUTE:
        return f"{seconds:.0f} s"
    if seconds < 1.5 * SECONDS_PER_HOUR:
        return f"{seconds / SECONDS_PER_MINUTE:.0f} min"
    return f"{seconds / SECONDS_PER_HOUR:.1f} h"


def expected_time_line(steps: int, speed: MeasuredSpeed | None, run_dir: Path, how: str | None = None) -> str:
    """The line printed before training: steps, expected wall time here, how to stop and go on.

    :param how: how to stop and go on, for a script that does it differently (2.4 and 2.5 have no ``--resume``)
    """
    how = how or f"Ctrl-C saves a checkpoint; --resume {run_dir} continues it."
    if speed is None:
        return (f"{steps:,} steps to train; no run of this script measured here yet, so the progress lines "
                f"will tell the speed. {how}")
    return (f"{steps:,} steps to train, about {duration_text(steps / speed.steps_per_second)} here "
            f"({speed.steps_per_second:,.0f} steps/s, from {speed.source}). {how}")
