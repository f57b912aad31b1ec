"""The training step, part by part: timers around SB3's own calls, restored afterwards."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
import torch
from stable_baselines3 import PPO

from rlbreakout.envs import make_env
from rlbreakout.speed.step_breakdown import PARTS, TrainCall, TrainingParts, timed_training_parts

FORWARD_SECONDS, OPTIMISER_SECONDS, REST_SECONDS = 0.02, 0.01, 0.005


class SleepyModel:
    """An SB3-shaped model whose train() makes two minibatches of known durations."""

    def __init__(self) -> None:
        self.device = "cpu"
        self.weight = torch.ones(1, requires_grad=True)
        self.policy = SimpleNamespace(evaluate_actions=self._forward, optimizer=SimpleNamespace(step=self._step))

    def _forward(self) -> torch.Tensor:
        time.sleep(FORWARD_SECONDS)
        return self.weight * 2

    def _step(self) -> None:
        time.sleep(OPTIMISER_SECONDS)

    def train(self) -> None:
        for _ in range(2):
            self.policy.evaluate_actions().sum().backward()
            torch.nn.utils.clip_grad_norm_([self.weight], 1.0)
            self.policy.optimizer.step()
            time.sleep(REST_SECONDS)


def test_known_durations_land_in_their_parts() -> None:
    model = SleepyModel()
    model.policy.evaluate_actions()  # outside train(): a rollout's forward pass, not counted
    with timed_training_parts(model) as parts:
        model.train()
        model.train()
    assert [call.minibatches for call in parts.calls] == [2, 2]
    ms = parts.per_minibatch_ms()  # the second call only: the first holds first-call costs
    assert ms["forward"] >= 1000 * FORWARD_SECONDS and ms["optimiser"] >= 1000 * OPTIMISER_SECONDS
    assert ms["rest"] >= 1000 * REST_SECONDS and ms["backward"] > 0
    assert sum(ms[part] for part in PARTS) == pytest.approx(ms["total"])
    assert "train" not in vars(model)  # the wrappers are gone


def test_steady_calls_drop_the_first_unless_it_is_alone() -> None:
    first, second = TrainCall(total=9.0, minibatches=1), TrainCall(total=1.0, minibatches=1)
    assert TrainingParts([first]).steady() == [first] and TrainingParts([first, second]).steady() == [second]
    assert TrainingParts([]).per_minibatch_ms() == {}


def test_a_real_ppo_training_step_is_split_and_everything_is_restored() -> None:
    backward, clip = torch.Tensor.backward, torch.nn.utils.clip_grad_norm_
    venv = make_env("BreakoutNoFrameskip-v4", 2, seed=0)
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=16, n_epochs=2, device="cpu", seed=0)
    optimizer = model.policy.optimizer
    with timed_training_parts(model) as parts:
        model.learn(64)
    venv.close()
    # 64 steps of 2 envs x 16 = 2 rollouts; 2 epochs of 32 samples in minibatches of 16 each
    assert [call.minibatches for call in parts.calls] == [4, 4]
    ms = parts.per_minibatch_ms()
    assert all(ms[part] > 0 for part in ("forward", "backward", "optimiser", "total"))
    assert sum(ms[part] for part in PARTS) == pytest.approx(ms["total"])
    assert torch.Tensor.backward is backward and torch.nn.utils.clip_grad_norm_ is clip
    assert "train" not in vars(model) and "step" not in vars(optimizer)
    assert "evaluate_actions" not in vars(model.policy)
