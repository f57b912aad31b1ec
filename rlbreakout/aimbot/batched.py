"""The aimbot view over a batch of envs at once: the pixel work of :class:`AimbotView`, in one pass.

Why: on the classic stack every env runs :class:`~rlbreakout.aimbot.view.AimbotView` on
its own frame, in Python, each step; with 8 envs that cost 3.3 ``--fast`` about a third of
2.3's speed. ale-py's C++ vector env hands over all envs' max-pooled RGB frames as one
array, so here the lit-pixel mask, the ball's rows and columns, the colour, the marker,
the crop and the resize run once over the batch (numpy, and one OpenCV call with the envs
as channels). Only the tracker, a few floats per env with branches on bounces, stays per env.

:class:`AimbotView` stays the readable reference, one frame at a time; this class must
give bit-identical observations on the same frames (tests/test_aimbot_batched.py checks
every colour, crop and prediction option on real ALE frames).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from rlbreakout.aimbot.detection import BallPosition, ball_from_lit
from rlbreakout.aimbot.geometry import (
    BALL_SEARCH_COLS,
    BALL_SEARCH_ROWS,
    MARKER_COLOUR_RGB,
    MARKER_ROWS,
    MARKER_VALUE_GREY,
    SCREEN_CHANNELS,
    SCREEN_HEIGHT,
    SCREEN_WIDTH,
    TRIM_COLS,
    TRIM_ROWS,
)
from rlbreakout.aimbot.tracking import BallTracker
from rlbreakout.aimbot.view import (
    DEFAULT_COLOUR,
    DEFAULT_CROP,
    DEFAULT_PREDICTION,
    DEFAULT_RESIZE,
    MONO_ON,
    AimbotView,
    marker_columns,
)
from rlbreakout.errors import ConfigError

#: The most channels ``cv2.resize`` takes at once (OpenCV 5 asserts ``cn <= 4``).
OPENCV_MAX_CHANNELS = 4


def lit_pixels(frames: np.ndarray) -> np.ndarray:
    """``(n, 210, 160)`` mask of non-black pixels of ``(n, 210, 160, 3)`` RGB frames (``non_black``, batched)."""
    return (frames[..., 0] | frames[..., 1] | frames[..., 2]) != 0


def detect_balls(lit: np.ndarray) -> list[BallPosition | None]:
    """:func:`~rlbreakout.aimbot.detection.detect_ball` for each frame of a batch, from its lit mask."""
    (top, bottom), (left, right) = BALL_SEARCH_ROWS, BALL_SEARCH_COLS
    area = lit[:, top:bottom + 1, left:right + 1]
    rows_lit, cols_lit = area.any(axis=2), area.any(axis=1)
    return [ball_from_lit(rows_lit[i], cols_lit[i]) for i in range(len(lit))]


def resize_area(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """OpenCV's INTER_AREA resize of ``(n, H, W[, C])`` images to ``(n, *size[, C])``, the envs as channels.

    One call per :data:`OPENCV_MAX_CHANNELS` channels (4 grey images, or 4 colour channels)
    instead of one per image: OpenCV resizes each channel on its own, so the result equals
    the per-image one.
    """
    n, height, width = images.shape[:3]
    per_image = int(np.prod(images.shape[3:], dtype=int))
    stacked = np.ascontiguousarray(np.moveaxis(images, 0, 2).reshape(height, width, n * per_image))
    out_height, out_width = size
    chunks = [cv2.resize(stacked[:, :, start:start + OPENCV_MAX_CHANNELS], (out_width, out_height),
                         interpolation=cv2.INTER_AREA).reshape(out_height, out_width, -1)
              for start in range(0, n * per_image, OPENCV_MAX_CHANNELS)]
    resized = np.concatenate(chunks, axis=2).reshape(out_height, out_width, n, *images.shape[3:])
    return np.moveaxis(resized, 2, 0)


class BatchedAimbotView:
    """:class:`AimbotView` for ``n_envs`` envs stepped together; one :class:`BallTracker` per env.

    ``view(frames)`` takes ``(n_envs, 210, 160, 3)`` frames and returns ``(n_envs, *shape)``
    uint8 observations; ``view(frames, indices)`` takes frames of only those envs (a
    finished game's last frame, say) and updates only their trackers.
    """

    def __init__(
        self,
        n_envs: int,
        colour: str = DEFAULT_COLOUR,
        crop: str = DEFAULT_CROP,
        prediction: str = DEFAULT_PREDICTION,
        resize: int | tuple[int, int] | None = DEFAULT_RESIZE,
    ) -> None:
        if int(n_envs) < 1:
            raise ConfigError(f"n_envs must be >= 1, got {n_envs}.")
        # The single-frame view checks the options and knows the shape: one place for both.
        reference = AimbotView(colour=colour, crop=crop, prediction=prediction, resize=resize)
        self.colour, self.crop, self.prediction, self.resize = (reference.colour, reference.crop,
                                                                reference.prediction, reference.resize)
        self.shape = reference.shape
        self.trackers = [BallTracker() for _ in range(int(n_envs))]
        #: Each env's impact column from its last frame (None: no falling ball seen twice).
        self.last_impacts: list[float | None] = [None] * int(n_envs)

    @property
    def n_envs(self) -> int:
        return len(self.trackers)

    def reset(self, indices: Sequence[int] | None = None) -> None:
        """Forget the ball of these envs (all by default): a new game or a new life starts."""
        for i in range(self.n_envs) if indices is None else indices:
            self.trackers[i].reset()
            self.last_impacts[i] = None

    def __call__(self, frames: np.ndarray, indices: Sequence[int] | None = None) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (SCREEN_HEIGHT, SCREEN_WIDTH, SCREEN_CHANNELS):
            raise ConfigError(f"the batched aimbot needs (n, {SCREEN_HEIGHT}, {SCREEN_WIDTH}, {SCREEN_CHANNELS}) "
                              f"RGB frames, got shape {frames.shape}.")
        envs = list(range(self.n_envs)) if indices is None else list(indices)
        if len(envs) != len(frames):
            raise ConfigError(f"{len(frames)} frames for {len(envs)} envs.")
        lit = lit_pixels(frames)
        impacts = []
        for env, ball in zip(envs, detect_balls(lit)):
            tracker = self.trackers[env]
            self.last_impacts[env] = tracker.predict(tracker.update(ball))
            impacts.append(self.last_impacts[env])
        return self.render(frames, lit, impacts if self.prediction == "marker" else [None] * len(envs))

    def render(self, frames: np.ndarray, lit: np.ndarray, impacts: Sequence[float | None]) -> np.ndarray:
        """Colour, marker, crop, resize of a batch, as :meth:`AimbotView.render` does one frame."""
        n = len(frames)
        if self.colour == "rgb":
            images, marker = frames.astype(np.uint8, copy=True), MARKER_COLOUR_RGB
        elif self.colour == "grey":
            tall = cv2.cvtColor(np.ascontiguousarray(frames, dtype=np.uint8).reshape(n * SCREEN_HEIGHT, SCREEN_WIDTH,
                                                                                     SCREEN_CHANNELS),
                                cv2.COLOR_RGB2GRAY)
            images, marker = tall.reshape(n, SCREEN_HEIGHT, SCREEN_WIDTH), MARKER_VALUE_GREY
        else:
            images, marker = lit.view(np.uint8) * np.uint8(MONO_ON), MONO_ON
        for i, impact in enumerate(impacts):
            if impact is not None:
                first, stop = marker_columns(impact)
                images[i, MARKER_ROWS[0]:MARKER_ROWS[1] + 1, first:stop] = marker
        images = self._crop(images)
        if self.resize is not None and images.shape[1:3] != self.resize:
            images = resize_area(images, self.resize)
            if self.colour == "mono":
                images = (images > 0).view(np.uint8) * np.uint8(MONO_ON)
        if images.ndim == 3:
            images = images[..., None]
        return np.ascontiguousarray(images, dtype=np.uint8)

    def _crop(self, images: np.ndarray) -> np.ndarray:
        (top, bottom), (left, right) = TRIM_ROWS, TRIM_COLS
        if self.crop == "trim":
            return images[:, top:bottom + 1, left:right + 1]
        if self.crop == "blacken":
            blackened = np.zeros_like(images)
            blackened[:, top:bottom + 1, left:right + 1] = images[:, top:bottom + 1, left:right + 1]
            return blackened
        return images
