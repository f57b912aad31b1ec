"""Tests for rlbreakout.aimbot.batched and the aimbot on the ale_vector backend: the same observations as the wrapper."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from fakes import ScriptedFrames, ball_frame, bounce_path
from rlbreakout import aimbot as A
from rlbreakout.aimbot import AimbotView, BreakoutObservationWrapper, predict_impact_column
from rlbreakout.aimbot import geometry as G
from rlbreakout.aimbot.batched import BatchedAimbotView, detect_balls, lit_pixels, resize_area
from rlbreakout.ale_vector import ALEVectorVecEnv, AimbotViewVecEnv, make_ale_vector_env
from rlbreakout.env_ids import env_settings
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError

N_ENVS = 3
#: Agent steps recorded on each of the N_ENVS real games: enough for lost lives and game overs.
RECORDED_STEPS = 500


@dataclass
class Recording:
    """Raw frames of real games from the C++ vector env, as each step handed them to the aimbot view."""

    first: np.ndarray
    #: per step: the frames, the dones and the infos (a done's info holds its raw terminal frame)
    steps: list[tuple[np.ndarray, np.ndarray, list[dict]]] = field(default_factory=list)


class FrameTap(VecEnvWrapper):
    """Keeps every raw frame (and info) that the C++ vector env passes up to the aimbot view."""

    def __init__(self, venv: ALEVectorVecEnv) -> None:
        super().__init__(venv)
        self.recording: Recording | None = None

    def reset(self):
        frames = self.venv.reset()
        self.recording = Recording(frames.copy())
        return frames

    def step_wait(self):
        frames, rewards, dones, infos = self.venv.step_wait()
        assert self.recording is not None
        self.recording.steps.append((frames.copy(), dones.copy(), [dict(info) for info in infos]))
        return frames, rewards, dones, infos


class Replay(VecEnv):
    """A recording played back as a VecEnv of RGB frames (what AimbotViewVecEnv asks of ALEVectorVecEnv)."""

    rgb = True

    def __init__(self, recording: Recording) -> None:
        super().__init__(N_ENVS, gym.spaces.Box(0, 255, recording.first.shape[1:], np.uint8), gym.spaces.Discrete(4))
        self.recording, self.t = recording, 0

    def reset(self):
        self.t = 0
        return self.recording.first

    def step_async(self, actions):
        pass

    def step_wait(self):
        frames, dones, infos = self.recording.steps[self.t]
        self.t += 1
        return frames, np.zeros(N_ENVS, np.float32), dones, [dict(info) for info in infos]

    def close(self):
        pass

    def get_attr(self, attr_name, indices=None):
        return [None] * N_ENVS  # render_mode: none

    def set_attr(self, attr_name, value, indices=None):
        raise NotImplementedError

    def env_method(self, method_name, *args, indices=None, **kwargs):
        raise NotImplementedError

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * N_ENVS


@pytest.fixture(scope="module")
def recording() -> Recording:
    """Random play on the real C++ vector env, through the aimbot view, the raw frames kept from beneath it."""
    env_id = "BreakoutNoFrameskip-v4"
    tap = FrameTap(ALEVectorVecEnv(env_id, N_ENVS, settings=env_settings(env_id), rgb=True))
    aim = AimbotViewVecEnv(tap, BatchedAimbotView(N_ENVS))
    aim.seed(3)
    rng = np.random.default_rng(3)
    aim.reset()
    for _ in range(RECORDED_STEPS):
        aim.step(rng.integers(0, 4, size=N_ENVS))
    aim.close()
    assert tap.recording is not None
    return tap.recording


@dataclass
class Played:
    """Per env: its episodes (frame lists, split where a done reset the classic wrapper), and what the
    batched aimbot env gave: each step's observation and each finished episode's terminal observation."""

    episodes: list[list[list[np.ndarray]]] = field(default_factory=lambda: [[] for _ in range(N_ENVS)])
    observations: list[list[np.ndarray]] = field(default_factory=lambda: [[] for _ in range(N_ENVS)])
    terminal: list[list[np.ndarray]] = field(default_factory=lambda: [[] for _ in range(N_ENVS)])
    lives_lost: int = 0
    games_over: int = 0
    #: env steps whose frame gave an impact column (a marker, where the options draw one)
    predictions: int = 0


def play(recording: Recording, options: dict) -> Played:
    aim = AimbotViewVecEnv(Replay(recording), BatchedAimbotView(N_ENVS, **options))
    out = Played()
    obs = aim.reset()
    for i in range(N_ENVS):
        out.episodes[i].append([recording.first[i]])
        out.observations[i].append(obs[i].transpose(1, 2, 0))
    for frames, raw_dones, raw_infos in recording.steps:
        obs, _, dones, infos = aim.step(np.zeros(N_ENVS, dtype=int))
        assert np.array_equal(dones, raw_dones)
        out.predictions += sum(impact is not None for impact in aim.view.last_impacts)
        for i in range(N_ENVS):
            out.observations[i].append(obs[i].transpose(1, 2, 0))
            if dones[i]:
                out.episodes[i][-1].append(raw_infos[i]["terminal_observation"])
                out.terminal[i].append(infos[i]["terminal_observation"].transpose(1, 2, 0))
                out.episodes[i].append([frames[i]])
                out.games_over += "episode" in infos[i]
                out.lives_lost += "episode" not in infos[i]
            else:
                out.episodes[i][-1].append(frames[i])
    return out


def wrapper_observations(episodes: list[list[np.ndarray]], options: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The classic BreakoutObservationWrapper over the same frames, reset between episodes as EpisodicLife
    resets it: each step's observation, and the last observation of each finished episode (its terminal one)."""
    env = BreakoutObservationWrapper(ScriptedFrames([list(e) + [e[-1]] for e in episodes]), **options)
    steps, last = [], []
    for number, episode in enumerate(episodes):
        obs, _ = env.reset()
        seen = [obs] + [env.step(0)[0] for _ in episode[1:]]
        if number < len(episodes) - 1:  # a finished episode: its last frame was the terminal observation
            last.append(seen.pop())
        steps += seen
    return steps, last


