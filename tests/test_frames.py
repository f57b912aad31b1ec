"""Tests for rlbreakout.frames: tiling a grid, images side by side, the agent's view beside the screen."""

from __future__ import annotations

import numpy as np
import pytest

from fakes import ball_frame
from rlbreakout.aimbot import geometry as G
from rlbreakout.errors import ConfigError
from rlbreakout.frames import agent_view_frame, side_by_side, tile_grid

SCREEN = (G.SCREEN_HEIGHT, G.SCREEN_WIDTH, G.SCREEN_CHANNELS)


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



@pytest.mark.parametrize("shape", [(84, 84, 1), (84, 84), (168, 144, 3)])
def test_agent_view_frame_puts_the_observation_beside_the_screen(shape: tuple[int, ...]) -> None:
    screen = ball_frame(100.5, 60.5)
    observation = np.full(shape, 255, dtype=np.uint8)
    image = agent_view_frame(screen, observation)
    scaled_width = round(shape[1] * G.SCREEN_HEIGHT / shape[0])
    assert image.dtype == np.uint8 and image.shape[0] == G.SCREEN_HEIGHT and image.shape[2] == 3
    assert image.shape[1] > G.SCREEN_WIDTH + scaled_width - 1
    assert (image[:, :G.SCREEN_WIDTH] == screen).all()
    assert (image[:, -scaled_width:] == 255).all()
    assert not image[:, G.SCREEN_WIDTH:image.shape[1] - scaled_width].any(), "a black gap between the two"


def test_agent_view_frame_rejects_a_channel_first_observation() -> None:
    with pytest.raises(ConfigError, match="channel-last"):
        agent_view_frame(ball_frame(100.5, 60.5), np.zeros((4, 84, 84), np.uint8))
