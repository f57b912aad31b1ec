"""Find the ball and the paddle on a Breakout screen (RGB 210x160x3 frames)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlbreakout.aimbot.geometry import (
    BALL_CENTRE_COL_OFFSET,
    BALL_CENTRE_ROW_OFFSET,
    BALL_SEARCH_COLS,
    BALL_SEARCH_ROWS,
    PADDLE_ROWS,
    PLAYFIELD_COLS,
    SCREEN_CHANNELS,
    SCREEN_HEIGHT,
    SCREEN_WIDTH,
)
from rlbreakout.errors import ConfigError


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


def check_frame(frame: np.ndarray) -> None:
    if frame.shape != (SCREEN_HEIGHT, SCREEN_WIDTH, SCREEN_CHANNELS):
        raise ConfigError(
            f"the aimbot needs Breakout's RGB {SCREEN_HEIGHT}x{SCREEN_WIDTH}x{SCREEN_CHANNELS} frames, got shape "
            f"{frame.shape}; apply it to an ALE Breakout env with obs_type='rgb' before any resizing wrapper."
        )


def non_black(area: np.ndarray) -> np.ndarray:
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
    check_frame(frame)
    top, bottom = BALL_SEARCH_ROWS
    left, right = BALL_SEARCH_COLS
    mask = non_black(frame[top:bottom + 1, left:right + 1])
    return ball_from_lit(mask.any(axis=1), mask.any(axis=0))


def ball_from_lit(rows_lit: np.ndarray, cols_lit: np.ndarray) -> BallPosition | None:
    """The ball from which rows and which columns of the search area hold a lit pixel.

    :func:`detect_ball` for one frame, and the batched aimbot for many at once, share it.
    """
    top, bottom = BALL_SEARCH_ROWS
    left, right = BALL_SEARCH_COLS
    rows = np.flatnonzero(rows_lit)
    if rows.size == 0:
        return None
    cols = np.flatnonzero(cols_lit)
    r0, r1 = int(rows[0]) + top, int(rows[-1]) + top
    c0, c1 = int(cols[0]) + left, int(cols[-1]) + left
    return BallPosition(row=_clipped_centre(r0, r1, top, bottom, BALL_CENTRE_ROW_OFFSET),
                        col=_clipped_centre(c0, c1, left, right, BALL_CENTRE_COL_OFFSET), entering=r0 == top)


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
    check_frame(frame)
    top, bottom = PADDLE_ROWS
    left, right = PLAYFIELD_COLS
    cols = np.flatnonzero(non_black(frame[top:bottom + 1, left:right + 1]).all(axis=0))
    if cols.size == 0:
        return None
    return PaddleSpan(left=int(cols[0]) + left, right=int(cols[-1]) + left)
