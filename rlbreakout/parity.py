"""Learning parity: the same short 2.3 run, stock SB3 and ``--fast``, over several seeds, in one table.

Why: a speed lever must change how fast PPO trains, not what it learns. A fixed-minibatch
check (tests/test_fast.py) shows the loss and gradients agree; this shows the learning
agrees: for each seed, 2.3 trains ``steps`` env steps stock and with ``--fast`` (the two
sides alternating, so a slow hour hits both), each evaluated over the same whole games, and
``--fast``'s scores must lie within the spread of stock's seeds (:func:`within_spread`).
Short runs learn little, so this is a sanity check, not proof.

``RLBREAKOUT_COMPILE=1`` in the environment reaches the ``--fast`` runs, so a lever that
a short run would not choose (torch.compile) can be checked the same way.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlbreakout.errors import RLBreakoutError

#: The two sides: 2.3's default (stock SB3) and with every measured speed lever.
PARITY_SIDES: dict[str, tuple[str, ...]] = {"stock": (), "fast": ("--fast",)}
#: Whole games in each run's final evaluation (the README's parity table used 30).
PARITY_EVAL_GAMES = 30


def parity_command(script: str | Path, side: str, steps: int, seed: int, eval_games: int, logdir: str | Path,
                   extra: Sequence[str] = ()) -> list[str]:
    """The command line of one run: ``script`` for ``steps`` on ``seed``, its final evaluation
    over ``eval_games`` games, no periodic evaluation or gif (they cost time, not learning)."""
    return [sys.executable, str(script), "--timesteps", str(steps), "--seed", str(seed),
            "--eval-freq", "0", "--eval-episodes", str(eval_games), "--gif-games", "0",
            "--logdir", str(logdir), *PARITY_SIDES[side], *extra]


def run_command(command: Sequence[str]) -> dict[str, Any]:
    """Run one training script; its summary.json (the path it prints last), or one clear error."""
    done = subprocess.run(list(command), capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RLBreakoutError(f"parity run failed (exit {done.returncode}): {' '.join(command[1:])}: {last}")
    return json.loads(Path(lines[-1]).read_text())


def run_parity(script: str | Path, steps: int, seeds: Sequence[int], logdir: str | Path, *,
               eval_games: int = PARITY_EVAL_GAMES, extra: Sequence[str] = (),
               runner: Callable[[Sequence[str]], dict[str, Any]] = run_command,
               report: Callable[[str], None] = print) -> dict[str, list[dict[str, Any]]]:
    """Each seed stock and ``--fast``, the order swapped every other seed; summaries by side."""
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in PARITY_SIDES}
    for index, seed in enumerate(seeds):
        order = list(PARITY_SIDES) if index % 2 == 0 else list(reversed(PARITY_SIDES))
        for side in order:
            summary = runner(parity_command(script, side, steps, seed, eval_games, logdir, extra))
            runs[side].append(summary)
            report(f"parity {side:5s} seed {seed}: {summary['timesteps']} steps at {summary['steps_per_second']} "
                   f"steps/s, {eval_games}-game mean {summary['mean_reward']:.1f} / median {summary['median_reward']:.1f}")
    for side in runs:
        runs[side].sort(key=lambda summary: summary["seed"])
    return runs


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, min, max) of the per-seed values."""
    return statistics.fmean(values), min(values), max(values)


def within_spread(runs: Mapping[str, Sequence[Mapping[str, Any]]], key: str = "mean_reward") -> bool:
    """True when ``--fast``'s mean over seeds of ``key`` lies within stock's per-seed min-max."""
    _, low, high = spread([summary[key] for summary in runs["stock"]])
    fast_mean, _, _ = spread([summary[key] for summary in runs["fast"]])
    return low <= fast_mean <= high


def parity_markdown(runs: Mapping[str, Sequence[Mapping[str, Any]]], steps: int) -> str:
    """One table: a row per side and seed, then each side's mean (min-max) over the seeds."""
    lines = [f"| {steps:,} steps | seed | env steps/s of training | final eval: mean / median | games | wall |",
             "|---|---:|---:|---:|---:|---:|"]
    for side, summaries in runs.items():
        for summary in summaries:
            lines.append(f"| {side} | {summary['seed']} | {summary['steps_per_second']:.1f} | "
                         f"{summary['mean_reward']:.1f} / {summary['median_reward']:.1f} | "
                         f"{len(summary.get('scores') or []) or '-'} | {summary['wall_seconds']:.0f} s |")
    for side, summaries in runs.items():
        cells = []
        for key in ("steps_per_second", "mean_reward", "median_reward"):
            mean, low, high = spread([summary[key] for summary in summaries])
            cells.append(f"{mean:.1f} ({low:.1f}-{high:.1f})")
        lines.append(f"| **{side}**, {len(summaries)} seeds | | {cells[0]} | {cells[1]} / {cells[2]} | | |")
    verdict = "within" if within_spread(runs) else "outside"
    lines += ["", f"`--fast`'s mean score over the seeds is {verdict} the spread of stock's seeds."]
    return "\n".join(lines) + "\n"
