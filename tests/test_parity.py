"""rlbreakout/speed/parity.py: the alternating stock / --fast runs, the spread test and the table."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rlbreakout.errors import RLBreakoutError
from rlbreakout.speed.parity import (
    AIMBOT_PAIR,
    PARITY_PAIRS,
    SCRATCH_PAIR,
    ZOO_PAIR,
    parity_command,
    parity_markdown,
    run_command,
    run_parity,
    score_difference,
    spread,
    within_spread,
)



def summary(seed: int, mean: float, median: float | None = None, steps_per_second: float = 100.0) -> dict[str, Any]:
    return {"seed": seed, "timesteps": 50_000, "steps_per_second": steps_per_second, "mean_reward": mean,
            "median_reward": mean if median is None else median, "wall_seconds": 120.0, "scores": [mean] * 30}


def test_the_command_is_the_script_with_its_side() -> None:
    stock = parity_command(ZOO_PAIR, "stock", 50_000, 2, 30, "runs/parity")
    fast = parity_command(ZOO_PAIR, "fast", 50_000, 2, 30, "runs/parity", ["--env", "ALE/Breakout-v5"])
    assert stock[0] == sys.executable and stock[1].endswith("2_baselines/2.3_copying_hp_zoo.py")
    assert "--fast" not in stock
    assert stock[stock.index("--timesteps") + 1] == "50000" and stock[stock.index("--seed") + 1] == "2"
    assert stock[stock.index("--eval-episodes") + 1] == "30" and stock[stock.index("--eval-freq") + 1] == "0"
    assert fast[:len(stock)] == stock and fast[len(stock):] == ["--fast", "--env", "ALE/Breakout-v5"]


def test_the_from_scratch_pair_is_2_4_against_2_5_with_their_own_flags() -> None:
    stock = parity_command(SCRATCH_PAIR, "stock", 50_000, 1, 30, "runs/parity")
    fast = parity_command(SCRATCH_PAIR, "fast", 50_000, 1, 30, "runs/parity")
    assert Path(stock[1]).name == "2.4_ppo_atari_from_scratch.py" and Path(fast[1]).name == "2.5_ppo_fast.py"
    for command in (stock, fast):
        assert Path(command[1]).is_file()
        assert command[command.index("--eval-games") + 1] == "30" and command[command.index("--gif-games") + 1] == "0"
        assert "--eval-episodes" not in command and "--eval-freq" not in command and "--fast" not in command
    assert stock[2:] == fast[2:]  # same steps, seed, games: only the script differs


def test_the_aimbot_pair_differs_only_in_the_env_backend() -> None:
    stock = parity_command(AIMBOT_PAIR, "stock", 50_000, 2, 30, "runs/parity")
    fast = parity_command(AIMBOT_PAIR, "fast", 50_000, 2, 30, "runs/parity")
    assert Path(stock[1]).name == Path(fast[1]).name == "3.3_aimbot_training.py"
    assert stock[-3:] == ["--fast", "--backend", "classic"] and fast[-1] == "--fast"
    assert stock[:-3] == fast[:-1]  # same script, steps, seed, games and quiet flags


@pytest.mark.parametrize("pair", PARITY_PAIRS.values(), ids=PARITY_PAIRS)
def test_every_pair_names_flags_its_scripts_accept(pair) -> None:
    """The flags a parity run passes must exist in the script's own parser (else it dies at argparse)."""
    for side in ("stock", "fast"):
        command = parity_command(pair, side, 64, 0, 2, "runs/parity")
        help_text = subprocess.run([sys.executable, command[1], "--help"], capture_output=True, text=True,
                                   check=True).stdout
        for flag in (part for part in command[2:] if part.startswith("--")):
            assert flag in help_text, f"{Path(command[1]).name} has no {flag}"


def test_sides_alternate_seed_by_seed() -> None:
    commands: list[Sequence[str]] = []

    def runner(command: Sequence[str]) -> dict[str, Any]:
        commands.append(command)
        seed = int(command[command.index("--seed") + 1])
        return summary(seed, mean=float(seed) + (0.5 if "--fast" in command else 0.0))

    lines: list[str] = []
    runs = run_parity(ZOO_PAIR, 50_000, [0, 1, 2], "runs/parity", runner=runner, report=lines.append)
    sides = ["fast" if "--fast" in command else "stock" for command in commands]
    assert sides == ["stock", "fast", "fast", "stock", "stock", "fast"]  # A B, B A, A B
    assert [s["seed"] for s in runs["stock"]] == [s["seed"] for s in runs["fast"]] == [0, 1, 2]
    assert lines[0] == "parity 2.3 stock seed 0: 50000 steps at 100.0 steps/s, 30-game mean 0.0 / median 0.0"


