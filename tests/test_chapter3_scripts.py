"""Chapter 3 scripts 3.1, 3.2 and 3.2_nomodel run as a learner runs them, with tiny budgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import run_script, summary_of
from rlbreakout.runs import REQUIRED_SUMMARY_KEYS


def assert_common(summary_path: Path, summary: dict) -> Path:
    for key in REQUIRED_SUMMARY_KEYS:
        assert key in summary, f"summary.json lacks {key}"
    run_dir = Path(summary["run_dir"])
    assert summary_path.parent == run_dir
    assert (run_dir / "config.json").is_file() and (run_dir / "command.txt").is_file()
    return run_dir


@pytest.mark.slow
def test_3_1_observation_space(logdir: Path, tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    result = run_script("3_obswrapper/3.1_observation_space.py", "--timesteps", "5", "--logdir", str(logdir),
                        "--pictures", str(pictures))
    path, summary = summary_of(result)
    assert_common(path, summary)
    assert "WarpFrame" in result.stdout and "BreakoutObservationWrapper" in result.stdout
    assert summary["aimbot_stack"][-1] == ["VecTransposeImage", [1, 4, 84, 84]]
    assert ["BreakoutObservationWrapper", [84, 84, 1]] in summary["aimbot_stack"]
    assert summary["impact_column"] is not None, "the exported frame shows a falling ball and its marker"
    raw = np.loadtxt(pictures / "3.1_raw_frame.csv", delimiter=",", skiprows=1)
    assert raw.shape == (210 * 160, 5)
    observation = np.loadtxt(pictures / "3.1_observation.csv", delimiter=",")
    assert observation.shape == (84, 84) and set(np.unique(observation)) <= {0, 255}
    for name in ("3.1_raw_frame.jpg", "3.1_observation.jpg"):
        assert (pictures / name).stat().st_size > 0


@pytest.mark.slow
def test_3_2_observation_wrapper(logdir: Path, tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    result = run_script("3_obswrapper/3.2_observation_wrapper.py", "--timesteps", "5", "--logdir", str(logdir),
                        "--pictures", str(pictures))
    path, summary = summary_of(result)
    assert_common(path, summary)
    assert summary["observation_shapes"]["rgb/keep/native"] == [210, 160, 3]
    assert summary["observation_shapes"]["mono/trim/84x84"] == [84, 84, 1]
    assert summary["observation_shapes"]["grey/trim/native"] == [168, 144, 1]
    for key in ("grid_path", "sequence_path"):
        picture = Path(summary[key])
        assert picture.parent == pictures and 0 < picture.stat().st_size < 2 * 1024 * 1024


@pytest.mark.slow
def test_3_2_nomodel_scripted_player(logdir: Path, tmp_path: Path) -> None:
    pictures = tmp_path / "pictures"
    result = run_script("3_obswrapper/3.2_observation_wrapper_nomodel.py", "--episodes", "1",
                        "--max-game-frames", "1200", "--gif-steps", "40", "--logdir", str(logdir),
                        "--pictures", str(pictures))
    path, summary = summary_of(result)
    run_dir = assert_common(path, summary)
    assert summary["n_games"] == 1 and len(summary["scores"]) == 1
    assert summary["mean_reward"] == summary["median_reward"] == summary["scores"][0] > 0
    assert summary["timesteps"] == sum(summary["lengths"]) <= 300
    assert Path(summary["gif_path"]) == run_dir / "scripted_player.gif"
    assert (pictures / "3.2_scripted_player.gif").stat().st_size > 0
    assert "game 1: score" in result.stdout


@pytest.mark.slow
def test_3_2_nomodel_budget_too_small_counts_no_game(logdir: Path) -> None:
    result = run_script("3_obswrapper/3.2_observation_wrapper_nomodel.py", "--env", "ALE/Breakout-v5",
                        "--episodes", "1", "--timesteps", "30", "--gif-steps", "0", "--pictures", "",
                        "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert summary["timesteps"] == 30 and summary["unfinished_game"] and summary["scores"] == []
    assert "ran out" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("args", "message"), [
    (["--env", "ALE/Pong-v5"], "Breakout only"),
    (["--episodes", "0"], "--episodes must be >= 1"),
])
def test_3_2_nomodel_bad_input_is_one_line(logdir: Path, args: list[str], message: str) -> None:
    result = run_script("3_obswrapper/3.2_observation_wrapper_nomodel.py", *args, "--logdir", str(logdir),
                        "--pictures", "", expect_ok=False)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
