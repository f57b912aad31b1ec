"""Chapter 3 scripts run as a learner runs them: whole files with tiny budgets, cell by cell, and a clean checkout."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from cells import run_cells
from checkout import committed_outputs_state, run_copy
from conftest import TINY_PPO_FLAGS, run_script, summary_of
from rlbreakout.runs import REQUIRED_SUMMARY_KEYS

SPACE = "3_obswrapper/3.1_observation_space.py"
WRAPPER = "3_obswrapper/3.2_observation_wrapper.py"
NOMODEL = "3_obswrapper/3.2_observation_wrapper_nomodel.py"
TRAINING = "3_obswrapper/3.3_aimbot_training.py"
#: A 3-game mean of models/ppo_aimbot_policy.pt above this is the trained agent (random play: about 1.3).
PRETRAINED_AIMBOT_MIN_MEAN = 10.0
#: Flags that shrink each script without changing where it writes.
TINY_FLAGS = {
    SPACE: ["--timesteps", "5"],
    WRAPPER: ["--timesteps", "5"],
    NOMODEL: ["--episodes", "1", "--max-game-frames", "1200", "--gif-steps", "40"],
    TRAINING: [*TINY_PPO_FLAGS, "--gif-max-steps", "20"],
}
#: What --save-pictures writes into pictures/, per script.
SAVED = {
    SPACE: ["3.1_raw_frame.jpg", "3.1_raw_frame.csv", "3.1_observation.jpg", "3.1_observation.csv"],
    WRAPPER: ["3.2_observation_wrapper_options.png", "3.2_marker_sequence.png"],
    NOMODEL: ["3.2_scripted_player.gif"],
}


def assert_run_folder(summary_path: Path, summary: dict) -> Path:
    for key in REQUIRED_SUMMARY_KEYS:
        assert key in summary, f"summary.json lacks {key}"
    run_dir = Path(summary["run_dir"])
    assert summary_path.parent == run_dir
    assert (run_dir / "config.json").is_file() and (run_dir / "command.txt").is_file()
    return run_dir


def run_leaving_pictures_alone(script: str, logdir: Path, *extra: str):
    """Run ``script`` with its tiny flags; fail if it wrote into the committed pictures/ or video/."""
    before = committed_outputs_state()
    result = run_script(script, *TINY_FLAGS[script], *extra, "--logdir", str(logdir))
    assert committed_outputs_state() == before, f"{script} wrote into pictures/ or video/ without --save-pictures"
    path, summary = summary_of(result)
    return result, summary, assert_run_folder(path, summary)


@pytest.mark.slow
def test_3_1_observation_space(logdir: Path) -> None:
    result, summary, run_dir = run_leaving_pictures_alone(SPACE, logdir)
    assert "WarpFrame" in result.stdout and "BreakoutObservationWrapper" in result.stdout
    assert summary["zoo_stack"][0] == ["AtariEnv", [210, 160, 3]]
    assert summary["aimbot_stack"][-1] == ["VecTransposeImage", [1, 4, 84, 84]]
    assert ["BreakoutObservationWrapper", [84, 84, 1]] in summary["aimbot_stack"]
    assert ["WarpFrame", [84, 84, 1]] in summary["zoo_stack"] and ["WarpFrame", [84, 84, 1]] not in summary["aimbot_stack"]
    assert summary["impact_column"] is not None, "the exported frame shows a falling ball and its marker"
    raw = np.loadtxt(run_dir / "3.1_raw_frame.csv", delimiter=",", skiprows=1)
    assert raw.shape == (210 * 160, 5)
    observation = np.loadtxt(run_dir / "3.1_observation.csv", delimiter=",")
    assert observation.shape == (84, 84) and set(np.unique(observation)) <= {0, 255}
    assert observation[-2:].any(), "the marker rows are lit"
    assert imageio.imread(run_dir / "3.1_raw_frame.jpg").shape == (210, 160, 3)
    assert summary["saved_pictures"] == []


@pytest.mark.slow
def test_3_2_observation_wrapper(logdir: Path) -> None:
    _, summary, run_dir = run_leaving_pictures_alone(WRAPPER, logdir)
    assert summary["own_wrapper_shape"] == [168, 144, 1]
    assert summary["observation_shapes"]["rgb/keep/native"] == [210, 160, 3]
    assert summary["observation_shapes"]["mono/trim/84x84"] == [84, 84, 1]
    assert summary["observation_shapes"]["grey/trim/native"] == [168, 144, 1]
    for key in ("own_wrapper_path", "grid_path", "sequence_path"):
        picture = Path(summary[key])
        assert picture.parent == run_dir and 0 < picture.stat().st_size < 2 * 1024 * 1024


@pytest.mark.slow
def test_3_2_nomodel_scripted_player(logdir: Path) -> None:
    result, summary, run_dir = run_leaving_pictures_alone(NOMODEL, logdir)
    assert summary["n_games"] == 1 and len(summary["scores"]) == 1
    assert summary["mean_reward"] == summary["scores"][0] > 0
    assert summary["timesteps"] == sum(summary["lengths"]) <= 300
    assert Path(summary["gif_path"]) == run_dir / "scripted_player.gif"
    assert len(imageio.mimread(summary["gif_path"])) > 5
    assert "game 1: score" in result.stdout


@pytest.mark.slow
def test_3_2_nomodel_budget_too_small_counts_no_game(logdir: Path) -> None:
    result = run_script(NOMODEL, "--env", "ALE/Breakout-v5", "--episodes", "1", "--timesteps", "30", "--gif-steps", "0",
                        "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert summary["timesteps"] == 30 and summary["unfinished_game"] and summary["scores"] == []
    assert summary["gif_path"] is None and "ran out" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--env", "ALE/Pong-v5"], "Breakout only"),
    (["--episodes", "0"], "argument --episodes: 0 is out of range"),
])
def test_3_2_nomodel_bad_input_is_one_line(logdir: Path, args: list[str], message: str) -> None:
    result = run_script(NOMODEL, *args, "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert not logdir.exists(), "bad input leaves no run folder"


@pytest.mark.slow
@pytest.mark.parametrize("script", [SPACE, WRAPPER, NOMODEL])
def test_cells_run_one_by_one(script: str, logdir: Path) -> None:
    namespace = run_cells(script, *TINY_FLAGS[script], "--logdir", str(logdir))
    assert "env" in namespace and (namespace["run"].dir / "summary.json").is_file()


@pytest.mark.slow
def test_3_3_cells_run_one_by_one(logdir: Path) -> None:
    namespace = run_cells(TRAINING, *TINY_FLAGS[TRAINING], "--logdir", str(logdir))
    assert "env" in namespace and "model" in namespace
    assert namespace["model"].num_timesteps == 64
    assert namespace["env"].observation_space.shape == (4, 84, 84)  # the aimbot view, 4 frames stacked
    assert len(namespace["scores"]) == 1 and Path(namespace["gif_path"]).is_file()


@pytest.mark.slow
@pytest.mark.parametrize("script", [SPACE, WRAPPER, NOMODEL])
def test_save_pictures_writes_the_committed_pictures(script: str, tmp_path: Path) -> None:
    """On a copy of the script, so the real pictures/ stays as committed."""
    before = committed_outputs_state()
    run_copy(script, tmp_path, *TINY_FLAGS[script], "--logdir", str(tmp_path / "runs"), "--save-pictures")
    written = sorted(path.name for path in (tmp_path / "pictures").iterdir())
    assert written == sorted(SAVED[script])
    assert all((tmp_path / "pictures" / name).stat().st_size > 0 for name in written)
    assert committed_outputs_state() == before


@pytest.mark.slow
def test_3_3_loads_the_pretrained_aimbot_policy_and_replays_it(logdir: Path) -> None:
    """models/ppo_aimbot_policy.pt (a stock SB3 policy file) plays on the aimbot view: no training, a score, a gif."""
    result = run_script(TRAINING, "--load", "models/ppo_aimbot_policy.pt", "--eval-episodes", "3", "--gif-games", "1",
                        "--gif-max-steps", "60", "--device", "cpu", "--logdir", str(logdir))
    path, summary = summary_of(result)
    assert_run_folder(path, summary)
    assert summary["model_path"] == "models/ppo_aimbot_policy.pt" and summary["steps_per_second"] == 0.0
    # the trained weights on the view they learned: random play scores about 1.3 a game, this file about 60,
    # so a 3-game mean under PRETRAINED_AIMBOT_MIN_MEAN means the weights or the view did not load as trained
    assert summary["n_games"] == 3 and summary["mean_reward"] > PRETRAINED_AIMBOT_MIN_MEAN
    frame = imageio.imread(summary["gif_path"])  # the agent's view beside the screen (the default --gif-view)
    assert frame.shape[1] > frame.shape[0]
