"""Chapter 5's scripts as a learner runs them, on Airstriker-Genesis with budgets of a few hundred steps."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import pytest

from cells import run_cells
from conftest import run_script, scalar_steps, summary_of
from rlbreakout.runs import REQUIRED_SUMMARY_KEYS

pytest.importorskip("stable_retro")
pytestmark = [pytest.mark.retro, pytest.mark.slow]

GAME = "Airstriker-Genesis"  # the old gym-retro name: the scripts accept it
#: Short games, so that every evaluation and replay takes seconds.
SHORT_GAMES = ["--max-episode-steps", "60", "--device", "cpu"]
TINY_RUN = [*SHORT_GAMES, "--eval-freq", "64", "--eval-episodes", "1", "--gif-max-steps", "20"]


def check_common(summary: dict, script: str) -> Path:
    assert set(REQUIRED_SUMMARY_KEYS) <= set(summary)
    assert summary["script"] == script and summary["env_id"] == "Airstriker-Genesis-v0"
    assert summary["steps_per_second"] > 0
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "config.json").is_file() and (run_dir / "command.txt").is_file()
    return run_dir


def test_jerk_script_replays_its_best_run_exactly_and_measures_breakout(logdir: Path) -> None:
    result = run_script("5_sonic/5.1_jerk.py", "--game", GAME, "--timesteps", "300", *SHORT_GAMES,
                        "--eval-replays", "2", "--breakout-replays", "2", "--breakout-actions", "300",
                        "--logdir", str(logdir))
    _, summary = summary_of(result)
    run_dir = check_common(summary, "5.1_jerk")
    assert summary["timesteps"] >= 300 and summary["sticky"] == 0.0
    assert summary["scores"] == [summary["best_sequence_scores"][0]] * 2  # deterministic emulator
    assert summary["mean_reward"] == summary["median_reward"] == summary["scores"][0]
    assert len(imageio.mimread(summary["gif_path"], memtest=False)) >= 2
    assert scalar_steps(run_dir, "jerk/episode_score")
    breakout = summary["breakout_replays"]
    assert len(set(breakout["BreakoutNoFrameskip-v4"]["scores"])) == 1
    assert set(breakout) == {"BreakoutNoFrameskip-v4", "ALE/Breakout-v5"}


def test_ppo_script_trains_evaluates_and_freezes(logdir: Path) -> None:
    # two training envs: two emulator processes, which must not re-run the script (one run folder)
    result = run_script("5_sonic/5.2_ppo_sonic.py", "--game", GAME, "--timesteps", "128", "--n-envs", "2",
                        "--n-steps", "64", "--batch-size", "64", "--n-epochs", "1", "--reward-scale", "piecewise",
                        *TINY_RUN, "--logdir", str(logdir))
    _, summary = summary_of(result)
    run_dir = check_common(summary, "5.2_ppo_sonic")
    assert "scalepiecewise" in run_dir.name and summary["reward_scale"] == "piecewise"
    assert summary["timesteps"] == 128 and summary["n_games"] == 1
    assert [e["step"] for e in summary["eval_history"]] == [64, 128]
    assert summary["best_eval_score"] == max(e["mean_reward"] for e in summary["eval_history"])
    assert Path(summary["model_path"]).is_file() and (run_dir / "best_model.zip").is_file()
    assert Path(summary["gif_path"]).is_file()
    assert scalar_steps(run_dir, "eval/eval/mean_reward") == [64, 128]
    assert scalar_steps(run_dir, "collapse/best_score")
    assert [path.name for path in run_dir.parent.iterdir()] == [run_dir.name]


def test_dqn_family_script_trains_qrdqn(logdir: Path) -> None:
    result = run_script("5_sonic/5.3_dqn_sonic.py", "--game", GAME, "--timesteps", "200", "--buffer-size", "500",
                        "--learning-starts", "100", "--target-update", "50", "--gif-max-steps", "0",
                        *SHORT_GAMES, "--eval-freq", "0", "--eval-episodes", "1", "--logdir", str(logdir))
    _, summary = summary_of(result)
    run_dir = check_common(summary, "5.3_dqn_sonic")
    assert summary["algorithm"] == "QRDQN" and summary["multi_step"] == 3
    assert summary["timesteps"] == 200 and Path(summary["model_path"]).is_file()
    assert summary["gif_path"] is None and summary["eval_history"] == []
    assert scalar_steps(run_dir, "train/loss")  # it learned after the 100 warm-up steps


def test_a_missing_sonic_rom_is_one_line_and_no_run_folder(logdir: Path) -> None:
    import stable_retro

    try:
        stable_retro.data.get_romfile_path("SonicTheHedgehog-Genesis-v0")
        pytest.skip("a Sonic ROM is imported on this machine")
    except FileNotFoundError:
        pass
    for script in ("5_sonic/5.1_jerk.py", "5_sonic/5.2_ppo_sonic.py", "5_sonic/5.3_dqn_sonic.py"):
        result = run_script(script, "--game", "SonicTheHedgehog-Genesis", "--logdir", str(logdir), expect_ok=False)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: the ROM of SonicTheHedgehog-Genesis-v0 is not imported")
        assert "python -m stable_retro.import DIR" in lines[-1]
    assert not logdir.exists()


# %% Cell by cell, as Spyder runs them (in this process: every script closes its emulator)

def test_jerk_script_cell_by_cell(logdir: Path) -> None:
    namespace = run_cells("5_sonic/5.1_jerk.py", "--timesteps", "200", *SHORT_GAMES, "--eval-replays", "1",
                          "--breakout-replays", "0", "--no-gif", "--logdir", str(logdir))
    assert namespace["env"].unwrapped.gamename == "Airstriker-Genesis-v0"
    assert namespace["agent"].steps_done >= 200 and len(namespace["scores"]) == 1
    assert namespace["breakout"] is None and namespace["gif_path"] is None
    assert (namespace["run"].dir / "summary.json").is_file()


@pytest.mark.parametrize(("script", "flags"), [
    ("5_sonic/5.2_ppo_sonic.py", ["--n-steps", "32", "--batch-size", "32", "--n-epochs", "1"]),
    ("5_sonic/5.3_dqn_sonic.py", ["--buffer-size", "200", "--learning-starts", "32", "--target-update", "16"]),
])
def test_training_scripts_cell_by_cell(logdir: Path, script: str, flags: list[str]) -> None:
    namespace = run_cells(script, "--timesteps", "64", "--n-envs", "1", *flags, *SHORT_GAMES, "--eval-freq", "32",
                          "--eval-episodes", "1", "--gif-max-steps", "10", "--logdir", str(logdir))
    assert namespace["env"].num_envs == 1 and namespace["env"].observation_space.shape == (4, 84, 84)
    assert namespace["model"].num_timesteps == 64
    assert [step for step, _ in namespace["evaluator"].history] == [32, 64]
    assert len(namespace["scores"]) == 1 and Path(namespace["gif_path"]).is_file()
    assert (namespace["run"].dir / "summary.json").is_file()
