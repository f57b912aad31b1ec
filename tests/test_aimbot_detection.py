"""Tests for rlbreakout.aimbot.geometry and .detection: the constants on real frames, ball and paddle detection."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from fakes import real_reset_frame as reset_frame
from fakes import synthetic_frame
from helpers import play_recording_raw_frames
from rlbreakout.aimbot import geometry as G
from rlbreakout.aimbot.detection import BallPosition, PaddleSpan, ball_from_lit, detect_ball, detect_paddle
from rlbreakout.env_ids import register_ale
from rlbreakout.errors import ConfigError

# %% Geometry, checked on real ALE frames


@pytest.fixture(scope="module")
def real_reset_frame() -> np.ndarray:
    return reset_frame()


def test_geometry_constants_match_a_real_reset_frame(real_reset_frame: np.ndarray) -> None:
    f = real_reset_frame
    assert f.shape == (G.SCREEN_HEIGHT, G.SCREEN_WIDTH, G.SCREEN_CHANNELS)
    top_wall = f[G.TOP_WALL_ROWS[0]:G.TOP_WALL_ROWS[1] + 1]
    assert (top_wall == G.WALL_COLOUR).all()
    assert not (f[G.TOP_WALL_ROWS[0] - 1] == G.WALL_COLOUR).all() and not (f[G.TOP_WALL_ROWS[1] + 1] == G.WALL_COLOUR).all()
    side = slice(G.PLAYFIELD_ROWS[0], G.BALL_SEARCH_ROWS[1] + 1)
    assert (f[side, G.LEFT_WALL_COLS[0]:G.LEFT_WALL_COLS[1] + 1] == G.WALL_COLOUR).all()
    assert (f[side, G.RIGHT_WALL_COLS[0]:G.RIGHT_WALL_COLS[1] + 1] == G.WALL_COLOUR).all()
    bricks = f[G.BRICK_ROWS[0]:G.BRICK_ROWS[1] + 1, G.PLAYFIELD_COLS[0]:G.PLAYFIELD_COLS[1] + 1]
    assert np.any(bricks != 0, axis=2).all(), "a full wall of bricks at reset"
    bands = [tuple(bricks[i * G.BRICK_BAND_HEIGHT, 0]) for i in range(G.N_BRICK_BANDS)]
    assert len(set(bands)) == G.N_BRICK_BANDS and bands[0] == G.BALL_COLOUR
    assert G.BRICK_ROWS[1] - G.BRICK_ROWS[0] + 1 == G.N_BRICK_BANDS * G.BRICK_BAND_HEIGHT
    search = f[G.BALL_SEARCH_ROWS[0]:G.BALL_SEARCH_ROWS[1] + 1, G.PLAYFIELD_COLS[0]:G.PLAYFIELD_COLS[1] + 1]
    assert not search.any(), "nothing but the ball may show in the search area"
    paddle = detect_paddle(f)
    assert paddle is not None and paddle.width == G.PADDLE_START_WIDTH
    assert (f[G.PADDLE_ROWS[0], paddle.left] == G.BALL_COLOUR).all()
    assert (f[G.CORNER_ROWS[0]:G.CORNER_ROWS[1], G.RIGHT_WALL_COLS[0]:] == G.BALL_COLOUR).all()
    assert not f[G.MARKER_ROWS[0]:].any(), "the marker rows are black"


@pytest.mark.slow
def test_real_frames_paddle_always_found_ball_after_fire() -> None:
    register_ale()
    env = gym.make("BreakoutNoFrameskip-v4")
    frame, _ = env.reset(seed=0)
    for _ in range(10):  # before FIRE: no ball
        assert detect_ball(frame) is None and detect_paddle(frame) is not None
        frame, *_ = env.step(0)
    frame, _, _, _, info = env.step(1)  # FIRE
    lives, rng, seen, lost = info["lives"], np.random.default_rng(0), [], 0
    for _ in range(1500):
        assert detect_paddle(frame) is not None
        ball = detect_ball(frame)
        seen.append(ball is not None)
        if ball is not None:  # always inside the search area and between the walls
            assert G.BALL_SEARCH_ROWS[0] - G.BALL_HEIGHT < ball.row < G.BALL_SEARCH_ROWS[1] + G.BALL_HEIGHT
            assert G.LEFT_WALL <= ball.col <= G.RIGHT_WALL
        action = int(rng.integers(4))
        if info["lives"] < lives:  # a life lost: no ball until FIRE
            lives, lost, action = info["lives"], lost + 1, 1
            assert ball is None
        frame, _, terminated, _, info = env.step(action)
        if terminated:
            break
    assert seen[0], "the ball is visible right after FIRE"
    assert sum(seen) > 100 and lost >= 1


@pytest.mark.slow
def test_ball_edges_turn_at_columns_7_and_151_on_real_frames() -> None:
    """Track the ball frame by frame: its centre never leaves [LEFT_WALL - 1, RIGHT_WALL + 1]."""
    register_ale()
    env = gym.make("BreakoutNoFrameskip-v4")
    env.reset(seed=1)
    frame, *_ = env.step(1)
    cols = []
    for _ in range(1500):
        ball = detect_ball(frame)
        paddle = detect_paddle(frame)
        if ball is not None:
            cols.append(ball.col)
        action = 1 if ball is None else (2 if paddle.centre < ball.col - 4 else 3 if paddle.centre > ball.col + 4 else 0)
        frame, _, terminated, _, _ = env.step(action)
        if terminated:
            break
    assert min(cols) == pytest.approx(G.LEFT_WALL) and max(cols) == pytest.approx(G.RIGHT_WALL)


# %% Detection on synthetic frames


def test_detect_ball_and_paddle_at_known_places() -> None:
    frame = synthetic_frame((121.5, 60.5), paddle_left=40)
    assert detect_ball(frame) == BallPosition(row=121.5, col=60.5)
    assert detect_paddle(frame) == PaddleSpan(40, 55)
    assert detect_paddle(frame).centre == 47.5


def test_no_ball_before_fire() -> None:
    assert detect_ball(synthetic_frame(None, paddle_left=40)) is None


def test_ball_half_hidden_by_a_wall_is_centred_from_its_visible_edge() -> None:
    assert detect_ball(synthetic_frame((121.5, 7.5))).col == G.LEFT_WALL  # only column 8 visible
    assert detect_ball(synthetic_frame((121.5, 151.5))).col == G.RIGHT_WALL  # only column 151 visible


def test_ball_entering_from_the_bricks_and_touching_the_paddle() -> None:
    entering = detect_ball(synthetic_frame((92.5, 60.5)))  # rows 91-94, only 93-94 searched
    assert entering.row == 92.5 and entering.entering
    at_paddle = detect_ball(synthetic_frame((G.PADDLE_ROW, 60.5), paddle_left=50))
    assert at_paddle.row == G.PADDLE_ROW and not at_paddle.entering


def test_a_ball_touching_the_paddle_row_does_not_widen_the_paddle() -> None:
    frame = synthetic_frame((G.PADDLE_ROW, 40.5), paddle_left=50)  # ball rows 186-189, paddle 189-192
    assert frame[G.PADDLE_ROWS[0], 40:42].any()
    assert detect_paddle(frame) == PaddleSpan(50, 65)


def test_a_ball_sunk_into_the_paddle_rows_does_not_widen_the_paddle() -> None:
    """Lit in paddle rows 189-190 but not 191-192 (a ball one row lower than a real one reaches): not paddle."""
    frame = synthetic_frame((G.PADDLE_ROW + 1, 40.5), paddle_left=50)  # ball rows 187-190
    assert frame[G.PADDLE_ROWS[0] + 1, 40:42].any() and not frame[G.PADDLE_ROWS[0] + 2, 40:42].any()
    assert detect_paddle(frame) == PaddleSpan(50, 65)


def test_a_span_touching_both_search_limits_is_centred_between_them() -> None:
    """Clipped at both ends there is no visible edge to measure from: the centre of the span."""
    rows, cols = G.BALL_SEARCH_ROWS, G.BALL_SEARCH_COLS
    ball = ball_from_lit(np.ones(rows[1] - rows[0] + 1, bool), np.ones(cols[1] - cols[0] + 1, bool))
    assert (ball.row, ball.col) == ((rows[0] + rows[1]) / 2, (cols[0] + cols[1]) / 2) and ball.entering


def test_synthetic_frame_rejects_an_off_grid_ball() -> None:
    with pytest.raises(ConfigError, match="2x4 sprite"):
        synthetic_frame((100.0, 60.5))


def test_paddle_search_ignores_the_red_bottom_right_corner() -> None:
    paddle = detect_paddle(synthetic_frame(None, paddle_left=140, paddle_width=12))
    assert paddle == PaddleSpan(140, 151)
    assert detect_paddle(synthetic_frame(None, paddle_left=None)) is None


def test_detection_rejects_a_resized_frame() -> None:
    with pytest.raises(ConfigError, match="210x160x3"):
        detect_ball(np.zeros((84, 84, 1), dtype=np.uint8))



@pytest.mark.slow
def test_a_max_pooled_frame_shows_the_ball_twice_and_its_centre_is_their_union_s() -> None:
    # MaxAndSkip pools the last two emulator frames of a step: the ball drawn at both places.
    raw = play_recording_raw_frames(150, seed=0).raw
    rows, cols = G.BALL_SEARCH_ROWS, G.BALL_SEARCH_COLS
    pairs = 0
    for first, second in zip(raw, raw[1:]):
        a, b = detect_ball(first), detect_ball(second)
        inside = all(ball is not None and not ball.entering and rows[0] + 2 < ball.row < rows[1] - 2
                     and cols[0] + 3 < ball.col < cols[1] - 3 for ball in (a, b))
        if not inside or (a.row, a.col) == (b.row, b.col):
            continue
        pooled = detect_ball(np.maximum(first, second))
        assert (pooled.row, pooled.col) == ((a.row + b.row) / 2, (a.col + b.col) / 2)
        pairs += 1
    assert pairs >= 50
