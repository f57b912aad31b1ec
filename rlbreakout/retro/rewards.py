"""Reward wrappers and scales for retro games: pay only new progress, and keep rewards small.

Sonic's reward (in the Retro Contest scenario) is horizontal progress, in the hundreds
over a level, plus a level-end bonus. Two changes of the OpenAI retro-baselines make it
trainable: :class:`AllowBacktracking` pays only new maximum progress, and
:class:`RewardScaler` shrinks the numbers (:class:`LinearScale`, or a
:class:`PiecewiseScale` that also tames the rare huge bonus). Both sit above the
``Monitor`` in :func:`rlbreakout.retro.envs.make_retro_gym_env`, so scores stay raw.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym

from rlbreakout.errors import ConfigError

#: The retro-baselines RewardScaler factor for PPO.
BASELINE_REWARD_SCALE = 0.01


class AllowBacktracking(gym.Wrapper):
    """Reward only progress beyond the best so far: ``max(0, cumulative - best_cumulative)``.

    Sonic's reward is horizontal progress, so going left to take a run-up is punished.
    With this wrapper, backing up costs nothing and gaining the lost ground back pays
    nothing; only new ground pays (retro-baselines ``AllowBacktracking``).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._cumulative = 0.0
        self._best = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._cumulative = 0.0
        self._best = 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._cumulative += float(reward)
        new_ground = max(0.0, self._cumulative - self._best)
        self._best = max(self._best, self._cumulative)
        return obs, new_ground, terminated, truncated, info


@dataclass(frozen=True)
class LinearScale:
    """``reward * factor`` (the baselines' RewardScaler uses 0.01)."""

    factor: float

    def __call__(self, reward: float) -> float:
        return reward * self.factor

    def __repr__(self) -> str:
        return f"linear({self.factor:g})"


@dataclass(frozen=True)
class PiecewiseScale:
    """A continuous, sign-keeping scale whose slope drops above each breakpoint.

    ``slopes[0]`` applies to ``|reward|`` up to ``breakpoints[0]``, ``slopes[1]`` to the part
    between ``breakpoints[0]`` and ``breakpoints[1]``, and so on. Everyday rewards keep their
    resolution while rare huge ones (a level-end bonus) cannot swamp the value function.
    """

    breakpoints: tuple[float, ...]
    slopes: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.slopes) != len(self.breakpoints) + 1:
            raise ConfigError(f"a piecewise scale needs one slope more than breakpoints, got "
                              f"{len(self.slopes)} slopes and {len(self.breakpoints)} breakpoints.")
        if any(b <= a for a, b in zip((0.0, *self.breakpoints), self.breakpoints)):
            raise ConfigError(f"breakpoints must be positive and increasing, got {self.breakpoints}.")

    def __call__(self, reward: float) -> float:
        magnitude, scaled, lower = abs(reward), 0.0, 0.0
        for upper, slope in zip((*self.breakpoints, math.inf), self.slopes):
            scaled += slope * (min(magnitude, upper) - lower)
            if magnitude <= upper:
                break
            lower = upper
        return math.copysign(scaled, reward)

    def __repr__(self) -> str:
        return f"piecewise({list(self.breakpoints)}, {list(self.slopes)})"


RewardScale = Callable[[float], float]
#: ``--reward-scale piecewise``: 0.01 per point up to 100 points, 0.001 per point beyond, so a
#: 1,000-point level-end bonus is worth 1.9 instead of 10 while everyday progress keeps the 0.01.
PIECEWISE_SCALE = PiecewiseScale(breakpoints=(100.0,), slopes=(0.01, 0.001))
REWARD_SCALE_CHOICES_HINT = "none, piecewise, or a number such as 0.01"


def parse_reward_scale(text: str) -> RewardScale | None:
    """``"none"`` -> None, ``"piecewise"`` -> :data:`PIECEWISE_SCALE`, ``"0.01"`` -> ``LinearScale(0.01)``."""
    if text == "none":
        return None
    if text == "piecewise":
        return PIECEWISE_SCALE
    try:
        factor = float(text)
    except ValueError:
        raise ConfigError(f"--reward-scale: unknown reward scale {text!r}; use {REWARD_SCALE_CHOICES_HINT}.") from None
    if not factor > 0:
        raise ConfigError(f"a reward scale factor must be > 0, got {text}; use 'none' to switch scaling off.")
    return LinearScale(factor)


class RewardScaler(gym.RewardWrapper):
    """Apply a reward scale (a callable such as :class:`LinearScale` or :class:`PiecewiseScale`)."""

    def __init__(self, env: gym.Env, scale: RewardScale) -> None:
        super().__init__(env)
        self.scale = scale

    def reward(self, reward: SupportsFloat) -> float:
        return float(self.scale(float(reward)))

