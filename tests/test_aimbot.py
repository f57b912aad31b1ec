"""Tests for rlbreakout.aimbot.view: the marker, every observation option, the gymnasium wrapper, make_env's aimbot stack."""

from __future__ import annotations

import itertools
import warnings

import gymnasium as gym
import numpy as np
import pytest

from fakes import ScriptedFrames, ball_frame, bounce_path
from fakes import real_reset_frame as reset_frame
from rlbreakout import aimbot as A
from rlbreakout.aimbot import AimbotView, BreakoutObservationWrapper, marker_columns, predict_impact_column
from rlbreakout.aimbot import geometry as G
from rlbreakout.env_ids import register_ale
from rlbreakout.errors import ConfigError


@pytest.fixture(scope="module")
def real_reset_frame() -> np.ndarray:
    return reset_frame()


# %% The marker follows the prediction through a wall bounce


@pytest.mark.parametrize(("start_col", "v_col"), [(30.5, -6.0), (129.5, 6.0)], ids=["left_wall", "right_wall"])
def test_velocity_and_marker_through_a_wall_bounce(start_col: float, v_col: float) -> None:
    """The bounce happens between two frames; the velocity must come out reflected, not shortened."""
    path = bounce_path(100.5, start_col, 8.0, v_col, 9)
    view = AimbotView(colour="rgb", crop="keep", resize=None)
    expected_impact = predict_impact_column(*path[0], 8.0, v_col)
    for i, (row, col) in enumerate(path):
        obs = view(ball_frame(row, col))
        if i == 0:
            assert view.last_motion is None and not (obs[G.MARKER_ROWS[0]] == G.MARKER_COLOUR_RGB).all(axis=1).any()
            continue
        motion = view.last_motion
        assert motion.v_row == pytest.approx(8.0)
        assert abs(motion.v_col) == pytest.approx(6.0)
        assert view.last_impact == pytest.approx(expected_impact), f"step {i}"
        marked = np.flatnonzero((obs[G.MARKER_ROWS[0]] == G.MARKER_COLOUR_RGB).all(axis=1))
        assert marked.size == G.MARKER_WIDTH
        assert (marked[0] + marked[-1]) / 2 == pytest.approx(expected_impact, abs=0.5)
    bounced = [c for (_, c) in path]
    assert min(bounced) >= G.LEFT_WALL and max(bounced) <= G.RIGHT_WALL
    assert np.sign(path[-1][1] - path[-2][1]) == -np.sign(v_col), "the path really bounced"


# %% Marker


def test_marker_columns_floor_and_clip() -> None:
    assert marker_columns(60.5) == (59, 63)
    assert marker_columns(G.LEFT_WALL) == (6, 10)
    assert marker_columns(-1.6) == (0, 1), "floor(-2.6) = -3, where int() would give -2 and a 2-px marker"
    assert marker_columns(158.7) == (157, 160)
    assert marker_columns(500.0) == (160, 160) and marker_columns(-50.0) == (0, 0), "wholly outside: empty"


@pytest.mark.parametrize("crop", A.CROP_CHOICES)
def test_marker_is_clipped_to_the_frame_at_the_right_wall(crop: str) -> None:
    view = AimbotView(colour="mono", crop=crop, resize=None)
    obs = view.render(ball_frame(150.5, 100.5), impact_col=G.RIGHT_WALL)
    assert obs.shape == view.shape and obs.dtype == np.uint8
    marker_row = G.MARKER_ROWS[0] - (G.TRIM_ROWS[0] if crop == "trim" else 0)
    lit = np.flatnonzero(obs[marker_row, :, 0])
    if crop == "trim":  # cut at the playfield's edge, in trimmed coordinates
        assert lit.tolist() == [G.PLAYFIELD_COLS[1] - G.TRIM_COLS[0] - 1, G.PLAYFIELD_COLS[1] - G.TRIM_COLS[0]]
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
    assert not obs[:G.TRIM_ROWS[0]].any() and not obs[:, :G.TRIM_COLS[0]].any() and not obs[:, G.TRIM_COLS[1] + 1:].any()
    assert (obs[G.BRICK_ROWS[0]:G.BRICK_ROWS[1] + 1, 8:152] == real_reset_frame[G.BRICK_ROWS[0]:G.BRICK_ROWS[1] + 1, 8:152]).all()


