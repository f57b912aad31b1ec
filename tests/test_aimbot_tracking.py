"""Tests for rlbreakout.aimbot.tracking: the impact column, hand-computed, and the velocity from frames."""

from __future__ import annotations

import numpy as np
import pytest

from fakes import ball_frame, bounce_path, synthetic_frame
from helpers import PlayedFrames, play_recording_raw_frames
from rlbreakout.aimbot import geometry as G
from rlbreakout.aimbot.detection import detect_ball
from rlbreakout.aimbot.tracking import (
    MAX_MISSING_STEPS,
    BallMotion,
    BallTracker,
    _bounce_mirror,
    predict_impact_column,
)
from rlbreakout.errors import ConfigError

# %% predict_impact_column, hand-computed (walls at 0 and 100, paddle row 100, 10 steps to go)

WALLS = {"left_wall": 0.0, "right_wall": 100.0, "paddle_row": 100.0}


@pytest.mark.parametrize(
    ("col", "v_col", "expected", "story"),
    [
        (50.0, 2.0, 70.0, "no bounce: 50 + 10 * 2"),
        (50.0, 0.0, 50.0, "straight down"),
        (80.0, 4.0, 80.0, "one bounce off the right wall: 120 -> 200 - 120"),
        (20.0, -4.0, 20.0, "one bounce off the left wall: -20 -> 20 (int() would truncate toward zero)"),
        (3.0, -0.35, 0.5, "a small negative overshoot: -0.5 -> 0.5"),
        (50.0, 23.0, 80.0, "two bounces: 50 -> 100 -> 0 -> 80 covers 230"),
        (50.0, -23.0, 20.0, "two bounces leftward: 50 -> 0 -> 100 -> 20 covers 230"),
        (50.0, 63.0, 80.0, "six bounces: 680 mod 200 = 80"),
        (50.0, 5.0, 100.0, "exact hit on the right wall"),
        (50.0, -5.0, 0.0, "exact hit on the left wall"),
        (50.0, 15.0, 0.0, "exact hit on the left wall after one bounce: 200 -> 0"),
    ],
)
def test_predict_impact_column_hand_computed(col: float, v_col: float, expected: float, story: str) -> None:
    assert predict_impact_column(0.0, col, 10.0, v_col, **WALLS) == pytest.approx(expected), story


@pytest.mark.parametrize("v_row", [0.0, -1.0, -8.0])
def test_predict_impact_column_none_when_not_falling(v_row: float) -> None:
    assert predict_impact_column(50.0, 50.0, v_row, 3.0, **WALLS) is None


def test_predict_impact_column_is_time_unit_free() -> None:
    """Same direction, any speed (frameskip): same answer."""
    base = predict_impact_column(100.0, 40.0, 2.0, -3.0)
    for scale in (0.5, 3.0, 4.0, 17.0):
        assert predict_impact_column(100.0, 40.0, 2.0 * scale, -3.0 * scale) == pytest.approx(base)


def test_predict_impact_column_defaults_are_breakout_ball_centres() -> None:
    assert (G.LEFT_WALL, G.RIGHT_WALL, G.PADDLE_ROW) == (7.5, 151.5, 187.5)
    # ball centre 5 px right of the left wall, 3 px left per row: bounces at 7.5, lands 2*7.5 - (12.5 - 30) ...
    got = predict_impact_column(G.PADDLE_ROW - 10, 12.5, 1.0, -3.0)
    assert got == pytest.approx(2 * G.LEFT_WALL - (12.5 - 30.0))


def test_predict_impact_column_rejects_inverted_walls() -> None:
    with pytest.raises(ConfigError, match="right_wall"):
        predict_impact_column(0.0, 5.0, 1.0, 1.0, left_wall=10.0, right_wall=10.0, paddle_row=5.0)


# %% Velocity and tracking on synthetic frames


def track(frames: list[np.ndarray], tracker: BallTracker | None = None) -> list[BallMotion | None]:
    tracker = tracker or BallTracker()
    return [tracker.update(detect_ball(f)) for f in frames]


def test_velocity_from_two_frames() -> None:
    motions = track([ball_frame(100.5, 60.5), ball_frame(108.5, 66.5)])
    assert motions[0] is None
    assert (motions[1].v_row, motions[1].v_col) == (8.0, 6.0)




def test_velocity_is_exact_for_any_frameskip_even_random() -> None:
    """Sample one straight path every 1, 4 or 2-4 (random) frames: the direction is the same."""
    fine = bounce_path(95.5, 40.5, 1.0, 1.0, 90)
    rng = np.random.default_rng(0)
    for strides in ([1] * 60, [4] * 20, list(rng.integers(2, 5, size=25))):
        idx = np.cumsum([0, *strides])
        idx = idx[idx < len(fine)]
        tracker = BallTracker()
        motion = track([ball_frame(*fine[i]) for i in idx], tracker)[-1]
        assert motion.v_col / motion.v_row == pytest.approx(1.0)
        assert tracker.predict(motion) == pytest.approx(predict_impact_column(*fine[0], 1.0, 1.0))


