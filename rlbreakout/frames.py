"""Pure image helpers for gifs: tile frames into a grid, put two images side by side.

They only arrange uint8 RGB arrays (cv2 scales the right-hand image), so the wrappers
below the renderer (the scripted player's gif frames) and the renderer itself share them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlbreakout.errors import ConfigError

#: Pixels of black between tiles of a grid gif, and between two images side by side.
GRID_GAP = 2
#: Channels an observation may have to be shown beside the screen (grey or RGB).
SHOWABLE_CHANNELS = (1, 3)


def tile_grid(frames: Sequence[np.ndarray], grid: int, gap: int = GRID_GAP) -> np.ndarray:
    """Tile ``grid * grid`` equally sized RGB frames into one image (missing tiles stay black)."""
    if grid < 1:
        raise ConfigError(f"grid must be >= 1, got {grid}.")
    if len(frames) > grid * grid:
        raise ConfigError(f"{len(frames)} frames do not fit a {grid}x{grid} grid.")
    height, width, channels = frames[0].shape
    canvas = np.zeros((grid * height + (grid - 1) * gap, grid * width + (grid - 1) * gap, channels), dtype=np.uint8)
    for index, frame in enumerate(frames):
        row, col = divmod(index, grid)
        top, left = row * (height + gap), col * (width + gap)
        canvas[top:top + height, left:left + width] = frame
    return canvas


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = GRID_GAP) -> np.ndarray:
    """Two RGB images next to each other; the right one (RGB, grey or HxW) is scaled to the left one's height."""
    import cv2  # optional dependency: only gifs need it

    if right.ndim == 2:
        right = right[:, :, None]
    if right.shape[2] == 1:
        right = np.repeat(right, 3, axis=2)
    if right.shape[0] != left.shape[0]:
        scale = left.shape[0] / right.shape[0]
        right = cv2.resize(right, (max(1, round(right.shape[1] * scale)), left.shape[0]), interpolation=cv2.INTER_NEAREST)
        if right.ndim == 2:
            right = np.repeat(right[:, :, None], 3, axis=2)
    spacer = np.zeros((left.shape[0], gap, 3), dtype=np.uint8)
    return np.concatenate([left.astype(np.uint8), spacer, right.astype(np.uint8)], axis=1)


def agent_view_frame(screen_rgb: np.ndarray, observation: np.ndarray) -> np.ndarray:
    """The game screen and the wrapped observation side by side, the observation scaled to screen height.

    :param screen_rgb: (H, W, 3) uint8 game screen
    :param observation: (h, w), (h, w, 1) or (h, w, 3) uint8 observation (channel-last)
    :return: (H, W + gap + w * H / h, 3) uint8 image
    """
    observation = np.asarray(observation, dtype=np.uint8)
    if observation.ndim == 3 and observation.shape[2] not in SHOWABLE_CHANNELS:
        raise ConfigError(f"agent_view_frame needs a channel-last observation with 1 or 3 channels, got {observation.shape}.")
    return side_by_side(np.asarray(screen_rgb, dtype=np.uint8), observation)
