"""Tests for rlbreakout.aimbot: geometry on real frames, detection, prediction, tracking, the wrapper."""

from __future__ import annotations

import itertools
import warnings

import gymnasium as gym
import numpy as np
import pytest

from rlbreakout import aimbot as A
from rlbreakout.aimbot import (
    AimbotView,
    BallPosition,
    BallTracker,
    BreakoutObservationWrapper,
    agent_view_frame,
    detect_ball,
    detect_paddle,
    marker_columns,
    predict_impact_column,
    synthetic_frame,
)
from rlbreakout.envs import register_ale
from rlbreakout.errors import ConfigError

GREY = A.WALL_COLOUR


def ball_frame(row: float, col: float, paddle_left: int = 72) -> np.ndarray:
    """Frame with the ball centred at (row, col) and a 16-px paddle."""
    return synthetic_frame((row, col), paddle_left)


def simulate(row: float, col: float, v_row: float, v_col: float, steps: int) -> list[tuple[float, float]]:
    """Reference path of a point bouncing off Breakout's side walls (by repeated reflection)."""
    path = [(row, col)]
    for _ in range(steps):
        row, col = row + v_row, col + v_col
        while not A.LEFT_WALL <= col <= A.RIGHT_WALL:
            col = 2 * A.LEFT_WALL - col if col < A.LEFT_WALL else 2 * A.RIGHT_WALL - col
            v_col = -v_col
        path.append((row, col))
    return path


# %% Geometry, checked on real ALE frames


@pytest.fixture(scope="module")
def real_reset_frame() -> np.ndarray:
    register_ale()
    env = gym.make("BreakoutNoFrameskip-v4")
    frame, _ = env.reset(seed=0)
    env.close()
    return frame


def test_geometry_constants_match_a_real_reset_frame(real_reset_frame: np.ndarray) -> None:
    f = real_reset_frame
    assert f.shape == (A.SCREEN_HEIGHT, A.SCREEN_WIDTH, A.SCREEN_CHANNELS)
    top_wall = f[A.TOP_WALL_ROWS[0]:A.TOP_WALL_ROWS[1] + 1]
    assert (top_wall == GREY).all()
    assert not (f[A.TOP_WALL_ROWS[0] - 1] == GREY).all() and not (f[A.TOP_WALL_ROWS[1] + 1] == GREY).all()
    side = slice(A.PLAYFIELD_ROWS[0], A.BALL_SEARCH_ROWS[1] + 1)
    assert (f[side, A.LEFT_WALL_COLS[0]:A.LEFT_WALL_COLS[1] + 1] == GREY).all()
    assert (f[side, A.RIGHT_WALL_COLS[0]:A.RIGHT_WALL_COLS[1] + 1] == GREY).all()
    bricks = f[A.BRICK_ROWS[0]:A.BRICK_ROWS[1] + 1, A.PLAYFIELD_COLS[0]:A.PLAYFIELD_COLS[1] + 1]
    assert np.any(bricks != 0, axis=2).all(), "a full wall of bricks at reset"
    bands = [tuple(bricks[i * A.BRICK_BAND_HEIGHT, 0]) for i in range(A.N_BRICK_BANDS)]
    assert len(set(bands)) == A.N_BRICK_BANDS and bands[0] == A.BALL_COLOUR
    assert A.BRICK_ROWS[1] - A.BRICK_ROWS[0] + 1 == A.N_BRICK_BANDS * A.BRICK_BAND_HEIGHT
    search = f[A.BALL_SEARCH_ROWS[0]:A.BALL_SEARCH_ROWS[1] + 1, A.PLAYFIELD_COLS[0]:A.PLAYFIELD_COLS[1] + 1]
    assert not search.any(), "nothing but the ball may show in the search area"
    paddle = detect_paddle(f)
    assert paddle is not None and paddle.width == A.PADDLE_START_WIDTH
    assert (f[A.PADDLE_ROWS[0], paddle.left] == A.BALL_COLOUR).all()
    assert (f[A.CORNER_ROWS[0]:A.CORNER_ROWS[1], A.RIGHT_WALL_COLS[0]:] == A.BALL_COLOUR).all()
    assert not f[A.MARKER_ROWS[0]:].any(), "the marker rows are black"


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
            assert A.BALL_SEARCH_ROWS[0] - A.BALL_HEIGHT < ball.row < A.BALL_SEARCH_ROWS[1] + A.BALL_HEIGHT
            assert A.LEFT_WALL <= ball.col <= A.RIGHT_WALL
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
    assert min(cols) == pytest.approx(A.LEFT_WALL) and max(cols) == pytest.approx(A.RIGHT_WALL)


