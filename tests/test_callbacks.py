"""MultiEnvEvalCallback, GameScoreCallback and checkpoints: fake envs with known answers, real games from make_env."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fakes import FakeModel, scripted_vec_env
from rlbreakout.callbacks import (
    BEST_MODEL_FILE,
    LATEST_CHECKPOINT,
    MultiEnvEvalCallback,
    StepCheckpointCallback,
    ctrl_c_held,
)
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError
from stable_baselines3.common.evaluation import evaluate_policy


def _drive(callback: MultiEnvEvalCallback, model: FakeModel, until: int) -> None:
    """Advance the fake model n_envs steps per call, as SB3 does, calling the callback each time."""
    while model.num_timesteps < until:
        model.num_timesteps += model.n_envs
        callback.on_step()


def test_statistics_on_known_returns_spread_evenly_over_envs(tmp_path: Path) -> None:
    # env 0 plays quick games of 10, 20, 30; env 1 a 1-point game, then a long 1000-point game.
    # Taking the first 4 games to finish would skip the long one; spreading 2 per env keeps it.
    venv = scripted_vec_env([[10, 20, 30], [1, 1000]], [[2, 2, 2], [3, 50]])
    model = FakeModel()
    callback = MultiEnvEvalCallback({"v4NoFS": venv}, eval_freq=100, n_eval_episodes=4, best_model_save_path=tmp_path)
    callback.init_callback(model)
    _drive(callback, model, 100)
    stats = callback.last_results["v4NoFS"]
    games = [10, 20, 1, 1000]
    assert stats["mean_reward"] == pytest.approx(np.mean(games))
    assert stats["median_reward"] == pytest.approx(np.median(games))
    assert stats["std_reward"] == pytest.approx(np.std(games))
    assert stats["q25_reward"] == pytest.approx(np.quantile(games, 0.25))
    assert stats["mean_ep_length"] == pytest.approx(np.mean([2, 2, 3, 50]))
    logged = model.writer.dumps[-1][1]
    for key in ("mean_reward", "median_reward", "std_reward", "q25_reward", "mean_ep_length"):
        assert f"eval/v4NoFS/{key}" in logged


def test_eval_freq_counts_env_steps_not_calls(tmp_path: Path) -> None:
    venv = scripted_vec_env([[1]], [[1]])
    model = FakeModel(n_envs=8)
    callback = MultiEnvEvalCallback({"eval": venv}, eval_freq=100, n_eval_episodes=1, verbose=0)
    callback.init_callback(model)
    _drive(callback, model, 1000)
    assert [step for step, _ in callback.history] == [104, 200, 304, 400, 504, 600, 704, 800, 904, 1000]


def test_several_named_envs_and_best_model_for_chosen_name(tmp_path: Path) -> None:
    # Each evaluation resets (one game) and the auto-reset after its end skips one more,
    # so v5 plays games 0, 2, 4, ...: scores 1, 9, 1, 9, ...
    envs = {"v4": scripted_vec_env([[5]], [[1]]), "v5": scripted_vec_env([[1, 0, 9, 0]], [[1, 1, 1, 1]])}
    model = FakeModel()
    callback = MultiEnvEvalCallback(envs, eval_freq=8, n_eval_episodes=1, best_model_env="v5",
                                    best_model_save_path=tmp_path, verbose=0)
    callback.init_callback(model)
    _drive(callback, model, 32)
    v5_scores = [results["v5"]["mean_reward"] for _, results in callback.history]
    assert set(v5_scores) == {1.0, 9.0}
    first_best_step = callback.history[v5_scores.index(9.0)][0]
    assert model.saved[-1][0] == first_best_step
    assert (tmp_path / BEST_MODEL_FILE).read_text() == f"weights at {first_best_step}"
    assert callback.best_score == 9.0


def test_eval_freq_zero_never_evaluates() -> None:
    model = FakeModel()
    callback = MultiEnvEvalCallback({"eval": scripted_vec_env([[1]], [[1]])}, eval_freq=0, n_eval_episodes=1)
    callback.init_callback(model)
    _drive(callback, model, 500)
    assert callback.history == []


def test_bad_arguments() -> None:
    venv = scripted_vec_env([[1]], [[1]])
    with pytest.raises(ConfigError, match="best_model_env"):
        MultiEnvEvalCallback({"eval": venv}, eval_freq=1, best_model_env="v5")
    with pytest.raises(ConfigError, match="at least one"):
        MultiEnvEvalCallback({}, eval_freq=1)


class RandomModel(FakeModel):
    """A FakeModel that presses random buttons (its own generator), so real games score and end."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(n_envs=1)
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, None]:
        super().predict(observation, state, episode_start, deterministic)
        return self.rng.integers(0, 4, size=len(observation)), None