@pytest.mark.parametrize("colour", ["rgb", "grey", "mono"])
@pytest.mark.parametrize("crop", ["keep", "blacken", "trim"])
def test_render_leaves_the_callers_frame_as_it_was(real_reset_frame: np.ndarray, colour: str, crop: str) -> None:
    """The marker and the blackening go on a copy: the env's frame (a gif's, a replay's) keeps no marker."""
    frame = real_reset_frame.copy()
    AimbotView(colour=colour, crop=crop, resize=None).render(frame, 80.0)
    assert np.array_equal(frame, real_reset_frame)


def test_mono_84x84_keeps_ball_and_marker_visible() -> None:
    view = AimbotView()  # mono, trim, marker, 84x84: the tutorial's view
    view(ball_frame(100.5, 60.5, paddle_left=20))
    obs = view(ball_frame(108.5, 66.5, paddle_left=20))
    impact = view.last_impact
    marker_band = obs[-2:, :, 0]  # marker rows 196-199 are the last 4 of 168 trimmed rows -> last 2 of 84
    lit = np.flatnonzero(marker_band.any(axis=0))
    assert lit.size > 0
    scale = 84 / 144
    assert abs(lit.mean() - (impact - G.TRIM_COLS[0]) * scale) <= 2
    ball_rows = obs[(100 - 32) // 2:(112 - 32) // 2 + 2, :, 0]
    assert ball_rows.any(), "the 2-px ball survives the shrink"


@pytest.mark.parametrize(("option", "value"), [("colour", "gray"), ("crop", "cut"), ("prediction", "line")])
def test_unknown_options_raise_with_the_choices(option: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^unknown aimbot {option} '{value}'; choose one of") as info:
        AimbotView(**{option: value})
    assert str(info.value).count("\n") == 0


@pytest.mark.parametrize("resize", [0, (84,), (84, -1), "84x84", 8.5, True, (84, True), (0, 84)])
def test_bad_resize_raises(resize) -> None:
    with pytest.raises(ConfigError, match="resize"):
        AimbotView(resize=resize)


def test_the_smallest_resize_is_one_pixel() -> None:
    assert AimbotView(resize=1).shape == (1, 1, 1) and AimbotView(resize=(1, 3)).shape == (1, 3, 1)
    assert AimbotView(resize=(1, 3)).render(ball_frame(100.5, 60.5), None).shape == (1, 3, 1)


# %% Observations, pixel for pixel


def recoloured(frame: np.ndarray, colour: str, impact_col: float) -> np.ndarray:
    """The whole screen in ``colour`` with the 4x4 marker centred on ``impact_col``, built by hand."""
    import cv2

    first, stop = marker_columns(impact_col)
    if colour == "rgb":
        image = frame.copy()
        image[G.MARKER_ROWS[0]:G.MARKER_ROWS[1] + 1, first:stop] = G.MARKER_COLOUR_RGB
        return image
    if colour == "grey":
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        image[G.MARKER_ROWS[0]:G.MARKER_ROWS[1] + 1, first:stop] = G.MARKER_VALUE_GREY
    else:
        image = np.where(frame.any(axis=2), 255, 0).astype(np.uint8)
        image[G.MARKER_ROWS[0]:G.MARKER_ROWS[1] + 1, first:stop] = 255
    return image[:, :, None]


@pytest.mark.parametrize("colour", A.COLOUR_CHOICES)
def test_each_colour_is_the_screen_recoloured_with_a_4_row_marker(real_reset_frame: np.ndarray, colour: str) -> None:
    obs = AimbotView(colour=colour, crop="keep", resize=None).render(real_reset_frame, impact_col=60.5)
    assert np.array_equal(obs, recoloured(real_reset_frame, colour, 60.5))
    if colour == "grey":
        assert len(np.unique(obs)) > 2, "grey keeps the levels between black and white"


def test_render_leaves_the_callers_frame_untouched(real_reset_frame: np.ndarray) -> None:
    frame = real_reset_frame.copy()
    for colour in A.COLOUR_CHOICES:
        AimbotView(colour=colour, crop="keep", resize=None).render(frame, impact_col=60.5)
    assert np.array_equal(frame, real_reset_frame)


def lone_pixel_frame() -> np.ndarray:
    frame = np.zeros((G.SCREEN_HEIGHT, G.SCREEN_WIDTH, G.SCREEN_CHANNELS), dtype=np.uint8)
    frame[120, 70] = G.BALL_COLOUR
    return frame


@pytest.mark.parametrize("resize", [(84, 84), (84, 64), (8, 8), (4, 4)])
@pytest.mark.parametrize("colour", A.COLOUR_CHOICES)
@pytest.mark.parametrize("scene", ["reset", "lone_pixel"])
def test_a_resize_is_opencvs_area_average_of_the_uint8_trimmed_screen(real_reset_frame: np.ndarray, scene: str,
                                                                       colour: str, resize: tuple[int, int]) -> None:
    """INTER_AREA of the uint8 image, the marker drawn first; mono re-binarised (any coverage stays on)."""
    import cv2

    frame = real_reset_frame if scene == "reset" else lone_pixel_frame()
    (top, bottom), (left, right) = G.TRIM_ROWS, G.TRIM_COLS
    trimmed = recoloured(frame, colour, 60.5)[top:bottom + 1, left:right + 1]
    expected = cv2.resize(trimmed, (resize[1], resize[0]), interpolation=cv2.INTER_AREA).reshape(*resize, -1)
    if colour == "mono":
        expected = np.where(expected > 0, 255, 0).astype(np.uint8)
    obs = AimbotView(colour=colour, crop="trim", resize=resize).render(frame, impact_col=60.5)
    assert obs.shape == (*resize, 3 if colour == "rgb" else 1)
    assert np.array_equal(obs, expected)


def test_mono_keeps_a_lone_pixel_that_covers_a_small_part_of_a_shrunk_pixel() -> None:
    """At 8x8 one output pixel averages 21x18 screen pixels: a lone lit one is 255/378, still on."""
    obs = AimbotView(colour="mono", crop="trim", prediction="none", resize=(8, 8)).render(lone_pixel_frame(), None)
    assert np.count_nonzero(obs) == 1 and obs.max() == 255


def test_a_new_view_has_seen_no_ball_and_predicts_nothing() -> None:
    view = AimbotView()
    assert (view.last_ball, view.last_motion, view.last_impact) == (None, None, None)


def test_prediction_none_draws_no_marker_though_the_impact_is_known() -> None:
    view = AimbotView(colour="mono", crop="keep", prediction="none", resize=None)
    view(ball_frame(100.5, 60.5, paddle_left=20))
    obs = view(ball_frame(108.5, 66.5, paddle_left=20))
    assert view.last_impact is not None
    assert not obs[G.MARKER_ROWS[0]:G.MARKER_ROWS[1] + 1].any()


# %% The gymnasium wrapper


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
    assert not (obs[G.MARKER_ROWS[0]] == G.MARKER_COLOUR_RGB).all(axis=1).any()
    env.step(0)
    assert (env.view.last_motion.v_row, env.view.last_motion.v_col) == (8.0, 4.0)


@pytest.mark.slow
def test_the_wrappers_spec_records_its_options_and_rebuilds_the_same_env() -> None:
    """gymnasium's env checker rebuilds an env from its spec: every option must be recorded."""
    options = {"colour": "grey", "crop": "keep", "prediction": "none", "resize": (60, 50)}
    env = make_real(**options)
    assert env.spec.additional_wrappers[-1].kwargs == options
    rebuilt = gym.make(env.spec)
    try:
        view = rebuilt.get_wrapper_attr("view")
        assert (view.colour, view.crop, view.prediction, view.resize) == tuple(options.values())
        assert rebuilt.observation_space == env.observation_space == gym.spaces.Box(0, 255, (60, 50, 1), np.uint8)
    finally:
        rebuilt.close()
        env.close()


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

