"""rlbreakout/parity.py: the alternating stock / --fast runs, the spread test and the table."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rlbreakout.errors import RLBreakoutError
from rlbreakout.parity import (
    parity_command,
    parity_markdown,
    run_command,
    run_parity,
    spread,
    within_spread,
)

SCRIPT = "2_baselines/2.3_copying_hp_zoo.py"


def summary(seed: int, mean: float, median: float | None = None, steps_per_second: float = 100.0) -> dict[str, Any]:
    return {"seed": seed, "timesteps": 50_000, "steps_per_second": steps_per_second, "mean_reward": mean,
            "median_reward": mean if median is None else median, "wall_seconds": 120.0, "scores": [mean] * 30}


def test_the_command_is_the_script_with_its_side() -> None:
    stock = parity_command(SCRIPT, "stock", 50_000, 2, 30, "runs/parity")
    fast = parity_command(SCRIPT, "fast", 50_000, 2, 30, "runs/parity", ["--env", "ALE/Breakout-v5"])
    assert stock[0] == sys.executable and stock[1] == SCRIPT and "--fast" not in stock
    assert stock[stock.index("--timesteps") + 1] == "50000" and stock[stock.index("--seed") + 1] == "2"
    assert stock[stock.index("--eval-episodes") + 1] == "30" and stock[stock.index("--eval-freq") + 1] == "0"
    assert fast[:len(stock)] == stock and fast[len(stock):] == ["--fast", "--env", "ALE/Breakout-v5"]


def test_sides_alternate_seed_by_seed() -> None:
    commands: list[Sequence[str]] = []

    def runner(command: Sequence[str]) -> dict[str, Any]:
        commands.append(command)
        seed = int(command[command.index("--seed") + 1])
        return summary(seed, mean=float(seed) + (0.5 if "--fast" in command else 0.0))

    lines: list[str] = []
    runs = run_parity(SCRIPT, 50_000, [0, 1, 2], "runs/parity", runner=runner, report=lines.append)
    sides = ["fast" if "--fast" in command else "stock" for command in commands]
    assert sides == ["stock", "fast", "fast", "stock", "stock", "fast"]  # A B, B A, A B
    assert [s["seed"] for s in runs["stock"]] == [s["seed"] for s in runs["fast"]] == [0, 1, 2]
    assert lines[0] == "parity stock seed 0: 50000 steps at 100.0 steps/s, 30-game mean 0.0 / median 0.0"


def test_spread_and_the_verdict() -> None:
    assert spread([1.0, 2.0, 6.0]) == (3.0, 1.0, 6.0)
    stock = [summary(0, 2.0), summary(1, 3.0), summary(2, 5.0)]
    assert within_spread({"stock": stock, "fast": [summary(0, 1.5), summary(1, 3.5), summary(2, 4.0)]})  # 3.0
    assert not within_spread({"stock": stock, "fast": [summary(0, 6.0), summary(1, 7.0), summary(2, 5.5)]})
    assert within_spread({"stock": stock, "fast": [summary(0, 5.0)]})  # the edge counts


def test_the_table_has_a_row_per_run_and_the_means() -> None:
    runs = {"stock": [summary(0, 2.0, 1.0, 300.0), summary(1, 4.0, 3.0, 310.0)],
            "fast": [summary(0, 3.0, 2.0, 600.0), summary(1, 3.0, 3.0, 620.0)]}
    table = parity_markdown(runs, 50_000)
    lines = table.splitlines()
    assert lines[0].startswith("| 50,000 steps | seed |")
    assert "| stock | 1 | 310.0 | 4.0 / 3.0 | 30 | 120 s |" in lines
    assert "| **stock**, 2 seeds | | 305.0 (300.0-310.0) | 3.0 (2.0-4.0) / 2.0 (1.0-3.0) | | |" in lines
    assert "| **fast**, 2 seeds | | 610.0 (600.0-620.0) | 3.0 (3.0-3.0) / 2.5 (2.0-3.0) | | |" in lines
    assert lines[-1] == "`--fast`'s mean score over the seeds is within the spread of stock's seeds."


def test_a_failing_run_is_one_clear_error(tmp_path: Path) -> None:
    failing = tmp_path / "fails.py"
    failing.write_text("import sys\nprint('error: --timesteps must be positive', file=sys.stderr)\nsys.exit(2)\n")
    with pytest.raises(RLBreakoutError, match=r"parity run failed \(exit 2\): .*fails.py --timesteps 0: "
                                              r"error: --timesteps must be positive"):
        run_command([sys.executable, str(failing), "--timesteps", "0"])
