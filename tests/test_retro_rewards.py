"""Reward wrappers and scales: scripted progress with known answers, and Airstriker's real score."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlbreakout.errors import ConfigError
from rlbreakout.retro.envs import AIRSTRIKER_COMBOS, DEFAULT_GAME, make_retro_gym_env
from rlbreakout.retro.rewards import PIECEWISE_SCALE, AllowBacktracking, LinearScale, PiecewiseScale, parse_reward_scale


class ScriptedRewardEnv(gym.Env):
    """Pays ``rewards[t]`` at step t: Sonic-like progress that can go backwards."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(1)

    def __init__(self, rewards: list[float]) -> None:
        self.rewards, self.t = rewards, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return np.zeros(1, np.float32), self.rewards[self.t - 1], self.t == len(self.rewards), False, {}


def test_backtracking_pays_only_new_maximum_progress() -> None:
    env = AllowBacktracking(ScriptedRewardEnv([5, -3, 2, 4, -10, 11]))
    for _ in range(2):  # and again after a reset
        env.reset()
        paid = [env.step(0)[1] for _ in range(6)]
        # progress 5, 2, 4, 8, -2, 9: only the new maxima 5, 8 and 9 pay
        assert paid == [5, 0, 0, 3, 0, 1]


@pytest.mark.retro
def test_on_airstriker_each_training_reward_is_the_scaled_score_gain() -> None:
    pytest.importorskip("stable_retro")
    fire, noop = AIRSTRIKER_COMBOS.index(("B",)), AIRSTRIKER_COMBOS.index(())
    # Airstriker's score never drops, so backtracking pays every gain, and the scaler scales it.
    env = make_retro_gym_env(DEFAULT_GAME, warp=False, backtracking=True, reward_scale=LinearScale(0.01))
    try:
        env.reset(seed=0)
        previous, paid = 0, 0.0
        for step in range(600):
            _, reward, terminated, truncated, info = env.step([fire, noop][step % 2])
            assert reward == pytest.approx(0.01 * (info["score"] - previous))
            previous, paid = info["score"], paid + reward
            if terminated or truncated:
                assert info["episode"]["r"] == info["score"]  # the Monitor keeps the raw score
                break
    finally:
        env.close()
    assert paid > 0


def test_reward_scale_values() -> None:
    assert LinearScale(0.01)(250.0) == pytest.approx(2.5)
    assert PIECEWISE_SCALE(50.0) == pytest.approx(0.5)
    assert PIECEWISE_SCALE(100.0) == pytest.approx(1.0)
    assert PIECEWISE_SCALE(1_000.0) == pytest.approx(1.0 + 900 * 0.001)
    assert PIECEWISE_SCALE(-1_000.0) == pytest.approx(-1.9)
    three = PiecewiseScale(breakpoints=(10.0, 20.0), slopes=(1.0, 0.5, 0.0))
    assert [three(r) for r in (5, 10, 15, 20, 99)] == [5, 10, 12.5, 15, 15]
    assert repr(PIECEWISE_SCALE) == "piecewise([100.0], [0.01, 0.001])"


def test_parse_reward_scale() -> None:
    assert parse_reward_scale("none") is None
    assert parse_reward_scale("piecewise") is PIECEWISE_SCALE
    assert parse_reward_scale("0.01") == LinearScale(0.01)
    for bad in ("tiny", "0", "-1"):
        with pytest.raises(ConfigError):
            parse_reward_scale(bad)
    with pytest.raises(ConfigError, match="one slope more"):
        PiecewiseScale(breakpoints=(1.0,), slopes=(1.0,))