# %% Detection on synthetic frames


def test_detect_ball_and_paddle_at_known_places() -> None:
    frame = synthetic_frame((121.5, 60.5), paddle_left=40)
    assert detect_ball(frame) == BallPosition(row=121.5, col=60.5)
    assert detect_paddle(frame) == A.PaddleSpan(40, 55)
    assert detect_paddle(frame).centre == 47.5


def test_no_ball_before_fire() -> None:
    assert detect_ball(synthetic_frame(None, paddle_left=40)) is None


def test_ball_half_hidden_by_a_wall_is_centred_from_its_visible_edge() -> None:
    assert detect_ball(synthetic_frame((121.5, 7.5))).col == A.LEFT_WALL  # only column 8 visible
    assert detect_ball(synthetic_frame((121.5, 151.5))).col == A.RIGHT_WALL  # only column 151 visible


def test_ball_entering_from_the_bricks_and_touching_the_paddle() -> None:
    entering = detect_ball(synthetic_frame((92.5, 60.5)))  # rows 91-94, only 93-94 searched
    assert entering.row == 92.5 and entering.entering
    at_paddle = detect_ball(synthetic_frame((A.PADDLE_ROW, 60.5), paddle_left=50))
    assert at_paddle.row == A.PADDLE_ROW and not at_paddle.entering


def test_a_ball_touching_the_paddle_row_does_not_widen_the_paddle() -> None:
    frame = synthetic_frame((A.PADDLE_ROW, 40.5), paddle_left=50)  # ball rows 186-189, paddle 189-192
    assert frame[A.PADDLE_ROWS[0], 40:42].any()
    assert detect_paddle(frame) == A.PaddleSpan(50, 65)


def test_synthetic_frame_rejects_an_off_grid_ball() -> None:
    with pytest.raises(ConfigError, match="2x4 sprite"):
        synthetic_frame((100.0, 60.5))


def test_paddle_search_ignores_the_red_bottom_right_corner() -> None:
    paddle = detect_paddle(synthetic_frame(None, paddle_left=140, paddle_width=12))
    assert paddle == A.PaddleSpan(140, 151)
    assert detect_paddle(synthetic_frame(None, paddle_left=None)) is None


def test_detection_rejects_a_resized_frame() -> None:
    with pytest.raises(ConfigError, match="210x160x3"):
        detect_ball(np.zeros((84, 84, 1), dtype=np.uint8))


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
    assert (A.LEFT_WALL, A.RIGHT_WALL, A.PADDLE_ROW) == (7.5, 151.5, 187.5)
    # ball centre 5 px right of the left wall, 3 px left per row: bounces at 7.5, lands 2*7.5 - (12.5 - 30) ...
    got = predict_impact_column(A.PADDLE_ROW - 10, 12.5, 1.0, -3.0)
    assert got == pytest.approx(2 * A.LEFT_WALL - (12.5 - 30.0))


def test_predict_impact_column_rejects_inverted_walls() -> None:
    with pytest.raises(ConfigError, match="right_wall"):
        predict_impact_column(0.0, 5.0, 1.0, 1.0, left_wall=10.0, right_wall=10.0, paddle_row=5.0)


# %% Velocity and tracking on synthetic frames


def track(frames: list[np.ndarray], tracker: BallTracker | None = None) -> list[A.BallMotion | None]:
    tracker = tracker or BallTracker()
    return [tracker.update(detect_ball(f)) for f in frames]


def test_velocity_from_two_frames() -> None:
    motions = track([ball_frame(100.5, 60.5), ball_frame(108.5, 66.5)])
    assert motions[0] is None
    assert (motions[1].v_row, motions[1].v_col) == (8.0, 6.0)


