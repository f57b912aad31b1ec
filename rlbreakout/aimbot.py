"""The aimbot view of Breakout: crop, recolour, and mark where the ball will meet the paddle.

Why: an agent that sees raw pixels must learn, from rewards alone, that the ball's
future column matters. Chapter 3 hands it that fact instead. The wrapper finds the
ball, estimates its velocity from consecutive frames, folds its straight-line path
off the side walls, and draws a marker below the paddle at the impact column. Trained
on that, PPO learns "put the paddle over the marker", which is far easier.

The original tutorial's wrapper had four faults that this module fixes and tests:

* ``int()`` truncated a negative overshoot (a ball heading for the left wall) toward
  zero, so the marker landed on the wrong side; here the fold is a floor-modulo;
* the velocity state survived ``reset()``; here :meth:`BallTracker.reset` clears it;
* observations were floats while the space said uint8; here they are uint8;
* the marker was not clipped to the frame; here it is.

All screen geometry lives in the constants below. Each was read off real ALE frames
(ale-py 0.12.1, ``BreakoutNoFrameskip-v4``) by printing, for every row, the colours
present and the columns they span; the comment on each constant says what was seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlbreakout.errors import ConfigError

# %% Screen geometry (rows grow downward, columns grow rightward; ranges are inclusive)

#: ALE's native Atari frame: ``env.reset()`` returns (210, 160, 3) uint8.
SCREEN_HEIGHT = 210
SCREEN_WIDTH = 160
SCREEN_CHANNELS = 3
#: Score and lives digits: grey [142, 142, 142] pixels only in rows 5-14 at reset.
SCORE_ROWS = (5, 14)
#: Top wall: rows 17-31 are grey [142, 142, 142] across all 160 columns.
TOP_WALL_ROWS = (17, 31)
#: Side walls: from row 32 down to row 188 every row is grey in columns 0-7 and 152-159.
LEFT_WALL_COLS = (0, 7)
RIGHT_WALL_COLS = (152, 159)
#: Playfield: the black columns between the side walls (8-151, 144 columns).
PLAYFIELD_COLS = (8, 151)
#: Playfield rows: from just below the top wall to the last row of the paddle.
PLAYFIELD_ROWS = (32, 192)
#: Bricks: rows 57-92, six bands of 6 rows, spanning columns 8-151 at reset. From the top the
#: band colours are [200, 72, 72] (the ball's colour), [198, 108, 58], [180, 122, 48],
#: [162, 162, 42], [72, 160, 72], [66, 72, 200].
BRICK_ROWS = (57, 92)
BRICK_BAND_HEIGHT = 6
N_BRICK_BANDS = 6
#: Ball and paddle colour [200, 72, 72] (same as the top brick band).
BALL_COLOUR = (200, 72, 72)
#: Ball sprite: tracked frame by frame (frameskip 1) it is 2 columns by 4 rows.
BALL_WIDTH = 2
BALL_HEIGHT = 4
#: Ball search area: rows 93-188 (below the bricks, above the paddle) inside the playfield.
#: At reset and in play the only non-black pixels there are the ball's.
BALL_SEARCH_ROWS = (93, 188)
BALL_SEARCH_COLS = PLAYFIELD_COLS
#: Paddle: rows 189-192 in the ball's colour, 16 px wide at the start (columns 99-114 at reset),
#: 12 px after the ball has reached the top wall.
PADDLE_ROWS = (189, 192)
PADDLE_START_WIDTH = 16
PADDLE_SMALL_WIDTH = 12
#: Bottom-right corner: columns 152-159 of rows 189-194 are also [200, 72, 72] (and columns
#: 0-7 of rows 189-195 are teal [66, 158, 130]), so the paddle is searched for in the playfield
#: columns only. A paddle pushed against the right wall therefore shows only its left part.
CORNER_ROWS = (189, 195)
#: Ball top row when it touches the paddle: tracked descents reach top row 186 (rows 186-189),
#: then the ball rises again.
BALL_TOP_ROW_AT_PADDLE = 186
#: Wall turns: the ball is hidden behind the walls (wall pixels win), and at speed 1 px/frame
#: the visible ball goes cols 8-9, 8 (so 7-8 with 7 hidden), 8-9 at the left wall and 150-151,
#: 151 (so 151-152), 150-151 at the right wall: its left edge turns at column 7 and column 151.
#: At 2 px/frame it turns one column further out (left edge 6): the specular model is exact to ~1 px.
BALL_LEFT_EDGE_AT_LEFT_WALL = 7
BALL_LEFT_EDGE_AT_RIGHT_WALL = 151
#: Rows below the paddle and the teal/red corner blocks: all black in every frame (rows 196-209).
#: The marker is drawn in the first four of them, as tall as the ball.
MARKER_ROWS = (196, 199)
MARKER_WIDTH = 4
#: Marker colours: pure green stands out from every Breakout colour in RGB; grey and mono use white.
MARKER_COLOUR_RGB = (0, 255, 0)
MARKER_VALUE_GREY = 255
#: The "trim" crop: the playfield from below the top wall to the marker rows, without the side
#: walls: 168 rows (exactly twice 84) by 144 columns.
TRIM_ROWS = (PLAYFIELD_ROWS[0], MARKER_ROWS[1])
TRIM_COLS = PLAYFIELD_COLS

# Ball-centre coordinates used by the prediction: the centre of a 2x4 sprite is its left
# column + 0.5 and its top row + 1.5.
_HALF_WIDTH = (BALL_WIDTH - 1) / 2
_HALF_HEIGHT = (BALL_HEIGHT - 1) / 2
#: Ball-centre column at which it turns at the left / right wall (7.5 and 151.5).
LEFT_WALL = BALL_LEFT_EDGE_AT_LEFT_WALL + _HALF_WIDTH
RIGHT_WALL = BALL_LEFT_EDGE_AT_RIGHT_WALL + _HALF_WIDTH
#: Ball-centre row at which it meets the paddle (187.5).
PADDLE_ROW = BALL_TOP_ROW_AT_PADDLE + _HALF_HEIGHT

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


# %% Detection


@dataclass(frozen=True)
class BallPosition:
    """Centre of the ball in screen pixels (floats: a 2x4 sprite has a half-pixel centre)."""

    row: float
    col: float
    #: True when the ball is cut by the top of the search area (entering from, or leaving for,
    #: the bricks): its centre is then a guess, good enough to steer by but not to anchor a path on.
    entering: bool = False


@dataclass(frozen=True)
class PaddleSpan:
    """Paddle columns seen inside the playfield (inclusive)."""

    left: int
    right: int

    @property
    def centre(self) -> float:
        return (self.left + self.right) / 2

    @property
    def width(self) -> int:
        return self.right - self.left + 1


def _check_frame(frame: np.ndarray) -> None:
    if frame.shape != (SCREEN_HEIGHT, SCREEN_WIDTH, SCREEN_CHANNELS):
        raise ConfigError(
            f"the aimbot needs Breakout's RGB {SCREEN_HEIGHT}x{SCREEN_WIDTH}x{SCREEN_CHANNELS} frames, got shape "
            f"{frame.shape}; apply it to an ALE Breakout env with obs_type='rgb' before any resizing wrapper."
        )


def _non_black(area: np.ndarray) -> np.ndarray:
    """Mask of non-black pixels; colour-blind so it also works while attract mode cycles colours."""
    return np.any(area != 0, axis=2)


def detect_ball(frame: np.ndarray) -> BallPosition | None:
    """The ball's centre in the search area (rows 93-188), or None when it is not there.

    The ball is absent before FIRE, after it is lost, and while it is among or above the
    bricks. A max-pooled frame (MaxAndSkip) may show the ball twice, one frame apart; the
    centre of their union is the ball's position half a frame earlier, still on its path.
    A ball cut by the search area (half behind a wall, or entering from the bricks or
    touching the paddle rows) is centred from its visible edge and its known size.
    """
    _check_frame(frame)
    top, bottom = BALL_SEARCH_ROWS
    left, right = BALL_SEARCH_COLS
    mask = _non_black(frame[top:bottom + 1, left:right + 1])
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = int(rows[0]) + top, int(rows[-1]) + top
    c0, c1 = int(cols[0]) + left, int(cols[-1]) + left
    return BallPosition(row=_clipped_centre(r0, r1, top, bottom, _HALF_HEIGHT),
                        col=_clipped_centre(c0, c1, left, right, _HALF_WIDTH), entering=r0 == top)


def _clipped_centre(first: int, last: int, lo: int, hi: int, half: float) -> float:
    """Centre of a span; if one end touches the search limit, measure from the other end.

    ``half`` is half the sprite size less half a pixel (0.5 for 2 px, 1.5 for 4 px).
    """
    if first == lo and last < hi:
        return last - half
    if last == hi and first > lo:
        return first + half
    return (first + last) / 2


def detect_paddle(frame: np.ndarray) -> PaddleSpan | None:
    """The paddle's visible columns in rows 189-192 of the playfield, or None (never in play).

    A column counts only if all four paddle rows are lit there: a ball meeting the paddle
    reaches row 189 at most, and must not widen the paddle by its own 2 px.
    """
    _check_frame(frame)
    top, bottom = PADDLE_ROWS
    left, right = PLAYFIELD_COLS
    cols = np.flatnonzero(_non_black(frame[top:bottom + 1, left:right + 1]).all(axis=0))
    if cols.size == 0:
        return None
    return PaddleSpan(left=int(cols[0]) + left, right=int(cols[-1]) + left)


# %% Prediction


def _fold(x: float, left_wall: float, right_wall: float) -> float:
    """Mirror ``x`` into [left_wall, right_wall] as a ball bouncing specularly off both walls."""
    width = right_wall - left_wall
    # Python's float % is a floor-modulo: -3 % 10 == 7, so a negative overshoot past the left
    # wall folds back inside instead of being truncated toward zero (the original's bug).
    u = (x - left_wall) % (2 * width)
    if u > width:
        u = 2 * width - u
    return left_wall + u


def predict_impact_column(
    row: float,
    col: float,
    v_row: float,
    v_col: float,
    *,
    left_wall: float = LEFT_WALL,
    right_wall: float = RIGHT_WALL,
    paddle_row: float = PADDLE_ROW,
) -> float | None:
    """Column at which a ball at (row, col) moving by (v_row, v_col) per step reaches ``paddle_row``.

    The ball is a point moving in a straight line at constant velocity; rows grow
    downward, so ``v_row > 0`` is falling. It bounces specularly off the walls at
    ``left_wall`` and ``right_wall`` any number of times. Only the direction matters, so
    any unit of time (frames, agent steps at any frameskip) gives the same answer.
    The defaults are the ball-centre coordinates :func:`detect_ball` reports.

    :return: the impact column in [left_wall, right_wall], or None if the ball is not falling
    """
    if not right_wall > left_wall:
        raise ConfigError(f"right_wall ({right_wall}) must be greater than left_wall ({left_wall}).")
    if v_row <= 0:
        return None
    steps = (paddle_row - row) / v_row
    return _fold(col + v_col * steps, left_wall, right_wall)


# %% Velocity from consecutive frames


@dataclass(frozen=True)
class BallMotion:
    """The ball's centre now and its velocity in pixels per observation (step)."""

    row: float
    col: float
    v_row: float
    v_col: float


