"""FreezeOnCollapseCallback: fake score sequences, real SB3 models, and both eval callbacks as its parent."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from rlbreakout.callbacks import MultiEnvEvalCallback
from rlbreakout.collapse import FreezeOnCollapseCallback
from rlbreakout.errors import ConfigError, RLBreakoutError

#: PPO's rollout length in these tests; the eval callbacks evaluate once per rollout.
ROLLOUT = 8


class ScoreSequenceEnv(gym.Env):
    """One-step games whose scores are ``scores[0], scores[1], ...`` in the order games finish.

    Counting finished games (not resets) makes evaluation ``i`` score ``scores[i]`` whatever
    the eval callback's reset pattern.
    """

    observation_space = gym.spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.finished = scores, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        score = float(self.scores[self.finished % len(self.scores)])
        self.finished += 1
        return np.zeros(2, np.float32), score, True, False, {}


def tiny_ppo() -> PPO:
    env = DummyVecEnv([lambda: ScoreSequenceEnv([1.0])])
    model = PPO("MlpPolicy", env, n_steps=ROLLOUT, batch_size=ROLLOUT, n_epochs=1, seed=0, device="cpu")
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def fill_weights(model: PPO, value: float) -> None:
    with torch.no_grad():
        for parameter in model.policy.parameters():
            parameter.fill_(value)


def weights_are(model: PPO, value: float) -> bool:
    return all(torch.all(p == value) for p in model.policy.parameters())


def feed(callback: FreezeOnCollapseCallback, model: PPO, scores: list[float]) -> list[bool]:
    """Feed scores; before evaluation i the weights are all i, so restored weights name their evaluation."""
    answers = []
    for index, score in enumerate(scores):
        fill_weights(model, float(index))
        answers.append(callback.observe(score))
        if not answers[-1]:
            break
    return answers


def test_stops_at_the_kth_collapsed_evaluation_and_restores_the_best_weights() -> None:
    model = tiny_ppo()
    callback = FreezeOnCollapseCallback(collapse_fraction=0.5, patience=3)
    callback.init_callback(model)
    # best 10 at evaluation 3, threshold 5: 6 is fine, then 4, 4.9, 4 are three collapses in a row
    answers = feed(callback, model, [1, 5, 3, 10, 6, 4, 4.9, 4, 100])
    assert answers == [True] * 7 + [False]
    assert callback.stopped_at_eval == 7
    assert (callback.best_score, callback.best_eval) == (10.0, 3)
    assert weights_are(model, 3.0)


def test_a_recovery_resets_the_count_so_training_goes_on() -> None:
    model = tiny_ppo()
    callback = FreezeOnCollapseCallback(collapse_fraction=0.5, patience=2)
    callback.init_callback(model)
    answers = feed(callback, model, [10, 4, 6, 4, 5, 4])  # never two collapses (< 5) in a row
    assert all(answers) and callback.stopped_at_eval is None
    assert weights_are(model, 5.0)  # nothing restored while training goes on


def test_negative_scores_use_the_distance_below_the_best() -> None:
    model = tiny_ppo()
    callback = FreezeOnCollapseCallback(collapse_fraction=0.5, patience=1)
    callback.init_callback(model)
    assert callback.observe(-10.0) and callback.threshold() == -15.0
    assert callback.observe(-14.0)  # worse, but not by half
    assert not callback.observe(-16.0)


def test_each_new_best_is_saved_and_the_file_holds_the_best_weights(tmp_path: Path) -> None:
    model = tiny_ppo()
    callback = FreezeOnCollapseCallback(collapse_fraction=0.2, patience=1, save_path=tmp_path / "frozen")
    callback.init_callback(model)
    feed(callback, model, [2, 7, 1])
    saved = PPO.load(tmp_path / "frozen.zip", device="cpu")
    assert weights_are(saved, 1.0) and weights_are(model, 1.0)


@pytest.mark.parametrize(("fraction", "patience"), [(0.0, 3), (1.5, 3), (0.5, 0)])
def test_bad_settings_are_one_line_config_errors(fraction: float, patience: int) -> None:
    with pytest.raises(ConfigError):
        FreezeOnCollapseCallback(collapse_fraction=fraction, patience=patience)


def test_without_an_eval_parent_it_says_how_to_attach_it() -> None:
    model = tiny_ppo()
    with pytest.raises(RLBreakoutError, match="callback_after_eval"):
        model.learn(ROLLOUT, callback=FreezeOnCollapseCallback())


class LastWeights(BaseCallback):
    """Keeps a copy of the policy weights at every step (runs before the eval callback)."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: dict | None = None

    def _on_step(self) -> bool:
        self.weights = {k: v.clone() for k, v in self.model.policy.state_dict().items()}
        return True


@pytest.mark.parametrize("parent", ["sb3", "multi_env"])
def test_inside_a_real_training_as_callback_after_eval(tmp_path: Path, parent: str) -> None:
    # evaluation i (every ROLLOUT steps) scores scores[i]: best 10 at evaluation 2, then two collapses
    eval_env = DummyVecEnv([lambda: Monitor(ScoreSequenceEnv([1, 5, 10, 3, 2, 50, 50]))])
    freeze = FreezeOnCollapseCallback(collapse_fraction=0.5, patience=2, save_path=tmp_path / "best")
    if parent == "sb3":
        evaluator = EvalCallback(eval_env, eval_freq=ROLLOUT, n_eval_episodes=1, callback_after_eval=freeze, verbose=0)
    else:
        evaluator = MultiEnvEvalCallback({"eval": eval_env}, eval_freq=ROLLOUT, n_eval_episodes=1,
                                         callback_after_eval=freeze, verbose=0)
    spy = LastWeights()
    model = tiny_ppo()
    model.learn(20 * ROLLOUT, callback=[spy, evaluator])

    assert freeze.scores == [1, 5, 10, 3, 2]
    assert freeze.stopped_at_eval == 4 and model.num_timesteps == 5 * ROLLOUT
    best = PPO.load(tmp_path / "best.zip", device="cpu").policy.state_dict()
    now = model.policy.state_dict()
    assert all(torch.equal(now[k], best[k]) for k in best)  # restored: the weights of evaluation 2
    assert not all(torch.equal(spy.weights[k], best[k]) for k in best)  # training had moved them since