OPTIONS = [dict(colour=c, crop=k, prediction=p) for c, k, p in
           itertools.product(A.COLOUR_CHOICES, A.CROP_CHOICES, A.PREDICTION_CHOICES)]
OPTIONS += [dict(resize=None), dict(resize=64), dict(colour="rgb", crop="keep", resize=(50, 70))]


@pytest.mark.slow
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_batched_observations_are_the_wrappers_bit_for_bit_on_real_frames(recording: Recording, options: dict) -> None:
    """Real ALE frames, lost lives and game overs included: every observation the ale_vector aimbot gives,
    terminal ones too, equals what BreakoutObservationWrapper gives on the same frames with the same resets."""
    played = play(recording, options)
    assert played.lives_lost > 0 and played.games_over > 0, "the recording must cross lost lives and game overs"
    for i in range(N_ENVS):
        steps, last = wrapper_observations(played.episodes[i], options)
        assert len(steps) == len(played.observations[i]) and len(last) == len(played.terminal[i])
        assert all(np.array_equal(a, b) for a, b in zip(steps, played.observations[i])), f"env {i}: a step differs"
        assert all(np.array_equal(a, b) for a, b in zip(last, played.terminal[i])), f"env {i}: a terminal differs"
    assert played.predictions > 0, "the recording must have falling balls with a predicted impact"


def test_synthetic_bounce_gives_the_known_marker_in_every_env() -> None:
    """A ball bouncing off a wall, in env 1 only; env 0 sees no ball: the markers are where the maths says."""
    path = bounce_path(100.5, 30.5, 8.0, -6.0, 6)
    view = BatchedAimbotView(2, colour="rgb", crop="keep", resize=None)
    expected = predict_impact_column(*path[0], 8.0, -6.0)
    empty = ball_frame(100.5, 30.5)
    empty[G.BALL_SEARCH_ROWS[0]:G.BALL_SEARCH_ROWS[1] + 1] = 0
    for step, (row, col) in enumerate(path):
        obs = view(np.stack([empty, ball_frame(row, col)]))
        marked = [np.flatnonzero((o[G.MARKER_ROWS[0]] == G.MARKER_COLOUR_RGB).all(axis=1)) for o in obs]
        assert marked[0].size == 0 and view.last_impacts[0] is None
        if step == 0:
            assert marked[1].size == 0  # one sighting gives no velocity
        else:
            assert view.last_impacts[1] == pytest.approx(expected)
            assert (marked[1][0] + marked[1][-1]) / 2 == pytest.approx(expected, abs=0.5)


def test_detection_and_resize_match_the_single_frame_functions() -> None:
    frames = np.stack([ball_frame(120.5, 40.5), ball_frame(93.5, 8.5), ball_frame(150.5, 151.5)])
    frames[2, G.BALL_SEARCH_ROWS[0]:G.BALL_SEARCH_ROWS[1] + 1] = 0
    assert detect_balls(lit_pixels(frames)) == [A.detect_ball(f) for f in frames]
    assert detect_balls(lit_pixels(frames))[2] is None and detect_balls(lit_pixels(frames))[1].entering
    import cv2

    images = np.random.default_rng(0).integers(0, 256, size=(9, 168, 144, 3), dtype=np.uint8)
    ours = resize_area(images, (84, 84))
    assert ours.shape == (9, 84, 84, 3)
    assert all(np.array_equal(ours[i], cv2.resize(images[i], (84, 84), interpolation=cv2.INTER_AREA)) for i in range(9))