def test_velocity_averages_quantised_atari_motion() -> None:
    """A ball at 1.5 rows/frame moves 1, 2, 1, 2 rows: the average since it appeared is exact."""
    rows = 100.5 + np.cumsum([0, 1, 2, 1, 2, 1, 2, 1, 2])
    cols = 60.5 + np.arange(len(rows))
    motion = track([ball_frame(r, c) for r, c in zip(rows, cols)])[-1]
    assert motion.v_row == pytest.approx(1.5) and motion.v_col == pytest.approx(1.0)


def test_a_vertical_bounce_starts_a_new_segment() -> None:
    frames = [ball_frame(150.5, 60.5), ball_frame(140.5, 62.5), ball_frame(148.5, 64.5), ball_frame(156.5, 66.5)]
    motions = track(frames)
    assert motions[1].v_row == -10.0
    assert motions[2] is None, "bounced somewhere between the frames: velocity unknown"
    assert (motions[3].v_row, motions[3].v_col) == (8.0, 2.0)


def test_an_entering_ball_is_not_an_anchor() -> None:
    frames = [synthetic_frame((92.5, 60.5)), ball_frame(100.5, 62.5), ball_frame(108.5, 64.5)]
    motions = track(frames)
    assert motions[:2] == [None, None] and (motions[2].v_row, motions[2].v_col) == (8.0, 2.0)


def test_lost_ball_and_reset_forget_the_velocity() -> None:
    tracker = BallTracker()
    track([ball_frame(100.5, 60.5), ball_frame(108.5, 66.5)], tracker)
    tracker.reset()
    assert tracker.update(detect_ball(ball_frame(120.5, 30.5))) is None
    assert tracker.velocity is None
    track([ball_frame(100.5, 60.5), ball_frame(108.5, 66.5)], tracker)
    for _ in range(MAX_MISSING_STEPS + 1):
        tracker.update(None)
    assert tracker.update(detect_ball(ball_frame(120.5, 30.5))) is None


def test_one_missing_frame_is_bridged() -> None:
    """At 2 px/frame the ball can hide fully behind a wall for one frame."""
    tracker = BallTracker()
    track([ball_frame(100.5, 60.5), ball_frame(108.5, 66.5)], tracker)
    assert tracker.update(None) is None
    motion = tracker.update(detect_ball(ball_frame(124.5, 78.5)))
    assert (motion.v_row, motion.v_col) == (8.0, 6.0)



def test_a_ball_near_a_wall_that_did_not_bounce_keeps_its_velocity() -> None:
    """6 px/step toward the right wall, 5 px from it: no bounce fits the motion as well as none."""
    motions = track([ball_frame(100.5, 134.5), ball_frame(108.5, 140.5), ball_frame(116.5, 146.5)])
    assert (motions[2].v_row, motions[2].v_col) == (8.0, 6.0)


def test_a_ball_reaching_the_wall_has_not_bounced_yet() -> None:
    """At the wall line no bounce and one bounce fit equally; the tie keeps the direction it had."""
    motions = track([ball_frame(100.5, 129.5), ball_frame(108.5, 140.5), ball_frame(116.5, G.RIGHT_WALL)])
    assert (motions[2].v_row, motions[2].v_col) == (8.0, 11.0)


def test_a_bounce_off_the_wall_while_the_ball_was_missing_is_unfolded() -> None:
    """Hidden for one step (expected 2 x 6 px), it came back 6 px: the bounce fits, velocity turns over."""
    tracker = BallTracker()
    track([ball_frame(100.5, 136.5), ball_frame(108.5, 142.5)], tracker)
    assert tracker.update(None) is None
    motion = tracker.update(detect_ball(ball_frame(124.5, 148.5)))  # 154.5 folded off the wall at 151.5
    assert (motion.v_row, motion.v_col) == (8.0, -6.0)


def test_a_slow_bounce_off_the_wall_is_unfolded() -> None:
    """1 px/step into the wall and back: the segment stays straight, the column velocity turns over."""
    motions = track([ball_frame(100.5 + 2 * k, col) for k, col in enumerate([149.5, 150.5, G.RIGHT_WALL, 150.5])])
    assert (motions[2].v_row, motions[2].v_col) == (2.0, 1.0)
    assert (motions[3].v_row, motions[3].v_col) == (2.0, -1.0)


def test_a_ball_falling_straight_down_near_a_wall_has_no_column_velocity() -> None:
    motions = track([ball_frame(100.5 + 8 * k, 148.5) for k in range(3)])
    assert (motions[2].v_row, motions[2].v_col) == (8.0, 0.0)


def test_a_ball_moving_along_a_row_is_one_segment_and_never_lands() -> None:
    tracker = BallTracker()
    motions = track([ball_frame(100.5, 60.5 + 6 * k) for k in range(4)], tracker)
    assert [(m.v_row, m.v_col) for m in motions[1:]] == [(0.0, 6.0)] * 3
    assert tracker.predict(motions[-1]) is None


