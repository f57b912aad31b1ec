"""The env factory: shapes, frameskip in one place, sticky actions per id, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import is_channel_first_uint8

from rlbreakout.env_ids import BREAKOUT_ENV_IDS, ale_vector_unsupported_reason, env_settings
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.scripted_player import player_for

FIRE = 1


@pytest.mark.parametrize("env_id", BREAKOUT_ENV_IDS)
@pytest.mark.parametrize("frame_stack", [1, 4])
def test_atari_wrapper_observations_are_channel_first_uint8(env_id: str, frame_stack: int) -> None:
    venv = make_env(env_id, 2, seed=0, frame_stack=frame_stack)
    obs = venv.reset()
    assert obs.shape == (2, frame_stack, 84, 84)
    assert obs.dtype == np.uint8
    assert venv.observation_space.shape == obs.shape[1:]
    assert is_channel_first_uint8(venv)
    obs, rewards, dones, infos = venv.step(np.array([FIRE, FIRE]))
    assert obs.shape == (2, frame_stack, 84, 84) and rewards.shape == (2,)
    venv.close()


def test_no_wrapper_gives_raw_rgb_frames_channel_first() -> None:
    venv = make_env("ALE/Breakout-v5", 1, frame_stack=2, wrapper="none")
    obs = venv.reset()
    assert obs.shape == (1, 6, 210, 160) and obs.dtype == np.uint8
    venv.close()


def _frames_per_step(env_id: str, steps: int = 12) -> list[int]:
    venv = make_env(env_id, 1, seed=3, frame_stack=1)
    venv.reset()
    frames, last = [], None
    for _ in range(steps):
        _, _, dones, infos = venv.step(np.array([0]))
        frame_number = infos[0]["episode_frame_number"]
        if last is not None and not dones[0]:
            frames.append(frame_number - last)
        last = frame_number
    venv.close()
    return frames


@pytest.mark.parametrize(
    ("env_id", "allowed"),
    [("BreakoutNoFrameskip-v4", {4}), ("ALE/Breakout-v5", {4}), ("Breakout-v4", {2, 3, 4})],
)
def test_frames_advanced_per_step_catch_double_frameskip(env_id: str, allowed: set[int]) -> None:
    frames = _frames_per_step(env_id)
    assert frames, "no steps measured"
    assert set(frames) <= allowed, f"{env_id} advanced {sorted(set(frames))} frames per step"


def test_breakout_v4_random_frameskip_varies() -> None:
    assert len(set(_frames_per_step("Breakout-v4", steps=40))) > 1


@pytest.mark.parametrize(
    ("env_id", "sticky"),
    [("BreakoutNoFrameskip-v4", 0.0), ("Breakout-v4", 0.0), ("ALE/Breakout-v5", 0.25)],
)
def test_sticky_actions_only_where_the_id_implies_them(env_id: str, sticky: float) -> None:
    settings = env_settings(env_id)
    assert settings.repeat_action_probability == sticky
    assert settings.full_action_space is False
    venv = make_env(env_id, 1)
    assert venv.action_space.n == 4  # minimal action set everywhere
    venv.close()


def test_caller_can_ask_for_sticky_actions() -> None:
    assert env_settings("BreakoutNoFrameskip-v4", {"repeat_action_probability": 0.25}).repeat_action_probability == 0.25


def test_frameskip_is_applied_in_exactly_one_place() -> None:
    assert env_settings("BreakoutNoFrameskip-v4").wrapper_frame_skip == 4
    assert env_settings("ALE/Breakout-v5").wrapper_frame_skip == 1
    with pytest.raises(ConfigError, match="skip twice"):
        env_settings("ALE/Breakout-v5", wrapper_frame_skip=4)


def test_unknown_env_id_names_valid_choices() -> None:
    with pytest.raises(ConfigError) as info:
        make_env("Breakout-v9", 1)
    message = str(info.value)
    assert "Breakout-v9" in message and "BreakoutNoFrameskip-v4" in message and "ALE/Breakout-v5" in message
    assert "\n" not in message


def test_non_atari_id_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown Atari env id"):
        make_env("CartPole-v1", 1)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"wrapper": "fancy"}, "wrapper"), ({"vec_env": "threads"}, "vec_env"), ({"backend": "gpu"}, "backend"),
     ({"n_envs": 0}, "n_envs"), ({"frame_stack": 0}, "frame_stack")],
)
def test_wrong_arguments_raise_one_clear_line(kwargs: dict, fragment: str) -> None:
    # a copy: popping from the parameter itself would leave n_envs out when the test runs again in
    # the same process (as mutmut runs it: its clean run then found no error and stopped)
    arguments = dict(kwargs)
    n_envs = arguments.pop("n_envs", 1)
    with pytest.raises(RLBreakoutError, match=fragment):
        make_env("BreakoutNoFrameskip-v4", n_envs, **arguments)


def test_env_seeding_is_reproducible_and_env_i_takes_seed_plus_i() -> None:
    # v5 is stochastic (sticky actions, the no-op reset), so each seed plays its own game;
    # both envs get the same buttons, so only their seeds can tell them apart.
    def rollout(seed: int) -> np.ndarray:
        venv = make_env("ALE/Breakout-v5", 2, seed=seed)
        obs = [venv.reset()]
        rng = np.random.default_rng(0)
        for _ in range(30):
            obs.append(venv.step(np.repeat(rng.integers(0, 4), 2))[0])
        venv.close()
        return np.stack(obs)

    five, six = rollout(5), rollout(5 + 1)
    assert np.array_equal(five, rollout(5))
    assert not np.array_equal(five[:, 0], five[:, 1]), "the two envs of one seed play different games"
    assert np.array_equal(five[:, 1], six[:, 0]), "env 1 of seed 5 is env 0 of seed 6 (seed + i)"


def test_monitor_reports_whole_game_unclipped_score() -> None:
    # The scripted player plays until it breaks a brick worth more than 1 point, then random
    # buttons lose all 5 lives; the factory's Monitor sits below EpisodicLifeEnv and ClipRewardEnv,
    # so "episode" appears once per game, with the raw points, although `done` fires at each
    # lost life and PPO's reward is clipped to +1 a brick.
    venv = make_env("BreakoutNoFrameskip-v4", 1, seed=1, frame_stack=1)
    venv.reset()
    player = player_for("BreakoutNoFrameskip-v4", random_action_prob=0.0)
    rng = np.random.default_rng(1)
    dones, clipped, episodes, aimed = 0, 0.0, [], True
    for _ in range(20_000):
        raw = float(np.sum(venv.get_attr("rewards", [0])[0]))  # the Monitor's points of this game so far
        aimed = aimed and raw <= clipped
        action = player.act(venv.get_images()[0]) if aimed else rng.integers(0, 4)
        _, reward, done, infos = venv.step(np.array([action]))
        clipped += float(reward[0])
        dones += int(done[0])
        if "episode" in infos[0]:
            episodes.append(infos[0]["episode"])
            break
    venv.close()
    assert len(episodes) == 1 and dones == 5
    assert episodes[0]["r"] > clipped > 0, "the Monitor's score is the raw one, above the clipped sum"


@pytest.mark.slow
def test_subproc_vec_env_matches_dummy() -> None:
    dummy = make_env("ALE/Breakout-v5", 2, seed=7)
    subproc = make_env("ALE/Breakout-v5", 2, seed=7, vec_env="subproc")
    try:
        assert np.array_equal(dummy.reset(), subproc.reset())
        for _ in range(5):
            a = np.array([1, 3])
            assert np.array_equal(dummy.step(a)[0], subproc.step(a)[0])
    finally:
        dummy.close()
        subproc.close()


# %% What the ale_vector backend cannot reproduce: each reason names the option and the fix
def test_ale_vector_accepts_what_it_reproduces() -> None:
    for env_id in ("BreakoutNoFrameskip-v4", "ALE/Breakout-v5"):
        assert ale_vector_unsupported_reason(env_id) is None
        assert ale_vector_unsupported_reason(env_id, wrapper="aimbot") is None
    every_env_option = {"frameskip": 1, "repeat_action_probability": 0.0, "full_action_space": False,
                        "max_num_frames_per_episode": 1000}
    atari = {"noop_max": 0, "frame_skip": 4, "terminal_on_life_loss": True, "clip_reward": True, "screen_size": 84}
    assert ale_vector_unsupported_reason("BreakoutNoFrameskip-v4", every_env_option, atari) is None
    aimbot = {**{k: v for k, v in atari.items() if k != "screen_size"},
              "colour": "mono", "crop": "trim", "prediction": "marker", "resize": 84}
    assert ale_vector_unsupported_reason("BreakoutNoFrameskip-v4", None, aimbot, wrapper="aimbot") is None


def test_ale_vector_refusals_name_the_option_and_the_fix() -> None:
    reason = ale_vector_unsupported_reason("BreakoutNoFrameskip-v4", wrapper="none")
    assert reason == ("backend 'ale_vector' does the 'atari' and 'aimbot' wrappers, not 'none'; "
                      "use backend 'classic'.")
    reason = ale_vector_unsupported_reason("BreakoutNoFrameskip-v4", {"mode": 2, "difficulty": 1})
    assert reason == ("env_kwargs ['difficulty', 'mode'] are not supported by backend 'ale_vector' (supported: "
                      "frameskip, repeat_action_probability, full_action_space, max_num_frames_per_episode); "
                      "use backend 'classic'.")
    # screen_size is the atari wrapper's, not the aimbot's (its view has its own resize)
    reason = ale_vector_unsupported_reason("BreakoutNoFrameskip-v4", None, {"screen_size": 84}, wrapper="aimbot")
    assert reason == ("wrapper_kwargs ['screen_size'] are not supported by backend 'ale_vector' with wrapper "
                      "'aimbot' (supported: noop_max, frame_skip, terminal_on_life_loss, clip_reward, colour, crop, "
                      "prediction, resize); use backend 'classic'.")
    reason = ale_vector_unsupported_reason("Breakout-v4")
    assert reason == ("Breakout-v4 skips a random 2-4 frames per action, which ale-py's vector env cannot do (it "
                      "only has a fixed frameskip); use backend 'classic' for Breakout-v4, or "
                      "BreakoutNoFrameskip-v4 / ALE/Breakout-v5 with 'ale_vector'.")
    # a wrapper frame_skip of 1 leaves v4's random emulator frameskip as it is
    assert "random 2-4" in ale_vector_unsupported_reason("Breakout-v4", None, {"frame_skip": 1})
    # the env_kwargs count: a random frameskip asked for a NoFrameskip id is refused the same way
    assert "skips a random 2-4 frames" in ale_vector_unsupported_reason("BreakoutNoFrameskip-v4", {"frameskip": (2, 5)})
    # and the wrapper's frame_skip: on top of v5's own skip of 4 it would skip twice, on either backend
    with pytest.raises(ConfigError, match="already skips 4 frames per action; a wrapper frame_skip of 4 on top"):
        ale_vector_unsupported_reason("ALE/Breakout-v5", None, {"frame_skip": 4})