def test_one_env_s_frames_update_only_its_tracker() -> None:
    view = BatchedAimbotView(3, colour="mono", resize=None)
    frames = np.stack([ball_frame(100.5, 60.5)] * 3)
    view(frames)
    view(np.stack([ball_frame(108.5, 64.5)]), indices=[1])
    assert view.trackers[1].velocity == (8.0, 4.0)
    assert view.trackers[0].velocity is None and view.trackers[2].velocity is None
    view.reset([1])
    assert view.trackers[1].velocity is None
    with pytest.raises(ConfigError, match="2 frames for 1 envs"):
        view(frames[:2], indices=[0])
    with pytest.raises(ConfigError, match="RGB frames"):
        view(frames[:, :84])


def test_the_view_shape_and_options_are_the_single_view_s() -> None:
    for options in OPTIONS:
        assert BatchedAimbotView(2, **options).shape == AimbotView(**options).shape
    with pytest.raises(ConfigError, match="choose one of: rgb, grey, mono"):
        BatchedAimbotView(2, colour="purple")


@pytest.mark.parametrize("env_id", ["BreakoutNoFrameskip-v4", "ALE/Breakout-v5"])
def test_make_env_builds_the_aimbot_on_ale_vector_like_the_classic_one(env_id: str) -> None:
    fast = make_env(env_id, 2, wrapper="aimbot", backend="ale_vector", frame_stack=4)
    classic = make_env(env_id, 2, wrapper="aimbot", frame_stack=4)
    try:
        assert fast.observation_space == classic.observation_space
        obs = fast.reset()
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        for _ in range(50):
            obs, rewards, dones, infos = fast.step(np.array([1, 3]))
        assert set(np.unique(obs)) <= {0, 255} and obs[:, -1].any()
    finally:
        fast.close()
        classic.close()


def test_ale_vector_refuses_what_it_cannot_do_for_the_aimbot() -> None:
    with pytest.raises(ConfigError, match="not supported by backend 'ale_vector' with wrapper 'aimbot'"):
        make_env("BreakoutNoFrameskip-v4", 1, wrapper="aimbot", backend="ale_vector",
                 wrapper_kwargs={"screen_size": 64})
    with pytest.raises(ConfigError, match="does the 'atari' and 'aimbot' wrappers"):
        make_ale_vector_env("BreakoutNoFrameskip-v4", 1, wrapper="none")
    with pytest.raises(ConfigError, match="rgb=True"):
        AimbotViewVecEnv(ALEVectorVecEnv("BreakoutNoFrameskip-v4", 1, settings=env_settings("BreakoutNoFrameskip-v4")),
                         BatchedAimbotView(1))


def test_a_done_views_the_terminal_frame_then_forgets_the_ball() -> None:
    """Synthetic frames where the ball stays in view across a done: the terminal observation keeps the
    marker its tracker predicts, and the next one has none (a new life or game starts a new track)."""
    path = [(100.5, 60.5), (108.5, 64.5), (116.5, 68.5)]
    frames = [np.stack([ball_frame(row, col)] * N_ENVS) for row, col in path]
    dones = [np.zeros(N_ENVS, bool), np.array([True] + [False] * (N_ENVS - 1))]
    infos = [[{} for _ in range(N_ENVS)], [{"terminal_observation": frames[1][0]}] + [{} for _ in range(N_ENVS - 1)]]
    recording = Recording(frames[0], [(frames[1], dones[0], infos[0]), (frames[2], dones[1], infos[1])])
    aim = AimbotViewVecEnv(Replay(recording), BatchedAimbotView(N_ENVS, colour="rgb", crop="keep", resize=None))

    def has_marker(obs: np.ndarray) -> bool:  # obs channel-first (3, 210, 160)
        return bool((obs[:, G.MARKER_ROWS[0]].T == G.MARKER_COLOUR_RGB).all(axis=1).any())

    aim.reset()
    obs, *_ = aim.step(np.zeros(N_ENVS, dtype=int))
    assert all(has_marker(o) for o in obs)  # two sightings: every env predicts
    obs, _, _, step_infos = aim.step(np.zeros(N_ENVS, dtype=int))
    assert has_marker(step_infos[0]["terminal_observation"])  # viewed with the tracker as it stood
    assert not has_marker(obs[0]) and all(has_marker(o) for o in obs[1:])  # env 0 starts afresh