@pytest.mark.parametrize(("start_col", "v_col"), [(30.5, -6.0), (129.5, 6.0)], ids=["left_wall", "right_wall"])
def test_velocity_and_marker_through_a_wall_bounce(start_col: float, v_col: float) -> None:
    """The bounce happens between two frames; the velocity must come out reflected, not shortened."""
    path = simulate(100.5, start_col, 8.0, v_col, 9)
    view = AimbotView(colour="rgb", crop="keep", resize=None)
    expected_impact = predict_impact_column(*path[0], 8.0, v_col)
    for i, (row, col) in enumerate(path):
        obs = view(ball_frame(row, col))
        if i == 0:
            assert view.last_motion is None and not (obs[A.MARKER_ROWS[0]] == A.MARKER_COLOUR_RGB).all(axis=1).any()
            continue
        motion = view.last_motion
        assert motion.v_row == pytest.approx(8.0)
        assert abs(motion.v_col) == pytest.approx(6.0)
        assert view.last_impact == pytest.approx(expected_impact), f"step {i}"
        marked = np.flatnonzero((obs[A.MARKER_ROWS[0]] == A.MARKER_COLOUR_RGB).all(axis=1))
        assert marked.size == A.MARKER_WIDTH
        assert (marked[0] + marked[-1]) / 2 == pytest.approx(expected_impact, abs=0.5)
    bounced = [c for (_, c) in path]
    assert min(bounced) >= A.LEFT_WALL and max(bounced) <= A.RIGHT_WALL
    assert np.sign(path[-1][1] - path[-2][1]) == -np.sign(v_col), "the path really bounced"


def test_velocity_is_exact_for_any_frameskip_even_random() -> None:
    """Sample one straight path every 1, 4 or 2-4 (random) frames: the direction is the same."""
    fine = simulate(95.5, 40.5, 1.0, 1.0, 90)
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
    for _ in range(A.MAX_MISSING_STEPS + 1):
        tracker.update(None)
    assert tracker.update(detect_ball(ball_frame(120.5, 30.5))) is None


def test_one_missing_frame_is_bridged() -> None:
    """At 2 px/frame the ball can hide fully behind a wall for one frame."""
    tracker = BallTracker()
    track([ball_frame(100.5, 60.5), ball_frame(108.5, 66.5)], tracker)
    assert tracker.update(None) is None
    motion = tracker.update(detect_ball(ball_frame(124.5, 78.5)))
    assert (motion.v_row, motion.v_col) == (8.0, 6.0)


# %% Marker


def test_marker_columns_floor_and_clip() -> None:
    assert marker_columns(60.5) == (59, 63)
    assert marker_columns(A.LEFT_WALL) == (6, 10)
    assert marker_columns(-1.6) == (0, 1), "floor(-2.6) = -3, where int() would give -2 and a 2-px marker"
    assert marker_columns(158.7) == (157, 160)
    assert marker_columns(500.0) == (160, 160) and marker_columns(-50.0) == (0, 0), "wholly outside: empty"


@pytest.mark.parametrize("crop", A.CROP_CHOICES)
def test_marker_is_clipped_to_the_frame_at_the_right_wall(crop: str) -> None:
    view = AimbotView(colour="mono", crop=crop, resize=None)
    obs = view.render(ball_frame(150.5, 100.5), impact_col=A.RIGHT_WALL)
    assert obs.shape == view.shape and obs.dtype == np.uint8
    marker_row = A.MARKER_ROWS[0] - (A.TRIM_ROWS[0] if crop == "trim" else 0)
    lit = np.flatnonzero(obs[marker_row, :, 0])
    if crop == "trim":  # cut at the playfield's edge, in trimmed coordinates
        assert lit.tolist() == [A.PLAYFIELD_COLS[1] - A.TRIM_COLS[0] - 1, A.PLAYFIELD_COLS[1] - A.TRIM_COLS[0]]
    elif crop == "blacken":  # same cut, screen coordinates
        assert lit.tolist() == [150, 151]
    else:  # the whole 4-px marker, over the (black) rows below the right wall
        assert lit.tolist() == list(range(150, 154))