def test_a_slow_ball_that_moves_0_or_1_rows_a_step_stays_one_segment() -> None:
    """Half a row per step shows as 1, 0, 1, 0 rows: a step with no row change is no vertical bounce."""
    rows = 100.5 + np.array([0, 1, 1, 2, 2, 3])
    motions = track([ball_frame(r, 60.5 + k) for k, r in enumerate(rows)])
    assert all(m is not None for m in motions[1:])
    assert (motions[-1].v_row, motions[-1].v_col) == (0.6, 1.0)  # 3 rows over 5 steps since the anchor


def test_more_missing_steps_are_bridged_when_the_limit_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """MAX_MISSING_STEPS is read at each step; two steps hidden count as two in the velocity."""
    monkeypatch.setattr("rlbreakout.aimbot.tracking.MAX_MISSING_STEPS", 2)
    tracker = BallTracker()
    track([ball_frame(100.5, 60.5), ball_frame(108.5, 66.5)], tracker)
    assert tracker.update(None) is None and tracker.update(None) is None
    motion = tracker.update(detect_ball(ball_frame(132.5, 84.5)))
    assert (motion.v_row, motion.v_col) == (8.0, 6.0)


def test_predict_uses_the_trackers_own_walls_and_paddle_row() -> None:
    tracker = BallTracker(**WALLS)
    motion = BallMotion(row=0.0, col=80.0, v_row=10.0, v_col=4.0)
    assert tracker.predict(motion) == pytest.approx(80.0)  # one bounce off the wall at 100: 120 -> 80
    assert tracker.predict(motion) == predict_impact_column(0.0, 80.0, 10.0, 4.0, **WALLS)
    assert BallTracker().predict(motion) != pytest.approx(80.0)  # Breakout's walls give another column
    leftward = BallMotion(row=0.0, col=20.0, v_row=10.0, v_col=-4.0)
    assert tracker.predict(leftward) == pytest.approx(20.0)  # one bounce off the wall at 0: -20 -> 20
    assert BallTracker().predict(None) is None


def test_a_ball_not_moving_sideways_never_bounced_off_a_wall() -> None:
    """A prior of 0 columns a step picks no mirror, even for positions either side of one.

    Such positions come from a tracker whose walls lie inside the field (its walls are
    arguments); a ball that was going straight down cannot have bounced sideways.
    """
    assert _bounce_mirror(9.0, 12.0, 0.0, (10.0,)) is None
    assert _bounce_mirror(9.0, 11.0, 0.0, (10.0,)) is None  # the mirror halfway: 0 columns before it
    assert _bounce_mirror(9.0, 12.0, 1.0, (10.0,)) is None  # moving right, 'before' is -1: the wrong way
    assert _bounce_mirror(8.0, 8.0, 4.0, (10.0,)) == 10.0  # 2 columns to the mirror and 2 back: before = 4


# %% The promise on real frames: the predicted column against where the ball really crosses the paddle row

#: Agent steps of the scripted game (frameskip 4, max-pooled): 19 falls reach the paddle row with seed 0.
REAL_GAME_STEPS = 600


def falls_with_predictions(played: PlayedFrames) -> list[tuple[float, list[float]]]:
    """Each fall seen crossing the paddle row: the true crossing column and the predictions made during it.

    The truth comes from the emulator frames under MaxAndSkip: the ball's centre on the last
    frame above the paddle row and the first on or below it, interpolated to the row. The fall
    began after the last frame without a ball or with the ball going up; its predictions are
    those of the agent steps whose observation pooled frames of the fall.
    """
    balls = [detect_ball(frame) for frame in played.raw]
    falls = []
    for k in range(len(balls) - 1):
        above, below = balls[k], balls[k + 1]
        if above is None or below is None or above.entering or not above.row < G.PADDLE_ROW <= below.row:
            continue
        column = above.col + (below.col - above.col) * (G.PADDLE_ROW - above.row) / (below.row - above.row)
        start = k
        while start > 0 and balls[start - 1] is not None and balls[start - 1].row < balls[start].row:
            start -= 1
        predictions = [impact for end, impact in played.steps if start <= end <= k and impact is not None]
        if predictions:
            falls.append((column, predictions))
    return falls


@pytest.mark.slow
def test_predicted_column_meets_the_real_ball_at_the_paddle_row() -> None:
    falls = falls_with_predictions(play_recording_raw_frames(REAL_GAME_STEPS, seed=0))
    last = np.array([abs(predictions[-1] - column) for column, predictions in falls])
    every = np.array([abs(impact - column) for column, predictions in falls for impact in predictions])
    print(f"{len(falls)} falls, {len(every)} predictions: last one within 4 px {np.mean(last <= 4):.0%}, "
          f"all within 2 px {np.mean(every <= 2):.0%}, within 4 px {np.mean(every <= 4):.0%}, "
          f"median error {np.median(every):.2f} px")
    assert len(falls) >= 15
    # the prediction made when the ball was last seen going down: where the paddle must be
    assert np.mean(last <= 4) >= 0.95
    # every prediction of the fall, the first ones from a short segment included (3_obswrapper/README.md)
    assert np.mean(every <= 2) >= 0.9 and np.mean(every <= 4) >= 0.93
