"""Gif replays: watch a policy (an SB3 model or any callable) play whole games.

The frames are the real game screen (``env.render()``), not the 84x84 observation,
so a learner sees what a player sees. ``grid=3`` tiles 9 games as in the original
tutorial's 9-game gifs; ``view="agent"`` puts the agent's own observation beside the
screen (chapter 3).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import imageio.v2 as imageio
import numpy as np

from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError
from rlbreakout.files import atomic_path
from rlbreakout.frames import GRID_GAP, agent_view_frame, side_by_side, tile_grid

#: Gifs committed to the repo must stay under this size (DEVELOPERS.md).
MAX_GIF_BYTES = 2 * 1024 * 1024
DEFAULT_FPS = 30
#: Safety cap on agent steps per recording, so a stalled policy cannot record forever.
DEFAULT_MAX_STEPS = 5_000
VIEW_CHOICES: tuple[str, ...] = ("screen", "agent")
#: Height in pixels of the caption strip above each screen of a comparison gif.
CAPTION_HEIGHT = 14
CAPTION_FONT_SCALE = 0.35
CAPTION_COLOUR = (255, 255, 255)


class _Predictor(Protocol):
    def predict(self, observation: np.ndarray, deterministic: bool = ...) -> tuple[np.ndarray, Any]: ...


Policy = _Predictor | Callable[[np.ndarray], np.ndarray]


def policy_actions(policy: Policy, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
    """Actions for a batch of observations from an SB3 model or a plain callable."""
    if hasattr(policy, "predict"):
        actions, _ = policy.predict(observations, deterministic=deterministic)
        return np.asarray(actions)
    return np.asarray(policy(observations))


def write_gif(
    frames: Sequence[np.ndarray], path: str | os.PathLike[str], fps: int = DEFAULT_FPS, max_bytes: int = MAX_GIF_BYTES
) -> Path:
    """Write frames as a looping gif; drop every other frame until it fits ``max_bytes``.

    Dropping frames (and slowing fps to keep real time) rather than shrinking pixels
    keeps the ball visible, which is what a Breakout replay is for.
    """
    if len(frames) == 0:
        raise ConfigError("no frames to write: the policy played no step.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    chosen, frame_fps = list(frames), float(fps)
    while True:
        with atomic_path(path) as partial:  # a full disk keeps the previous gif and says so in one line
            imageio.mimsave(partial, chosen, format="GIF", duration=1000.0 / frame_fps, loop=0)
        if path.stat().st_size <= max_bytes or len(chosen) <= 2:
            return path
        chosen, frame_fps = chosen[::2], max(frame_fps / 2, 1.0)


@dataclass
class Recording:
    """What :func:`record_games` saw: one frame list and one whole-game score per game."""

    frames: list[list[np.ndarray]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    #: False for a game cut off by ``max_steps`` (its score is the partial score so far)
    finished: list[bool] = field(default_factory=list)

    def grid_frames(self, grid: int) -> list[np.ndarray]:
        """One tiled frame per time step; finished games hold their last frame."""
        longest = max(len(f) for f in self.frames)
        tiles = []
        for t in range(longest):
            tiles.append(tile_grid([f[min(t, len(f) - 1)] for f in self.frames], grid, gap=GRID_GAP))
        return tiles


def record_games(
    policy: Policy,
    env_id: str,
    *,
    n_games: int = 1,
    seed: int = 0,
    wrapper: str = "atari",
    wrapper_kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
    frame_stack: int = 4,
    deterministic: bool = False,
    max_steps: int = DEFAULT_MAX_STEPS,
    frame_every: int = 1,
    view: str = "screen",
) -> Recording:
    """Play ``n_games`` whole games side by side (one env each) and keep their screens.

    :param deterministic: greedy actions; Breakout agents often stall when greedy, so the
        default samples from the policy as they do in training
    :param frame_every: keep one frame in ``frame_every`` (smaller gifs)
    :param view: ``screen`` (the game) or ``agent`` (the game with the agent's last observation beside it)
    """
    if view not in VIEW_CHOICES:
        raise ConfigError(f"unknown view {view!r}; choose one of: {', '.join(VIEW_CHOICES)}.")
    venv = make_env(
        env_id, n_games, seed=seed, frame_stack=frame_stack, wrapper=wrapper,
        wrapper_kwargs=wrapper_kwargs, env_kwargs=env_kwargs,
    )
    recording = Recording(frames=[[] for _ in range(n_games)], scores=[0.0] * n_games,
                          lengths=[0] * n_games, finished=[False] * n_games)
    channels_per_frame = venv.observation_space.shape[0] // frame_stack
    try:
        observations = venv.reset()
        for step in range(max_steps):
            if step % frame_every == 0:
                _keep_frames(venv, observations, recording, channels_per_frame, view)
            actions = policy_actions(policy, observations, deterministic)
            observations, _, _, infos = venv.step(actions)
            for i, info in enumerate(infos):
                if not recording.finished[i] and "episode" in info:
                    recording.finished[i] = True
                    recording.scores[i] = float(info["episode"]["r"])
                    recording.lengths[i] = int(info["episode"]["l"])
            if all(recording.finished):
                break
        for i in range(n_games):
            if not recording.finished[i]:
                partial = venv.get_attr("rewards", [i])[0]
                recording.scores[i], recording.lengths[i] = float(np.sum(partial)), len(partial)
    finally:
        venv.close()
    return recording


def _keep_frames(venv: Any, observations: np.ndarray, recording: Recording, channels: int, view: str) -> None:
    screens = venv.get_images()
    for i, screen in enumerate(screens):
        if recording.finished[i]:
            continue
        if view == "agent":
            last = np.transpose(observations[i][-channels:], (1, 2, 0))
            screen = agent_view_frame(screen, last)
        recording.frames[i].append(np.asarray(screen, dtype=np.uint8))


def record_gif(
    policy: Policy,
    path: str | os.PathLike[str],
    env_id: str,
    *,
    grid: int = 1,
    fps: int = DEFAULT_FPS,
    **record_kwargs: Any,
) -> tuple[Path, Recording]:
    """Record ``grid * grid`` games and write them as one gif; returns its path and the recording."""
    if grid < 1:
        raise ConfigError(f"grid must be >= 1, got {grid}.")
    recording = record_games(policy, env_id, n_games=grid * grid, **record_kwargs)
    frames = recording.grid_frames(grid) if grid > 1 else recording.frames[0]
    return write_gif(frames, path, fps=fps), recording


def copy_picture(path: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """Copy a picture from the run folder to ``destination`` (a folder keeps the file's name); returns the copy.

    Chapter scripts write every picture into their run folder; only ``--save-pictures``
    (or ``--pictures DIR``) copies them on, e.g. into the committed ``pictures/``.
    """
    source, target = Path(path), Path(destination)
    if target.is_dir() or not target.suffix:
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    print(f"wrote {target}", flush=True)
    return target


def caption(frame: np.ndarray, text: str, height: int = CAPTION_HEIGHT) -> np.ndarray:
    """``frame`` with a black strip of ``height`` pixels on top holding ``text`` in white."""
    import cv2

    strip = np.zeros((height, frame.shape[1], 3), dtype=np.uint8)
    baseline = height - 4
    cv2.putText(strip, text, (2, baseline), cv2.FONT_HERSHEY_SIMPLEX, CAPTION_FONT_SCALE, CAPTION_COLOUR, 1, cv2.LINE_AA)
    return np.concatenate([strip, np.asarray(frame, dtype=np.uint8)], axis=0)


def record_comparison_gif(
    policies: Mapping[str, Policy],
    path: str | os.PathLike[str],
    env_id: str,
    *,
    fps: int = DEFAULT_FPS,
    **record_kwargs: Any,
) -> tuple[Path, dict[str, Recording]]:
    """Each policy plays one game of ``env_id`` from the same seed; their screens side by side.

    Chapter 4.1's picture: a model trained on NoFrameskip-v4 and one trained on v5,
    both playing v5. Each screen is captioned with its policy's name and, once its
    game ends, the final score; a finished game holds its last frame.
    """
    if not policies:
        raise ConfigError("no policies to compare.")
    recordings = {name: record_games(policy, env_id, n_games=1, **record_kwargs) for name, policy in policies.items()}
    longest = max(len(r.frames[0]) for r in recordings.values())
    frames = []
    for t in range(longest):
        row = None
        for name, recording in recordings.items():
            game = recording.frames[0]
            over = t >= len(game) - 1
            text = f"{name}: {recording.scores[0]:g}" if over else name
            screen = caption(game[min(t, len(game) - 1)], text)
            row = screen if row is None else side_by_side(row, screen, gap=GRID_GAP)
        frames.append(row)
    return write_gif(frames, path, fps=fps), recordings
