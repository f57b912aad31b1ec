"""Chapters 0.1, 1.1 and 1.2 run as a learner runs them: whole files, cell by cell, and a clean checkout."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import pytest

from cells import run_cells
from checkout import committed_outputs_state, run_copy
from conftest import run_script, summary_of
from rlbreakout.runs import REQUIRED_SUMMARY_KEYS

CHECK_SETUP, GYM, WRAPPER = "0_setup/0.1_check_setup.py", "1_gym/1.1_gym.py", "1_gym/1.2_wrapper.py"
#: Flags that shrink each script without changing where it writes.
TINY_FLAGS = {
    CHECK_SETUP: ["--timesteps", "200", "--n-envs", "2"],
    GYM: ["--games", "1"],
    WRAPPER: [],
}


def assert_run_folder(summary_path: Path, summary: dict) -> Path:
    for key in REQUIRED_SUMMARY_KEYS:
        assert key in summary, f"summary.json lacks {key}"
    run_dir = Path(summary["run_dir"])
    assert summary_path.parent == run_dir
    assert (run_dir / "config.json").is_file() and (run_dir / "command.txt").is_file()
    return run_dir


def test_0_1_check_setup_writes_its_frame_into_the_run_folder_only(logdir: Path) -> None:
    before = committed_outputs_state()
    result = run_script(CHECK_SETUP, *TINY_FLAGS[CHECK_SETUP], "--logdir", str(logdir))
    assert committed_outputs_state() == before, "0.1 wrote into pictures/ or video/ without --save-pictures"
    path, summary = summary_of(result)
    run_dir = assert_run_folder(path, summary)
    picture = Path(summary["picture"])
    assert picture.parent == run_dir and imageio.imread(picture).shape == (210, 160, 3)
    assert summary["frame_shape"] == [210, 160, 3] and summary["saved_pictures"] == []
    assert summary["timesteps"] == 200 and summary["steps_per_second"] > 0 and "raw env speed" in result.stdout
    assert summary["versions"]["ale-py"] != "not installed"


def test_0_1_picture_flag_copies_the_frame(logdir: Path, tmp_path: Path) -> None:
    target = tmp_path / "frame.png"
    result = run_script(CHECK_SETUP, *TINY_FLAGS[CHECK_SETUP], "--logdir", str(logdir), "--picture", str(target))
    _, summary = summary_of(result)
    assert summary["saved_pictures"] == [str(target)]
    assert target.read_bytes() == Path(summary["picture"]).read_bytes()


def test_1_1_random_agent_plays_whole_games(logdir: Path) -> None:
    before = committed_outputs_state()
    result = run_script(GYM, *TINY_FLAGS[GYM], "--logdir", str(logdir))
    assert committed_outputs_state() == before
    path, summary = summary_of(result)
    run_dir = assert_run_folder(path, summary)
    assert summary["n_games"] == 1 and len(summary["scores"]) == 1 and summary["n_actions"] == 4
    assert summary["mean_reward"] == summary["scores"][0]
    # a whole game of 5 lives takes a random agent far more than 100 frames, and the gif shows it
    assert summary["timesteps"] > 100 and "game 1: score" in result.stdout and "action meanings" in result.stdout
    gif = Path(summary["gif_path"])
    assert gif.parent == run_dir and len(imageio.mimread(gif)) > 10


def test_1_1_timesteps_cap_counts_no_unfinished_game(logdir: Path) -> None:
    _, summary = summary_of(run_script(GYM, "--timesteps", "50", "--logdir", str(logdir)))
    assert summary["timesteps"] == 50 and summary["scores"] == [] and summary["n_games"] == 0


def test_1_2_episodic_life_ends_an_episode_per_life(logdir: Path) -> None:
    before = committed_outputs_state()
    result = run_script(WRAPPER, "--logdir", str(logdir))
    assert committed_outputs_state() == before
    path, summary = summary_of(result)
    assert_run_folder(path, summary)
    assert summary["life_episodes"] == 5 and summary["n_games"] == 1
    assert result.stdout.count("terminated=True") == 5 and result.stdout.count("game over=True") == 1


def test_bad_input_is_one_line_and_exit_2(logdir: Path) -> None:
    result = run_script(GYM, "--games", "0", "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2 and "argument --games: 0 is out of range" in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not logdir.exists(), "bad input leaves no run folder"


@pytest.mark.parametrize("script", [CHECK_SETUP, GYM, WRAPPER])
def test_cells_run_one_by_one(script: str, logdir: Path) -> None:
    namespace = run_cells(script, *TINY_FLAGS[script], "--logdir", str(logdir))
    assert "env" in namespace and "run" in namespace
    assert (namespace["run"].dir / "summary.json").is_file()


def test_save_pictures_replaces_the_committed_frame(tmp_path: Path) -> None:
    """On a copy of the script, so the real pictures/ stays as committed."""
    before = committed_outputs_state()
    run_copy(CHECK_SETUP, tmp_path, *TINY_FLAGS[CHECK_SETUP], "--logdir", str(tmp_path / "runs"), "--save-pictures")
    assert imageio.imread(tmp_path / "pictures" / "0.1_breakout_frame.png").shape == (210, 160, 3)
    assert committed_outputs_state() == before
