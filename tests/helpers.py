"""Small checks shared by several test files (not part of the package: only tests need them)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv


def is_channel_first_uint8(venv: VecEnv) -> bool:
    """True when the VecEnv's observation space is a uint8 image with channels first."""
    space = venv.observation_space
    return (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[0] < space.shape[1]
    )
