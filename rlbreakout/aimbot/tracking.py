"""Where the ball will meet the paddle: its velocity from consecutive frames, its path folded off the walls."""

from __future__ import annotations

from dataclasses import dataclass

from rlbreakout.aimbot.detection import BallPosition
from rlbreakout.aimbot.geometry import LEFT_WALL, PADDLE_ROW, RIGHT_WALL
from rlbreakout.errors import ConfigError

# %% Prediction


def fold(x: float, left_wall: float, right_wall: float) -> float:
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
    return fold(col + v_col * steps, left_wall, right_wall)


# %% Velocity from consecutive frames


@dataclass(frozen=True)
class BallMotion:
    """The ball's centre now and its velocity in pixels per observation (step)."""

    row: float
    col: float
    v_row: float
    v_col: float


def _bounce_mirror(p0: float, p1: float, prior: float, mirrors: tuple[float, ...]) -> float | None:
    """The mirror line the ball bounced off between p0 and p1, or None if it did not bounce.

    A bounce between two observations makes the plain difference wrong (a ball that hit
    the left wall looks slow, or even still). The candidates are: no bounce (p1 - p0), or
    one bounce off mirror m, where the ball travelled 2m - p1 - p0 toward it and now moves
    the opposite way. The ball's velocity between bounces is constant, so the candidate
    whose displacement *before* the bounce is closest to the ``prior`` (expected) one wins;
    a tie keeps no bounce, and a bounce must have moved the way the prior did.
    """
    best_error, used = abs(p1 - p0 - prior), None
    for mirror in mirrors:
        before = 2 * mirror - p1 - p0
        error = abs(before - prior)
        if error < best_error and before * prior > 0:
            best_error, used = error, mirror
    return used


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
        col_mirror = None
        if self._velocity is not None:
            if (ball.row - last.row) * self._velocity[0] < 0:
                # Bounced off the paddle or a brick somewhere between the two steps; where exactly is
                # unknown (a brick can be anywhere), so a new straight segment starts here.
                self._anchor, self._steps, self._velocity = (ball.row, ball.col), 0, None
                return None
            col_mirror = _bounce_mirror(last.col, ball.col, self._velocity[1] * elapsed,
                                        (self.left_wall, self.right_wall))
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
