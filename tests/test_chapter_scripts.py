"""Chapters 0, 1, 2 and 3.3 (the SB3 scripts) run as a learner runs them, with tiny budgets:
whole files from a terminal, and cell by cell in IPython as Spyder runs them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecEnvWrapper

from cells import run_cells
from conftest import TINY_PPO_FLAGS, event_files, run_script, summary_of
from rlbreakout.runs import REQUIRED_SUMMARY_KEYS

#: The chapter scripts whose lesson is SB3's PPO call, written out in the script.
SB3_LESSON_SCRIPTS = ["1_gym/1.3_train.py", "2_baselines/2.1_envs.py", "2_baselines/2.2_callbacks.py",
                      "2_baselines/2.3_copying_hp_zoo.py"]
#: The scripts that evaluate every --eval-freq steps and write summary.json's eval_history.
PERIODIC_EVAL_SCRIPTS = {"2_baselines/2.2_callbacks.py", "2_baselines/2.3_copying_hp_zoo.py",
                         "3_obswrapper/3.3_aimbot_training.py"}


def assert_common_outputs(summary_path: Path, summary: dict, *, gif_key: str | None = "gif_path") -> None:
    for key in REQUIRED_SUMMARY_KEYS:
        assert key in summary, f"summary.json lacks {key}"
    run_dir = Path(summary["run_dir"])
    assert summary_path.parent == run_dir
    assert (run_dir / "config.json").is_file() and (run_dir / "command.txt").is_file()
    if gif_key:
        gif = Path(summary[gif_key])
        assert gif.is_file() and gif.stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "script",
    ["1_gym/1.3_train.py", "2_baselines/2.1_envs.py", "2_baselines/2.2_callbacks.py", "2_baselines/2.3_copying_hp_zoo.py",
     "3_obswrapper/3.3_aimbot_training.py"],
)
def test_sb3_training_scripts(logdir: Path, script: str) -> None:
    result = run_script(script, *TINY_PPO_FLAGS, "--eval-freq", "32", "--eval-episodes", "3", "--logdir", str(logdir))
    path, summary = summary_of(result)
    assert_common_outputs(path, summary)
    assert summary["timesteps"] == 64 and summary["steps_per_second"] > 0
    assert Path(summary["model_path"]).is_file()
    scores = summary["scores"]
    assert summary["n_games"] == len(scores) == 3
    assert summary["mean_reward"] == pytest.approx(np.mean(scores))
    assert summary["median_reward"] == pytest.approx(np.median(scores))
    assert event_files(Path(summary["run_dir"]))
    assert "steps/s, last games:" in result.stdout  # no terminal here: progress lines instead of a bar
    if script in PERIODIC_EVAL_SCRIPTS:
        assert [entry["step"] for entry in summary["eval_history"]] == [32, 64]
    else:  # 1.3 and 2.1 evaluate once, at the end
        assert "eval_history" not in summary


@pytest.mark.slow
@pytest.mark.parametrize("script", SB3_LESSON_SCRIPTS)
def test_sb3_scripts_run_cell_by_cell_and_leave_env_and_model(logdir: Path, script: str) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnv

    namespace = run_cells(script, *TINY_PPO_FLAGS, "--eval-freq", "32", "--logdir", str(logdir))
    assert isinstance(namespace["env"], VecEnv)
    assert isinstance(namespace["model"], PPO) and namespace["model"].num_timesteps == 64
    assert len(namespace["scores"]) == 1


class GameWatch(VecEnvWrapper):
    """Passes every step through, counting each env's lost lives (EpisodicLife's done) per game."""

    def __init__(self, venv: Any) -> None:
        super().__init__(venv)
        self.lives_lost = [0] * venv.num_envs
        self.games: list[tuple[float, int]] = []  # (Monitor score, lives lost) of each finished game

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self) -> tuple:
        observations, rewards, dones, infos = self.venv.step_wait()
        for i, (done, info) in enumerate(zip(dones, infos)):
            self.lives_lost[i] += int(done)
            if "episode" in info:
                self.games.append((float(info["episode"]["r"]), self.lives_lost[i]))
                self.lives_lost[i] = 0
        return observations, rewards, dones, infos


@pytest.mark.slow
@pytest.mark.parametrize("script", ["1_gym/1.3_train.py", "2_baselines/2.3_copying_hp_zoo.py"])
def test_every_evaluation_score_is_a_whole_game_with_sampled_actions(logdir: Path, script: str) -> None:
    """The Evaluate cell as it runs: the model asked for sampled actions, and each score ended with the 5th life."""
    greedy: list[bool] = []
    watch: dict[str, GameWatch] = {}

    def before(cell: Any, namespace: dict[str, Any]) -> None:
        if not cell.title.startswith("Evaluate"):
            return
        model = namespace["model"]
        predict = model.predict

        def watched_predict(*args: Any, deterministic: bool = False, **kwargs: Any) -> Any:
            greedy.append(deterministic)
            return predict(*args, deterministic=deterministic, **kwargs)

        model.predict = watched_predict
        watch["env"] = namespace["eval_env"] = GameWatch(namespace["eval_env"])

    namespace = run_cells(script, *TINY_PPO_FLAGS, "--eval-episodes", "2", "--logdir", str(logdir), before_cell=before)
    assert greedy and not any(greedy), "evaluation actions are sampled"
    scores = namespace["scores"]
    assert len(scores) == 2
    games = watch["env"].games
    assert all(lives == 5 for _, lives in games), f"each game ends after its 5th lost life: {games}"
    # each score is one of those games' Monitor score (a game past an env's quota is played but not counted)
    assert not Counter(scores) - Counter(score for score, _ in games)


@pytest.mark.parametrize("script", SB3_LESSON_SCRIPTS)
def test_sb3_scripts_show_the_ppo_calls(script: str) -> None:
    text = (Path(__file__).resolve().parents[1] / script).read_text()
    assert "PPO(" in text and "model.learn(" in text and "evaluate_policy(" in text
    assert "def main(" not in text


@pytest.mark.slow
def test_aimbot_gif_view_screen_or_agent(logdir: Path) -> None:
    screen_width = 160
    trained = run_script("3_obswrapper/3.3_aimbot_training.py", *TINY_PPO_FLAGS, "--gif-view", "screen",
                         "--gif-max-steps", "20", "--logdir", str(logdir))
    _, summary = summary_of(trained)
    assert imageio.mimread(summary["gif_path"])[0].shape[1] == screen_width  # the game alone
    replay = run_script("3_obswrapper/3.3_aimbot_training.py", "--load", summary["model_path"], "--eval-episodes", "1",
                        "--gif-max-steps", "20", "--logdir", str(logdir))
    _, replayed = summary_of(replay)
    assert imageio.mimread(replayed["gif_path"])[0].shape[1] > screen_width  # default: the agent's view beside it


@pytest.mark.slow
def test_subproc_workers_do_not_rerun_the_script(logdir: Path) -> None:
    # SubprocVecEnv's workers start by forkserver here (spawn elsewhere): a worker that re-ran
    # the module-level cells would make a run folder of its own
    result = run_script("2_baselines/2.1_envs.py", *TINY_PPO_FLAGS, "--vec-env", "subproc", "--compare-vec-envs",
                        "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert set(summary["vec_env_steps_per_second"]) == {"DummyVecEnv", "SubprocVecEnv"}
    assert len(list((logdir / "2.1_envs").iterdir())) == 1
    assert summary["vec_env"] == "subproc" and summary["timesteps"] == 64


def test_unknown_env_is_one_line_and_exit_2(logdir: Path) -> None:
    result = run_script("2_baselines/2.1_envs.py", "--env", "Breakout-v9", "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "Breakout-v9" in result.stderr and "Traceback" not in result.stderr


def test_corrupt_model_file_is_a_clear_error(logdir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model.zip"
    bad.write_bytes(b"not a zip")
    result = run_script("2_baselines/2.3_copying_hp_zoo.py", *TINY_PPO_FLAGS, "--load", str(bad),
                        "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2
    assert "--load: cannot load model" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and not logdir.exists(), "a model that does not load leaves no run folder"


@pytest.mark.slow
def test_0_3_demo_trains_replays_and_keeps_policy_weights(logdir: Path) -> None:
    result = run_script("0_setup/0.3_demo.py", *TINY_PPO_FLAGS, "--gif-max-steps", "30", "--logdir", str(logdir))
    path, summary = summary_of(result)
    assert_common_outputs(path, summary)
    assert Path(summary["policy_path"]).is_file()
    assert "TensorBoard logs" in result.stdout
    # models/ ships a pretrained policy, so the demo always replays it
    assert Path(summary["pretrained_gif"]).stat().st_size > 0 and len(summary["pretrained_scores"]) == 1
    # then the aimbot agent of models/, its view beside the screen: a wider frame than the screen alone
    import imageio.v3 as iio

    assert summary["aimbot_policy"].endswith("ppo_aimbot_policy.pt") and len(summary["aimbot_scores"]) == 1
    screen_only = iio.imread(summary["pretrained_gif"], index=0)
    with_view = iio.imread(summary["aimbot_gif"], index=0)
    assert with_view.shape[0] == screen_only.shape[0] and with_view.shape[1] > screen_only.shape[1]


def test_load_replays_policy_weights_without_training(logdir: Path, tmp_path: Path) -> None:
    import torch
    from stable_baselines3 import PPO

    from rlbreakout.envs import make_env

    policy_file = tmp_path / "policy.pt"
    PPO("CnnPolicy", make_env("BreakoutNoFrameskip-v4", 1), n_steps=32, batch_size=32, device="cpu").policy.save(str(policy_file))
    result = run_script("2_baselines/2.3_copying_hp_zoo.py", *TINY_PPO_FLAGS, "--load", str(policy_file),
                        "--logdir", str(logdir))
    path, summary = summary_of(result)
    assert summary["timesteps"] == 0 and summary["loaded_model"] == str(policy_file)
    assert summary["n_games"] == 1 and Path(summary["gif_path"]).is_file()
    assert torch.load(policy_file, weights_only=False)  # a plain torch file, small enough for models/