def _unfold_step(p0: float, p1: float, prior: float | None, mirrors: tuple[float, ...]) -> tuple[float, float | None]:
    """Displacement from p0 to p1 allowing one bounce off a mirror line; returns (displacement, mirror used).

    A bounce between two observations makes the plain difference wrong (a ball that hit
    the left wall looks slow, or even still). The candidates are: no bounce (p1 - p0), or
    one bounce off mirror m, where the ball travelled 2m - p1 - p0 toward it and now moves
    the opposite way. The ball's velocity between bounces is constant, so the candidate
    whose displacement *before* the bounce is closest to the ``prior`` (expected) one wins;
    with no prior, no bounce is assumed.
    """
    direct = p1 - p0
    if prior is None:
        return direct, None
    best, best_error, used = direct, abs(direct - prior), None
    for mirror in mirrors:
        before = 2 * mirror - p1 - p0
        error = abs(before - prior)
        if error < best_error and before * prior > 0:
            best, best_error, used = -before, error, mirror
    return best, used


#: Steps the ball may be missing (hidden behind a wall for a frame) before the tracker forgets it.
MAX_MISSING_STEPS = 1


class BallTracker:
    """Ball velocity from consecutive frames, averaged since the last vertical bounce.

    Why an average: Atari motion is quantised (a ball at 1.5 rows per frame moves 1, 2,
    1, 2 rows), so the difference of two frames is a poor direction at frameskip 1. The
    ball moves in a straight line between bounces, so the total displacement since the
    ball appeared (or last bounced off the paddle or a brick) divided by the steps taken
    gives the direction exactly, at any frameskip, even a random one. Wall bounces are
    undone by reflecting the segment's start point about the wall, which keeps the
    segment straight. A vertical bounce (paddle, brick) starts a new segment, and the
    velocity is unknown until the next step.

    Call :meth:`reset` at every episode start; a ball missing for more than
    ``MAX_MISSING_STEPS`` steps is forgotten too.
    """

    def __init__(
        self, *, left_wall: float = LEFT_WALL, right_wall: float = RIGHT_WALL, paddle_row: float = PADDLE_ROW
    ) -> None:
        self.left_wall, self.right_wall, self.paddle_row = left_wall, right_wall, paddle_row
        self.reset()

    def reset(self) -> None:
        """Forget the ball: its last position, the current straight segment and its velocity."""
        self._last: BallPosition | None = None
        self._anchor: tuple[float, float] | None = None  # segment start (row, col), reflected as needed
        self._steps = 0  # steps from the anchor to the last position
        self._velocity: tuple[float, float] | None = None
        self._missing = 0

    @property
    def velocity(self) -> tuple[float, float] | None:
        """(v_row, v_col) in pixels per step, or None until the ball was seen twice."""
        return self._velocity

    def update(self, ball: BallPosition | None) -> BallMotion | None:
        """Feed this step's detection; returns position and velocity once two steps saw the ball."""
        if ball is None:
            if self._last is not None and self._missing < MAX_MISSING_STEPS:
                self._missing += 1
            else:
                self.reset()
            return None
        elapsed, self._missing = self._missing + 1, 0
        last, self._last = self._last, ball
        if last is None or self._anchor is None:
            # A ball cut by the bricks' edge is only half seen (and, max-pooled, smeared): wait
            # for a whole one before anchoring the straight segment.
            if ball.entering:
                self._last = None
            else:
                self._anchor, self._steps = (ball.row, ball.col), 0
            return None
        prior_row, prior_col = (None, None) if self._velocity is None else (
            self._velocity[0] * elapsed, self._velocity[1] * elapsed)
        d_row, _ = _unfold_step(last.row, ball.row, prior_row, ())
        d_col, col_mirror = _unfold_step(last.col, ball.col, prior_col, (self.left_wall, self.right_wall))
        if self._velocity is not None and d_row * self._velocity[0] < 0:
            # Bounced off the paddle or a brick somewhere between the two steps; where exactly is
            # unknown (a brick can be anywhere), so a new straight segment starts here.
            self._anchor, self._steps, self._velocity = (ball.row, ball.col), 0, None
            return None
        anchor_row, anchor_col = self._anchor
        if col_mirror is not None:
            anchor_col = 2 * col_mirror - anchor_col
        self._anchor = (anchor_row, anchor_col)
        self._steps += elapsed
        self._velocity = ((ball.row - anchor_row) / self._steps, (ball.col - anchor_col) / self._steps)
        return BallMotion(row=ball.row, col=ball.col, v_row=self._velocity[0], v_col=self._velocity[1])

    def predict(self, motion: BallMotion | None) -> float | None:
        """Impact column of ``motion`` with this tracker's walls, or None."""
        if motion is None:
            return None
        return predict_impact_column(
            motion.row, motion.col, motion.v_row, motion.v_col,
            left_wall=self.left_wall, right_wall=self.right_wall, paddle_row=self.paddle_row,
        )


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

        _check_frame(frame)
        if self.colour == "rgb":
            image = frame.astype(np.uint8, copy=True)
            marker_value: Any = MARKER_COLOUR_RGB
        elif self.colour == "grey":
            image = cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2GRAY)
            marker_value = MARKER_VALUE_GREY
        else:
            image = np.where(_non_black(frame), MONO_ON, 0).astype(np.uint8)
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


