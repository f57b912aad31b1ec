"""Learning parity: the same short run, stock and with every speed lever, over several seeds, in one table.

Why: a speed lever must change how fast PPO trains, not what it learns. A fixed-minibatch
check (tests/test_fast.py) shows the loss and gradients agree; this shows the learning
agrees: for each seed, a :class:`ParityPair` trains ``steps`` env steps on its stock side
and on its fast side (the two alternating, so a slow hour hits both), each evaluated over
the same whole games, and the fast side's scores must lie within the spread of stock's
seeds (:func:`within_spread`). Two pairs cover every lever: 2.3 stock against 2.3
``--fast`` (SB3), and 2.4 against 2.5 (the from-scratch PPO with its levers); a third, 3.3
``--fast`` on the classic envs against 3.3 ``--fast`` on ale_vector, checks the batched
aimbot view alone. Short runs learn little, so this is a sanity check, not proof.

``RLBREAKOUT_COMPILE=1`` in the environment reaches the fast runs, so a lever that a short
run would not choose (torch.compile) can be checked the same way.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlbreakout.errors import RLBreakoutError
from rlbreakout.provenance import REPO_ROOT

#: Whole games in each run's final evaluation (the README's parity table used 30).
PARITY_EVAL_GAMES = 30
#: The two sides of every pair, in the order of the first seed.
PARITY_SIDES = ("stock", "fast")
CHAPTER_2 = REPO_ROOT / "2_baselines"


@dataclass(frozen=True)
class ParityPair:
    """A stock run and its fast twin: one script twice (2.3 and ``--fast``) or two scripts (2.4, 2.5).

    ``eval_flag`` is the script's flag for the final evaluation's whole games;
    ``quiet_flags`` switch off what costs time but not learning (periodic evaluation, gifs).
    """

    name: str
    stock_script: Path
    fast_script: Path
    fast_flags: tuple[str, ...] = ()
    eval_flag: str = "--eval-games"
    quiet_flags: tuple[str, ...] = ("--gif-games", "0")
    #: what the table calls each side
    labels: tuple[str, str] = ("stock", "fast")
    #: flags of the stock side only (e.g. the same levers with the classic envs)
    stock_flags: tuple[str, ...] = ()

    def script(self, side: str) -> Path:
        return self.stock_script if side == "stock" else self.fast_script

    def label(self, side: str) -> str:
        return self.labels[PARITY_SIDES.index(side)]


#: SB3: 2.3 stock against 2.3 ``--fast`` (ale_vector, the measured precision, layout and compile).
ZOO_PAIR = ParityPair("2.3", CHAPTER_2 / "2.3_copying_hp_zoo.py", CHAPTER_2 / "2.3_copying_hp_zoo.py",
                      ("--fast",), "--eval-episodes", ("--eval-freq", "0", "--gif-games", "0"),
                      ("2.3 stock", "2.3 --fast"))
#: The from-scratch PPO: 2.4 (classic envs, fp32) against 2.5 (its speed levers, bf16 acting and update).
SCRATCH_PAIR = ParityPair("2.5", CHAPTER_2 / "2.4_ppo_atari_from_scratch.py", CHAPTER_2 / "2.5_ppo_fast.py",
                          labels=("2.4", "2.5"))
CHAPTER_3 = REPO_ROOT / "3_obswrapper"
#: The aimbot view: 3.3 ``--fast`` on the classic envs (the Python wrapper) against 3.3 ``--fast``
#: on ale_vector (the batched view); every other lever is the same on both sides.
AIMBOT_PAIR = ParityPair("3.3", CHAPTER_3 / "3.3_aimbot_training.py", CHAPTER_3 / "3.3_aimbot_training.py",
                         ("--fast",), "--eval-episodes", ("--eval-freq", "0", "--gif-games", "0"),
                         ("3.3 --fast, classic envs", "3.3 --fast, ale_vector"),
                         stock_flags=("--fast", "--backend", "classic"))
PARITY_PAIRS = {pair.name: pair for pair in (ZOO_PAIR, SCRATCH_PAIR, AIMBOT_PAIR)}


def parity_command(pair: ParityPair, side: str, steps: int, seed: int, eval_games: int, logdir: str | Path,
                   extra: Sequence[str] = ()) -> list[str]:
    """The command line of one run: ``pair``'s ``side`` for ``steps`` on ``seed``, its final
    evaluation over ``eval_games`` games, no periodic evaluation or gif (they cost time, not learning)."""
    side_flags = pair.fast_flags if side == "fast" else pair.stock_flags
    return [sys.executable, str(pair.script(side)), "--timesteps", str(steps), "--seed", str(seed),
            pair.eval_flag, str(eval_games), *pair.quiet_flags, "--logdir", str(logdir), *side_flags, *extra]


def run_command(command: Sequence[str]) -> dict[str, Any]:
    """Run one training script; its summary.json (the path it prints last), or one clear error."""
    done = subprocess.run(list(command), capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RLBreakoutError(f"parity run failed (exit {done.returncode}): {' '.join(command[1:])}: {last}")
    return json.loads(Path(lines[-1]).read_text())


def run_parity(pair: ParityPair, steps: int, seeds: Sequence[int], logdir: str | Path, *,
               eval_games: int = PARITY_EVAL_GAMES, extra: Sequence[str] = (),
               runner: Callable[[Sequence[str]], dict[str, Any]] = run_command,
               report: Callable[[str], None] = print) -> dict[str, list[dict[str, Any]]]:
    """Each seed stock and fast, the order swapped every other seed; summaries by side."""
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in PARITY_SIDES}
    for index, seed in enumerate(seeds):
        order = list(PARITY_SIDES) if index % 2 == 0 else list(reversed(PARITY_SIDES))
        for side in order:
            summary = runner(parity_command(pair, side, steps, seed, eval_games, logdir, extra))
            runs[side].append(summary)
            report(f"parity {pair.name} {side:5s} seed {seed}: {summary['timesteps']} steps at "
                   f"{summary['steps_per_second']} steps/s, {eval_games}-game mean {summary['mean_reward']:.1f} "
                   f"/ median {summary['median_reward']:.1f}")
    for side in runs:
        runs[side].sort(key=lambda summary: summary["seed"])
    return runs


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, min, max) of the per-seed values."""
    return statistics.fmean(values), min(values), max(values)


