"""The aimbot observation: colour, marker, crop, resize; and the gymnasium wrapper that applies it."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from rlbreakout.aimbot.detection import BallPosition, check_frame, detect_ball, non_black
from rlbreakout.aimbot.geometry import (
    MARKER_COLOUR_RGB,
    MARKER_ROWS,
    MARKER_VALUE_GREY,
    MARKER_WIDTH,
    SCREEN_CHANNELS,
    SCREEN_HEIGHT,
    SCREEN_WIDTH,
    TRIM_COLS,
    TRIM_ROWS,
)
from rlbreakout.aimbot.tracking import BallMotion, BallTracker
from rlbreakout.errors import ConfigError

# %% Options

COLOUR_CHOICES: tuple[str, ...] = ("rgb", "grey", "mono")
CROP_CHOICES: tuple[str, ...] = ("keep", "trim", "blacken")
PREDICTION_CHOICES: tuple[str, ...] = ("none", "marker")
#: The tutorial's view: binarised, trimmed, with the marker, squeezed to 84x84.
DEFAULT_COLOUR = "mono"
DEFAULT_CROP = "trim"
DEFAULT_PREDICTION = "marker"
DEFAULT_RESIZE: tuple[int, int] = (84, 84)
#: Level that "mono" gives every non-black pixel.
MONO_ON = 255


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"unknown aimbot {name} {value!r}; choose one of: {', '.join(choices)}.")
    return str(value)


def _check_resize(resize: object) -> tuple[int, int] | None:
    """``None`` (native size), an int (square) or ``(height, width)`` of positive ints."""
    if resize is None:
        return None
    if isinstance(resize, (int, np.integer)) and not isinstance(resize, bool):
        size = (int(resize), int(resize))
    elif isinstance(resize, (tuple, list)) and len(resize) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in resize
    ):
        size = (int(resize[0]), int(resize[1]))
    else:
        raise ConfigError(f"bad aimbot resize {resize!r}; use None (native size), an int, or (height, width).")
    if min(size) < 1:
        raise ConfigError(f"bad aimbot resize {resize!r}; height and width must be >= 1.")
    return size


# %% Rendering the observation


def marker_columns(impact_col: float, width: int = MARKER_WIDTH, frame_width: int = SCREEN_WIDTH) -> tuple[int, int]:
    """First and one-past-last column of a ``width``-px marker centred on ``impact_col``, clipped to the frame.

    Uses ``math.floor``, never ``int()``, so a centre left of column 0 rounds down, not toward zero.
    """
    first = math.floor(impact_col - (width - 1) / 2 + 0.5)
    return min(max(0, first), frame_width), min(max(0, first + width), frame_width)


class AimbotView:
    """The pure frame -> observation transform behind :class:`BreakoutObservationWrapper`.

    Kept separate from gymnasium so the scripted player and the gifs use exactly the
    pipeline the agent sees: colour, marker, crop, resize, in that order. The marker is
    drawn at full resolution before cropping, so it is placed to the pixel.
    """

    def __init__(
        self,
        colour: str = DEFAULT_COLOUR,
        crop: str = DEFAULT_CROP,
        prediction: str = DEFAULT_PREDICTION,
        resize: int | tuple[int, int] | None = DEFAULT_RESIZE,
    ) -> None:
        self.colour = _check_choice("colour", colour, COLOUR_CHOICES)
        self.crop = _check_choice("crop", crop, CROP_CHOICES)
        self.prediction = _check_choice("prediction", prediction, PREDICTION_CHOICES)
        self.resize = _check_resize(resize)
        self.tracker = BallTracker()
        #: what the last frame showed: the ball, its motion (None until two frames saw it), the impact column
        self.last_ball: BallPosition | None = None
        self.last_motion: BallMotion | None = None
        self.last_impact: float | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of every observation."""
        if self.resize is not None:
            height, width = self.resize
        elif self.crop == "trim":
            height, width = TRIM_ROWS[1] - TRIM_ROWS[0] + 1, TRIM_COLS[1] - TRIM_COLS[0] + 1
        else:
            height, width = SCREEN_HEIGHT, SCREEN_WIDTH
        return height, width, (3 if self.colour == "rgb" else 1)

    def observation_space(self) -> gym.spaces.Box:
        return gym.spaces.Box(low=0, high=255, shape=self.shape, dtype=np.uint8)

    def reset(self) -> None:
        self.tracker.reset()
        self.last_ball, self.last_motion, self.last_impact = None, None, None

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Track the ball in ``frame`` and return the observation (uint8, ``self.shape``)."""
        frame = np.asarray(frame)
        self.last_ball = detect_ball(frame)
        self.last_motion = self.tracker.update(self.last_ball)
        self.last_impact = self.tracker.predict(self.last_motion)
        return self.render(frame, self.last_impact if self.prediction == "marker" else None)

    def render(self, frame: np.ndarray, impact_col: float | None) -> np.ndarray:
        """The observation of ``frame`` with a marker at ``impact_col`` (None: no marker); no tracking."""
        import cv2

        check_frame(frame)
        if self.colour == "rgb":
            image = frame.astype(np.uint8, copy=True)
            marker_value: Any = MARKER_COLOUR_RGB
        elif self.colour == "grey":
            image = cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2GRAY)
            marker_value = MARKER_VALUE_GREY
        else:
            image = np.where(non_black(frame), MONO_ON, 0).astype(np.uint8)
            marker_value = MONO_ON
        if impact_col is not None:
            first, stop = marker_columns(impact_col)
            image[MARKER_ROWS[0]:MARKER_ROWS[1] + 1, first:stop] = marker_value
        image = self._crop(image)
        if self.resize is not None and image.shape[:2] != self.resize:
            height, width = self.resize
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            if self.colour == "mono":
                # re-binarise: any coverage stays on, so a 2-px ball cannot vanish when shrunk
                image = np.where(image > 0, MONO_ON, 0).astype(np.uint8)
        if image.ndim == 2:
            image = image[:, :, None]
        return np.ascontiguousarray(image, dtype=np.uint8)

    def _crop(self, image: np.ndarray) -> np.ndarray:
        (top, bottom), (left, right) = TRIM_ROWS, TRIM_COLS
        if self.crop == "trim":
            return image[top:bottom + 1, left:right + 1]
        if self.crop == "blacken":
            kept = image[top:bottom + 1, left:right + 1].copy()
            image = np.zeros_like(image)
            image[top:bottom + 1, left:right + 1] = kept
        return image


class BreakoutObservationWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Chapter 3's observation: Breakout cropped, recoloured, with the aimbot marker.

    Apply it to RGB 210x160x3 frames (after NoopReset, MaxAndSkip, EpisodicLife and
    FireReset, before ClipReward: ``make_env(..., wrapper="aimbot")`` does this).

    :param colour: ``rgb`` (3 channels), ``grey`` or ``mono`` (1 channel; mono is 0/255)
    :param crop: ``keep`` (whole screen), ``trim`` (playfield only, 168x144) or ``blacken``
        (whole screen with everything outside the playfield set to black)
    :param prediction: ``marker`` (draw the impact column below the paddle) or ``none``
    :param resize: ``(height, width)`` or an int for a square; ``None`` keeps the native size
    """

    def __init__(
        self,
        env: gym.Env,
        colour: str = DEFAULT_COLOUR,
        crop: str = DEFAULT_CROP,
        prediction: str = DEFAULT_PREDICTION,
        resize: int | tuple[int, int] | None = DEFAULT_RESIZE,
    ) -> None:
        # Recording the options lets gymnasium rebuild the env from its spec (its env checker does).
        gym.utils.RecordConstructorArgs.__init__(self, colour=colour, crop=crop, prediction=prediction, resize=resize)
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not (isinstance(space, gym.spaces.Box) and space.shape == (SCREEN_HEIGHT, SCREEN_WIDTH, SCREEN_CHANNELS)):
            raise ConfigError(
                f"the aimbot wrapper needs RGB {SCREEN_HEIGHT}x{SCREEN_WIDTH}x{SCREEN_CHANNELS} Breakout frames, "
                f"got observation space {space}; use obs_type='rgb' and no resizing wrapper below it."
            )
        self.view = AimbotView(colour=colour, crop=crop, prediction=prediction, resize=resize)
        self.observation_space = self.view.observation_space()

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        # Clear the velocity first: a ball from the last episode must not steer the first marker.
        self.view.reset()
        return super().reset(**kwargs)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return self.view(observation)
