"""Small fakes with known answers: envs and models for callback and evaluation tests, Breakout screens for the aimbot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from rlbreakout.aimbot import geometry as G
from rlbreakout.env_ids import register_ale
from rlbreakout.errors import ConfigError

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
        #: the ``deterministic`` flag of every predict call, so tests see greedy versus sampled play
        self.deterministic_calls: list[bool] = []

    def get_env(self) -> None:
        return None

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, None]:
        self.deterministic_calls.append(bool(deterministic))
        return np.zeros(len(observation), dtype=np.int64), None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(f"weights at {self.num_timesteps}")
        self.saved.append((self.num_timesteps, Path(path)))


# %% Breakout screens whose right answer is known to the pixel (aimbot and scripted-player tests)

#: Where :func:`synthetic_frame` puts the paddle unless told otherwise.
DEFAULT_PADDLE_LEFT = 72


def synthetic_frame(
    ball: tuple[float, float] | None = None,
    paddle_left: int | None = DEFAULT_PADDLE_LEFT,
    paddle_width: int = G.PADDLE_START_WIDTH,
) -> np.ndarray:
    """A Breakout screen with walls, no bricks, and a ball and paddle at known places.

    Real frames give a known answer only after a long search; this layout follows the
    constants of :mod:`rlbreakout.aimbot.geometry`, so it is also a picture of what each means.

    :param ball: the ball's centre (row, col), half-integers as ``detect_ball`` reports
        (a 2x4 sprite); walls hide it as on the real screen. None: no ball
    :param paddle_left: first paddle column; None: no paddle
    """
    frame = np.zeros((G.SCREEN_HEIGHT, G.SCREEN_WIDTH, G.SCREEN_CHANNELS), dtype=np.uint8)
    frame[G.TOP_WALL_ROWS[0]:G.TOP_WALL_ROWS[1] + 1] = G.WALL_COLOUR
    side_rows = slice(G.TOP_WALL_ROWS[1] + 1, G.PADDLE_ROWS[0])
    frame[side_rows, G.LEFT_WALL_COLS[0]:G.LEFT_WALL_COLS[1] + 1] = G.WALL_COLOUR
    frame[side_rows, G.RIGHT_WALL_COLS[0]:G.RIGHT_WALL_COLS[1] + 1] = G.WALL_COLOUR
    frame[G.CORNER_ROWS[0]:G.CORNER_ROWS[1], G.RIGHT_WALL_COLS[0]:] = G.BALL_COLOUR
    if paddle_left is not None:
        frame[G.PADDLE_ROWS[0]:G.PADDLE_ROWS[1] + 1, paddle_left:paddle_left + paddle_width] = G.BALL_COLOUR
    if ball is not None:
        top, left = ball[0] - G.BALL_CENTRE_ROW_OFFSET, ball[1] - G.BALL_CENTRE_COL_OFFSET
        if top != int(top) or left != int(left):
            raise ConfigError(f"ball centre {ball} must sit on a 2x4 sprite: row = n + 1.5, col = m + 0.5.")
        rows = slice(max(int(top), G.PLAYFIELD_ROWS[0]), max(int(top) + G.BALL_HEIGHT, G.PLAYFIELD_ROWS[0]))
        cols = slice(max(int(left), G.PLAYFIELD_COLS[0]), min(int(left) + G.BALL_WIDTH, G.PLAYFIELD_COLS[1] + 1))
        frame[rows, cols] = G.BALL_COLOUR
    return frame


def ball_frame(row: float, col: float, paddle_left: int = DEFAULT_PADDLE_LEFT) -> np.ndarray:
    """A synthetic frame with the ball centred at (row, col) and a 16-px paddle."""
    return synthetic_frame((row, col), paddle_left)


def real_reset_frame(env_id: str = "BreakoutNoFrameskip-v4", seed: int = 0) -> np.ndarray:
    """The first frame of a real ALE Breakout game (to check the geometry constants on)."""
    register_ale()
    env = gym.make(env_id)
    frame, _ = env.reset(seed=seed)
    env.close()
    return frame


def bounce_path(row: float, col: float, v_row: float, v_col: float, steps: int) -> list[tuple[float, float]]:
    """Reference path of a ball centre bouncing off Breakout's side walls (by repeated reflection)."""
    path = [(row, col)]
    for _ in range(steps):
        row, col = row + v_row, col + v_col
        while not G.LEFT_WALL <= col <= G.RIGHT_WALL:
            col = 2 * G.LEFT_WALL - col if col < G.LEFT_WALL else 2 * G.RIGHT_WALL - col
            v_col = -v_col
        path.append((row, col))
    return path


class ScriptedFrames(gym.Env):
    """A fake env replaying given frames per episode (to test reset behaviour exactly)."""

    observation_space = gym.spaces.Box(0, 255, (G.SCREEN_HEIGHT, G.SCREEN_WIDTH, 3), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def __init__(self, episodes: list[list[np.ndarray]]) -> None:
        self.episodes, self.episode, self.t = episodes, -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self.episodes[self.episode][0], {}

    def step(self, action):
        self.t += 1
        frames = self.episodes[self.episode]
        return frames[self.t], 0.0, self.t == len(frames) - 1, False, {}