def test_spread_and_the_verdict() -> None:
    assert spread([1.0, 2.0, 6.0]) == (3.0, 1.0, 6.0)
    stock = [summary(0, 2.0), summary(1, 3.0), summary(2, 5.0)]
    assert within_spread({"stock": stock, "fast": [summary(0, 1.5), summary(1, 3.5), summary(2, 4.0)]})  # 3.0
    assert not within_spread({"stock": stock, "fast": [summary(0, 6.0), summary(1, 7.0), summary(2, 5.5)]})
    assert within_spread({"stock": stock, "fast": [summary(0, 5.0)]})  # the edge counts


def test_the_table_has_a_row_per_run_and_the_means() -> None:
    runs = {"stock": [summary(0, 2.0, 1.0, 300.0), summary(1, 4.0, 3.0, 310.0)],
            "fast": [summary(0, 3.0, 2.0, 600.0), summary(1, 3.0, 3.0, 620.0)]}
    table = parity_markdown(runs, 50_000, ZOO_PAIR)
    lines = table.splitlines()
    assert lines[0].startswith("| 50,000 steps | seed |")
    assert "| 2.3 stock | 1 | 310.0 | 4.0 / 3.0 | 30 | 120 s |" in lines
    assert "| **2.3 stock**, 2 seeds | | 305.0 (300.0-310.0) | 3.0 (2.0-4.0) / 2.0 (1.0-3.0) | | |" in lines
    assert "| **2.3 --fast**, 2 seeds | | 610.0 (600.0-620.0) | 3.0 (3.0-3.0) / 2.5 (2.0-3.0) | | |" in lines
    assert "2.3 --fast's mean score over the seeds is within the spread of 2.3 stock's seeds." in lines
    scratch_lines = parity_markdown(runs, 50_000, SCRATCH_PAIR).splitlines()
    assert "| 2.4 | 1 | 310.0 | 4.0 / 3.0 | 30 | 120 s |" in scratch_lines
    assert "| 2.5 | 0 | 600.0 | 3.0 / 2.0 | 30 | 120 s |" in scratch_lines
    assert "2.5's mean score over the seeds is within the spread of 2.4's seeds." in scratch_lines


def test_a_failing_run_is_one_clear_error(tmp_path: Path) -> None:
    failing = tmp_path / "fails.py"
    failing.write_text("import sys\nprint('error: --timesteps must be positive', file=sys.stderr)\nsys.exit(2)\n")
    with pytest.raises(RLBreakoutError, match=r"parity run failed \(exit 2\): .*fails.py --timesteps 0: "
                                              r"error: --timesteps must be positive"):
        run_command([sys.executable, str(failing), "--timesteps", "0"])


def test_the_score_difference_pools_every_seeds_games_with_welchs_standard_error() -> None:
    stock = [{"scores": [0.0, 2.0]}, {"scores": [1.0, 1.0]}]  # mean 1, variance 2/3
    fast = [{"scores": [2.0, 4.0, 3.0, 3.0]}]  # mean 3, variance 2/3
    difference, error = score_difference({"stock": stock, "fast": fast})
    assert difference == pytest.approx(2.0)
    assert error == pytest.approx(((2 / 3) / 4 + (2 / 3) / 4) ** 0.5)
    assert score_difference({"stock": [{"scores": [1.0]}], "fast": fast}) is None  # one game: no variance
    assert score_difference({"stock": [{"scores": None}], "fast": fast}) is None


def test_the_table_states_the_pooled_difference() -> None:
    runs = {"stock": [summary(0, 1.0), summary(1, 2.0)], "fast": [summary(0, 2.0), summary(1, 3.0)]}
    last = parity_markdown(runs, 50_000, SCRATCH_PAIR).splitlines()[-1]
    assert last == ("Every seed's games pooled (60 and 60): 2.5 minus 2.4 = +1.00 +- 0.09 (standard error) "
                    "points a game.")


def test_the_parity_pairs_name_the_chapter_scripts() -> None:
    for pair in PARITY_PAIRS.values():
        assert pair.stock_script.is_file() and pair.fast_script.is_file(), pair
