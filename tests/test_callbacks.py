"""MultiEnvEvalCallback, GameScoreCallback and checkpoints on fake envs with known answers."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.atari_wrappers import ClipRewardEnv, EpisodicLifeEnv
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from fakes import FakeModel, LivesGameEnv, scripted_vec_env
from rlbreakout.callbacks import BEST_MODEL_FILE, MultiEnvEvalCallback, ctrl_c_held
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


def _lives_env() -> DummyVecEnv:
    # The factory's order: Monitor (whole game, raw points) under EpisodicLife and ClipReward.
    return DummyVecEnv([lambda: ClipRewardEnv(EpisodicLifeEnv(Monitor(LivesGameEnv(lives=3, life_steps=5, points=4.0))))])


def test_whole_game_score_versus_per_life_clipped_reward() -> None:
    venv = _lives_env()
    venv.reset()
    life_rewards, life_reward, episodes = [], 0.0, []
    for _ in range(13):  # 15 game steps; EpisodicLifeEnv's reset plays 1 no-op after each lost life
        _, reward, done, infos = venv.step(np.array([0]))
        life_reward += float(reward[0])
        if done[0]:
            life_rewards.append(life_reward)
            life_reward = 0.0
        if "episode" in infos[0]:
            episodes.append(infos[0]["episode"]["r"])
    assert life_rewards == [5.0, 4.0, 4.0]  # what PPO sees: 3 "episodes" of clipped +1 bricks
    assert episodes == [60.0]  # what a player sees: one game, 3 lives x 5 bricks x 4 points


def test_sb3_evaluate_policy_counts_whole_games_under_the_life_wrapper() -> None:
    # What the eval callback and every chapter script rely on: SB3's evaluate_policy reads the
    # Monitor under EpisodicLife, so it returns whole-game scores, not per-life clipped ones.
    scores, lengths = evaluate_policy(FakeModel(), _lives_env(), n_eval_episodes=2, return_episode_rewards=True)
    assert scores == [60.0, 60.0] and lengths == [15, 15]  # Monitor counts every game step


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