def within_spread(runs: Mapping[str, Sequence[Mapping[str, Any]]], key: str = "mean_reward") -> bool:
    """True when the fast side's mean over seeds of ``key`` lies within stock's per-seed min-max."""
    _, low, high = spread([summary[key] for summary in runs["stock"]])
    fast_mean, _, _ = spread([summary[key] for summary in runs["fast"]])
    return low <= fast_mean <= high


def score_difference(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple[float, float] | None:
    """(fast minus stock, its standard error) of the mean whole-game score, every seed's games pooled.

    Why beside :func:`within_spread`: one game's score varies more than the seeds' means do
    (near random play a game's standard deviation is about 2 points, so a 30-game mean moves
    by about 0.4), and three seeds' min-max is a narrow band. Welch's standard error says how
    far apart two sides of equal learning may land by chance; None without two games a side.
    """
    pooled = {side: [float(score) for summary in runs[side] for score in summary.get("scores") or []]
              for side in PARITY_SIDES}
    if any(len(scores) < 2 for scores in pooled.values()):
        return None
    stock, fast = pooled["stock"], pooled["fast"]
    error = (statistics.variance(stock) / len(stock) + statistics.variance(fast) / len(fast)) ** 0.5
    return statistics.fmean(fast) - statistics.fmean(stock), error


def parity_markdown(runs: Mapping[str, Sequence[Mapping[str, Any]]], steps: int, pair: ParityPair = ZOO_PAIR) -> str:
    """One table: a row per side and seed, then each side's mean (min-max) over the seeds."""
    lines = [f"| {steps:,} steps | seed | env steps/s of training | final eval: mean / median | games | wall |",
             "|---|---:|---:|---:|---:|---:|"]
    for side, summaries in runs.items():
        for summary in summaries:
            lines.append(f"| {pair.label(side)} | {summary['seed']} | {summary['steps_per_second']:.1f} | "
                         f"{summary['mean_reward']:.1f} / {summary['median_reward']:.1f} | "
                         f"{len(summary.get('scores') or []) or '-'} | {summary['wall_seconds']:.0f} s |")
    for side, summaries in runs.items():
        cells = []
        for key in ("steps_per_second", "mean_reward", "median_reward"):
            mean, low, high = spread([summary[key] for summary in summaries])
            cells.append(f"{mean:.1f} ({low:.1f}-{high:.1f})")
        lines.append(f"| **{pair.label(side)}**, {len(summaries)} seeds | | {cells[0]} | {cells[1]} / {cells[2]} | | |")
    verdict = "within" if within_spread(runs) else "outside"
    fast, stock = pair.label("fast"), pair.label("stock")
    lines += ["", f"{fast}'s mean score over the seeds is {verdict} the spread of {stock}'s seeds."]
    difference = score_difference(runs)
    if difference is not None:
        games = {side: sum(len(summary.get("scores") or []) for summary in runs[side]) for side in PARITY_SIDES}
        lines.append(f"Every seed's games pooled ({games['fast']} and {games['stock']}): {fast} minus {stock} = "
                     f"{difference[0]:+.2f} +- {difference[1]:.2f} (standard error) points a game.")
    return "\n".join(lines) + "\n"