# %% Observations: every option, uint8 and matching the space


@pytest.mark.parametrize(("colour", "crop", "prediction", "resize"), list(itertools.product(
    A.COLOUR_CHOICES, A.CROP_CHOICES, A.PREDICTION_CHOICES, [None, (84, 84), 64])))
def test_every_option_gives_uint8_matching_the_space(colour: str, crop: str, prediction: str, resize) -> None:
    view = AimbotView(colour=colour, crop=crop, prediction=prediction, resize=resize)
    view(ball_frame(100.5, 60.5))
    obs = view(ball_frame(108.5, 66.5))
    assert obs.dtype == np.uint8 and obs.shape == view.shape
    assert view.observation_space().contains(obs)
    if colour == "mono":
        assert set(np.unique(obs)) <= {0, 255}


def test_native_shapes() -> None:
    assert AimbotView(crop="trim", resize=None).shape == (168, 144, 1)
    assert AimbotView(colour="rgb", crop="keep", resize=None).shape == (210, 160, 3)
    assert AimbotView(colour="grey", crop="blacken", resize=None).shape == (210, 160, 1)
    assert AimbotView().shape == (84, 84, 1)


def test_blacken_removes_score_and_walls_but_keeps_the_layout(real_reset_frame: np.ndarray) -> None:
    obs = AimbotView(colour="rgb", crop="blacken", resize=None, prediction="none").render(real_reset_frame, None)
    assert not obs[:A.TRIM_ROWS[0]].any() and not obs[:, :A.TRIM_COLS[0]].any() and not obs[:, A.TRIM_COLS[1] + 1:].any()
    assert (obs[A.BRICK_ROWS[0]:A.BRICK_ROWS[1] + 1, 8:152] == real_reset_frame[A.BRICK_ROWS[0]:A.BRICK_ROWS[1] + 1, 8:152]).all()


