"""Small fake envs and models with known answers, for callback and evaluation tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

OBS_SHAPE = (1, 4, 4)


class ScriptedGameEnv(gym.Env):
    """Plays games with given returns: game k lasts ``lengths[k]`` steps and pays ``returns[k]`` at its end."""

    observation_space = gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, returns: list[float], lengths: list[int]) -> None:
        self.returns, self.lengths = returns, lengths
        self.game, self.t = -1, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.game, self.t = self.game + 1, 0
        return np.zeros(OBS_SHAPE, np.uint8), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        k = self.game % len(self.returns)
        over = self.t >= self.lengths[k]
        return np.zeros(OBS_SHAPE, np.uint8), float(self.returns[k]) if over else 0.0, over, False, {}


class _FakeAle:
    def __init__(self, env: "LivesGameEnv") -> None:
        self.env = env

    def lives(self) -> int:
        return self.env.lives_left


class LivesGameEnv(gym.Env):
    """A Breakout-like game: ``lives`` lives of ``life_steps`` steps, each step breaks a ``points`` brick."""

    observation_space = gym.spaces.Box(0, 255, OBS_SHAPE, np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, lives: int = 3, life_steps: int = 5, points: float = 4.0) -> None:
        self.lives, self.life_steps, self.points = lives, life_steps, points
        self.ale = _FakeAle(self)
        self.lives_left, self.t = lives, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.lives_left, self.t = self.lives, 0
        return np.zeros(OBS_SHAPE, np.uint8), {"lives": self.lives_left}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        if self.t % self.life_steps == 0:
            self.lives_left -= 1
        return np.zeros(OBS_SHAPE, np.uint8), self.points, self.lives_left == 0, False, {"lives": self.lives_left}


def scripted_vec_env(per_env_returns: list[list[float]], per_env_lengths: list[list[int]]) -> DummyVecEnv:
    return DummyVecEnv([
        (lambda r=r, l=l: Monitor(ScriptedGameEnv(r, l))) for r, l in zip(per_env_returns, per_env_lengths)
    ])


class RecordingWriter(KVWriter):
    """Keeps every dumped key/value dict, so tests can read what a callback logged."""

    def __init__(self) -> None:
        self.dumps: list[tuple[int, dict[str, Any]]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.dumps.append((step, dict(key_values)))

    def close(self) -> None:
        pass


class FakeModel:
    """Just enough of an SB3 algorithm for callbacks: steps, logger, predict and save."""

    def __init__(self, n_envs: int = 8) -> None:
        self.n_envs = n_envs
        self.num_timesteps = 0
        self.writer = RecordingWriter()
        self.logger = Logger(folder=None, output_formats=[self.writer])
        self.saved: list[tuple[int, Path]] = []
        self.weights = np.zeros(3)

    def get_env(self) -> None:
        return None

    def predict(self, observation: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, None]:
        return np.zeros(len(observation), dtype=np.int64), None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(f"weights at {self.num_timesteps}")
        self.saved.append((self.num_timesteps, Path(path)))