def _play_one_game(venv: Any, model: RandomModel) -> tuple[list[float], dict]:
    """Step ``venv`` with ``model`` until the Monitor reports a game; the clipped reward summed per life."""
    observations = venv.reset()
    life_rewards, life_reward = [], 0.0
    for _ in range(10_000):
        actions, _ = model.predict(observations)
        observations, reward, done, infos = venv.step(actions)
        life_reward += float(reward[0])
        if done[0]:
            life_rewards.append(life_reward)
            life_reward = 0.0
        if "episode" in infos[0]:
            return life_rewards, infos[0]["episode"]
    raise AssertionError("no game ended in 10,000 steps")


def test_whole_game_score_versus_per_life_clipped_reward() -> None:
    # The factory's own order (make_env): Monitor (whole game, raw points) under EpisodicLife and ClipReward.
    venv = make_env("BreakoutNoFrameskip-v4", 1, seed=0, frame_stack=1)
    life_rewards, game = _play_one_game(venv, RandomModel(seed=5))
    venv.close()
    assert len(life_rewards) == 5  # what PPO sees: 5 "episodes", one per life, of clipped +1 bricks
    assert all(reward == int(reward) for reward in life_rewards)
    assert game["r"] >= sum(life_rewards) > 0  # what a player sees: one game of raw points (1, 4 or 7 a brick)


def test_sb3_evaluate_policy_counts_whole_games_under_the_life_wrapper() -> None:
    # What the eval callback and every chapter script rely on: SB3's evaluate_policy reads the
    # Monitor under EpisodicLife, so it returns whole-game scores, not per-life clipped ones.
    venv = make_env("BreakoutNoFrameskip-v4", 1, seed=0, frame_stack=1)
    life_rewards, game = _play_one_game(venv, RandomModel(seed=5))
    scores, lengths = evaluate_policy(RandomModel(seed=5), make_env("BreakoutNoFrameskip-v4", 1, seed=0, frame_stack=1),
                                      n_eval_episodes=1, return_episode_rewards=True)
    venv.close()
    assert scores == [game["r"]] and lengths == [game["l"]]  # the same game, to the point and the frame
    assert len(life_rewards) == 5


def test_evaluation_samples_actions_unless_asked_for_greedy_ones() -> None:
    # Breakout agents often stall when greedy, so every evaluation samples from the policy by default.
    for kwargs, expected in (({}, {False}), ({"deterministic": True}, {True})):
        model = FakeModel(n_envs=1)
        callback = MultiEnvEvalCallback({"eval": scripted_vec_env([[3]], [[4]])}, eval_freq=1, n_eval_episodes=2,
                                        verbose=0, **kwargs)
        callback.init_callback(model)
        _drive(callback, model, 1)
        assert model.deterministic_calls and set(model.deterministic_calls) == expected


def test_ctrl_c_inside_a_held_block_is_raised_when_it_ends() -> None:
    # Python's own Ctrl-C handler, as in a terminal (a suite started in the background ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    finished = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with ctrl_c_held():
                os.kill(os.getpid(), signal.SIGINT)  # delivered now, held until the block ends
                finished = True
        assert finished and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_held_block_without_ctrl_c_raises_nothing_and_an_ignored_one_stays_ignored() -> None:
    with ctrl_c_held():
        pass
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_checkpoints_come_every_save_freq_env_steps_of_a_real_training(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from stable_baselines3 import PPO

    # 2 envs: the step count goes 2, 4, 6, ...; a save lands on each multiple of 40 (not of 40 calls)
    venv = make_env("BreakoutNoFrameskip-v4", 2, seed=0, frame_stack=1)
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    capsys.readouterr()
    model.learn(128, callback=StepCheckpointCallback(40, tmp_path, verbose=1))
    venv.close()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("checkpoint at")]
    assert lines == [f"checkpoint at {step} steps: {tmp_path / LATEST_CHECKPOINT}" for step in (40, 80, 120)]
    assert PPO.load(tmp_path / LATEST_CHECKPOINT, device="cpu").num_timesteps == 120