def test_mono_84x84_keeps_ball_and_marker_visible() -> None:
    view = AimbotView()  # mono, trim, marker, 84x84: the tutorial's view
    view(ball_frame(100.5, 60.5, paddle_left=20))
    obs = view(ball_frame(108.5, 66.5, paddle_left=20))
    impact = view.last_impact
    marker_band = obs[-2:, :, 0]  # marker rows 196-199 are the last 4 of 168 trimmed rows -> last 2 of 84
    lit = np.flatnonzero(marker_band.any(axis=0))
    assert lit.size > 0
    scale = 84 / 144
    assert abs(lit.mean() - (impact - A.TRIM_COLS[0]) * scale) <= 2
    ball_rows = obs[(100 - 32) // 2:(112 - 32) // 2 + 2, :, 0]
    assert ball_rows.any(), "the 2-px ball survives the shrink"


@pytest.mark.parametrize(("option", "value"), [("colour", "gray"), ("crop", "cut"), ("prediction", "line")])
def test_unknown_options_raise_with_the_choices(option: str, value: str) -> None:
    with pytest.raises(ConfigError, match="choose one of") as info:
        AimbotView(**{option: value})
    assert str(info.value).count("\n") == 0


@pytest.mark.parametrize("resize", [0, (84,), (84, -1), "84x84", 8.5, True])
def test_bad_resize_raises(resize) -> None:
    with pytest.raises(ConfigError, match="resize"):
        AimbotView(resize=resize)


# %% The gymnasium wrapper


class ScriptedFrames(gym.Env):
    """A fake env replaying given frames per episode (to test reset behaviour exactly)."""

    observation_space = gym.spaces.Box(0, 255, (A.SCREEN_HEIGHT, A.SCREEN_WIDTH, 3), np.uint8)
    action_space = gym.spaces.Discrete(4)

    def __init__(self, episodes: list[list[np.ndarray]]) -> None:
        self.episodes, self.episode, self.t = episodes, -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self.episodes[self.episode][0], {}

    def step(self, action):
        self.t += 1
        frames = self.episodes[self.episode]
        return frames[self.t], 0.0, self.t == len(frames) - 1, False, {}


def test_wrapper_resets_velocity_between_episodes() -> None:
    first = [ball_frame(100.5, 60.5), ball_frame(108.5, 66.5)]
    # Second episode starts with the ball elsewhere; without a reset, 60.5 -> 20.5 would be read
    # as a velocity and a marker drawn on its first frame.
    second = [ball_frame(150.5, 20.5), ball_frame(158.5, 24.5)]
    env = BreakoutObservationWrapper(ScriptedFrames([first, second]), colour="rgb", crop="keep", resize=None)
    env.reset()
    env.step(0)
    assert env.view.last_motion is not None
    obs, _ = env.reset()
    assert env.view.last_motion is None and env.view.last_impact is None
    assert not (obs[A.MARKER_ROWS[0]] == A.MARKER_COLOUR_RGB).all(axis=1).any()
    env.step(0)
    assert (env.view.last_motion.v_row, env.view.last_motion.v_col) == (8.0, 4.0)


def test_wrapper_rejects_non_rgb_frames() -> None:
    class Small(ScriptedFrames):
        observation_space = gym.spaces.Box(0, 255, (84, 84, 1), np.uint8)

    with pytest.raises(ConfigError, match="RGB 210x160x3"):
        BreakoutObservationWrapper(Small([]))


def make_real(**options) -> gym.Env:
    register_ale()
    return BreakoutObservationWrapper(gym.make("BreakoutNoFrameskip-v4"), **options)


OPTION_GRID = list(itertools.product(A.COLOUR_CHOICES, A.CROP_CHOICES, A.PREDICTION_CHOICES))


@pytest.mark.slow
@pytest.mark.parametrize(("colour", "crop", "prediction"), OPTION_GRID)
def test_gymnasium_and_sb3_env_checkers_pass(colour: str, crop: str, prediction: str) -> None:
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    options = {"colour": colour, "crop": crop, "prediction": prediction}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium notes the env is wrapped; not a failure
        gym_check_env(make_real(**options), skip_render_check=True)  # 84x84
    sb3_check_env(make_real(**options, resize=None), warn=False)  # native size


def test_make_env_builds_the_aimbot_stack() -> None:
    from rlbreakout.envs import make_env

    venv = make_env("BreakoutNoFrameskip-v4", 2, wrapper="aimbot", frame_stack=4)
    try:
        obs = venv.reset()
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        obs, *_ = venv.step(np.array([1, 2]))
        assert set(np.unique(obs)) <= {0, 255}
    finally:
        venv.close()
    venv = make_env("BreakoutNoFrameskip-v4", 1, wrapper="aimbot", frame_stack=2,
                    wrapper_kwargs={"colour": "rgb", "crop": "keep", "prediction": "none", "resize": None})
    try:
        assert venv.reset().shape == (1, 6, 210, 160)
    finally:
        venv.close()


def test_make_env_unknown_aimbot_option_is_a_config_error() -> None:
    from rlbreakout.envs import make_env

    with pytest.raises(ConfigError, match="choose one of: rgb, grey, mono"):
        make_env("BreakoutNoFrameskip-v4", 1, wrapper="aimbot", wrapper_kwargs={"colour": "purple"})
    with pytest.raises(ConfigError):
        make_env("BreakoutNoFrameskip-v4", 1, wrapper="aimbot", wrapper_kwargs={"zoom": 2})


# %% Agent's view


@pytest.mark.parametrize("shape", [(84, 84, 1), (84, 84), (168, 144, 3)])
def test_agent_view_frame_puts_the_observation_beside_the_screen(shape: tuple[int, ...]) -> None:
    screen = ball_frame(100.5, 60.5)
    observation = np.full(shape, 255, dtype=np.uint8)
    image = agent_view_frame(screen, observation)
    scaled_width = round(shape[1] * A.SCREEN_HEIGHT / shape[0])
    assert image.dtype == np.uint8 and image.shape[0] == A.SCREEN_HEIGHT and image.shape[2] == 3
    assert image.shape[1] > A.SCREEN_WIDTH + scaled_width - 1
    assert (image[:, :A.SCREEN_WIDTH] == screen).all()
    assert (image[:, -scaled_width:] == 255).all()
    assert not image[:, A.SCREEN_WIDTH:image.shape[1] - scaled_width].any(), "a black gap between the two"