# %% Synthetic frames (tests and teaching)

#: Colour of the walls and score on real frames.
WALL_COLOUR = (142, 142, 142)


def synthetic_frame(
    ball: tuple[float, float] | None = None,
    paddle_left: int | None = 72,
    paddle_width: int = PADDLE_START_WIDTH,
) -> np.ndarray:
    """A Breakout screen with walls, no bricks, and a ball and paddle at known places.

    Tests need frames whose right answer is known to the pixel; real frames give that only
    after a long search. The layout follows the constants above, so it is also a picture of
    what each constant means.

    :param ball: the ball's centre (row, col), half-integers as :func:`detect_ball` reports
        (a 2x4 sprite); walls hide it as on the real screen. None: no ball
    :param paddle_left: first paddle column; None: no paddle
    """
    frame = np.zeros((SCREEN_HEIGHT, SCREEN_WIDTH, SCREEN_CHANNELS), dtype=np.uint8)
    frame[TOP_WALL_ROWS[0]:TOP_WALL_ROWS[1] + 1] = WALL_COLOUR
    side_rows = slice(TOP_WALL_ROWS[1] + 1, PADDLE_ROWS[0])
    frame[side_rows, LEFT_WALL_COLS[0]:LEFT_WALL_COLS[1] + 1] = WALL_COLOUR
    frame[side_rows, RIGHT_WALL_COLS[0]:RIGHT_WALL_COLS[1] + 1] = WALL_COLOUR
    frame[CORNER_ROWS[0]:CORNER_ROWS[1], RIGHT_WALL_COLS[0]:] = BALL_COLOUR
    if paddle_left is not None:
        frame[PADDLE_ROWS[0]:PADDLE_ROWS[1] + 1, paddle_left:paddle_left + paddle_width] = BALL_COLOUR
    if ball is not None:
        top, left = ball[0] - _HALF_HEIGHT, ball[1] - _HALF_WIDTH
        if top != int(top) or left != int(left):
            raise ConfigError(f"ball centre {ball} must sit on a 2x4 sprite: row = n + 1.5, col = m + 0.5.")
        rows = slice(max(int(top), PLAYFIELD_ROWS[0]), max(int(top) + BALL_HEIGHT, PLAYFIELD_ROWS[0]))
        cols = slice(max(int(left), PLAYFIELD_COLS[0]), min(int(left) + BALL_WIDTH, PLAYFIELD_COLS[1] + 1))
        frame[rows, cols] = BALL_COLOUR
    return frame


# %% Agent's view, for gifs


def agent_view_frame(screen_rgb: np.ndarray, observation: np.ndarray) -> np.ndarray:
    """The game screen and the wrapped observation side by side, the observation scaled to screen height.

    :param screen_rgb: (H, W, 3) uint8 game screen
    :param observation: (h, w), (h, w, 1) or (h, w, 3) uint8 observation (channel-last)
    :return: (H, W + gap + w * H / h, 3) uint8 image
    """
    from rlbreakout.render import side_by_side

    observation = np.asarray(observation, dtype=np.uint8)
    if observation.ndim == 3 and observation.shape[2] not in (1, 3):
        raise ConfigError(f"agent_view_frame needs a channel-last observation with 1 or 3 channels, got {observation.shape}.")
    return side_by_side(np.asarray(screen_rgb, dtype=np.uint8), observation)
