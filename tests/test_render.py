"""Gif replays: tiling, size cap, and recording real games with any policy."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from rlbreakout.errors import ConfigError
from rlbreakout.render import record_games, record_gif, side_by_side, tile_grid, write_gif

SCREEN = (210, 160, 3)


def random_policy(observations: np.ndarray) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 4, size=len(observations))


def test_tile_grid_places_frames_row_major() -> None:
    frames = [np.full((2, 3, 3), value, np.uint8) for value in (1, 2, 3)]
    grid = tile_grid(frames, 2, gap=1)
    assert grid.shape == (5, 7, 3)
    assert grid[0, 0, 0] == 1 and grid[0, 4, 0] == 2 and grid[3, 0, 0] == 3
    assert grid[3, 4, 0] == 0  # the missing 4th tile stays black
    with pytest.raises(ConfigError):
        tile_grid(frames, 1)


def test_side_by_side_scales_a_grey_observation_to_screen_height() -> None:
    screen = np.zeros(SCREEN, np.uint8)
    observation = np.full((84, 84, 1), 255, np.uint8)
    view = side_by_side(screen, observation, gap=2)
    assert view.shape == (210, 160 + 2 + 210, 3)
    assert view[:, -1].min() == 255


def test_write_gif_drops_frames_until_under_the_size_cap(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(40)]
    path = write_gif(frames, tmp_path / "noise.gif", max_bytes=60_000)
    assert path.stat().st_size <= 60_000
    assert 2 <= len(imageio.mimread(path)) < 40
    with pytest.raises(ConfigError):
        write_gif([], tmp_path / "empty.gif")


def test_record_games_plays_whole_games_on_the_real_screen() -> None:
    recording = record_games(random_policy, "BreakoutNoFrameskip-v4", n_games=2, seed=0, max_steps=3000, frame_every=5)
    assert all(recording.finished)
    assert len(recording.scores) == 2 and all(score >= 0 for score in recording.scores)
    assert recording.frames[0][0].shape == SCREEN
    assert all(length > 0 for length in recording.lengths)


def test_record_gif_grid_of_games(tmp_path: Path) -> None:
    path, recording = record_gif(random_policy, tmp_path / "grid.gif", "ALE/Breakout-v5", grid=2, max_steps=30)
    frame = imageio.mimread(path)[0]
    assert frame.shape[:2] == (2 * 210 + 2, 2 * 160 + 2)
    assert len(recording.frames) == 4 and not any(recording.finished)
