"""The retro env on Airstriker-Genesis (its ROM ships with stable-retro): actions, rewards, ROMs, seeds.

stable-retro allows one emulator per process, so every test closes its env before the next opens one.
"""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest

from rlbreakout.errors import ConfigError, RLBreakoutError

retro = pytest.importorskip("stable_retro")
from rlbreakout.retro import (  # noqa: E402  (after the importorskip)
    AIRSTRIKER_COMBOS,
    DEFAULT_GAME,
    PIECEWISE_SCALE,
    ROM_IMPORT_COMMAND,
    SONIC_COMBOS,
    SONIC_GAME,
    AllowBacktracking,
    Discretizer,
    LinearScale,
    PiecewiseScale,
    check_state,
    default_combos,
    make_retro_env,
    make_retro_gym_env,
    parse_reward_scale,
    resolve_game,
)

pytestmark = pytest.mark.retro

#: Airstriker awards this many points per enemy shot down.
POINTS_PER_KILL = 20
NOOP, FIRE = AIRSTRIKER_COMBOS.index(()), AIRSTRIKER_COMBOS.index(("B",))


@pytest.fixture
def raw_env() -> Iterator[gym.Env]:
    env = retro.make(DEFAULT_GAME, render_mode="rgb_array")
    try:
        yield env
    finally:
        env.close()


def play(env: gym.Env, actions: list[int], seed: int) -> tuple[list[float], np.ndarray]:
    """Rewards of each step and the last screen, from a fresh reset with ``seed``."""
    env.reset(seed=seed)
    rewards = []
    for action in actions:
        _, reward, terminated, truncated, _ = env.step(action)
        rewards.append(float(reward))
        if terminated or truncated:
            break
    return rewards, np.asarray(env.render()).copy()


# %% Button combos

@pytest.mark.parametrize("combos", [SONIC_COMBOS, AIRSTRIKER_COMBOS])
def test_discretizer_maps_each_action_to_exactly_its_buttons(raw_env: gym.Env, combos: tuple) -> None:
    env = Discretizer(raw_env, combos)
    assert env.action_space == gym.spaces.Discrete(len(combos))
    for index, combo in enumerate(combos):
        pressed = raw_env.unwrapped.get_action_meaning(env.action(index))  # stable-retro decodes the array
        assert sorted(pressed) == sorted(combo)


def test_sonic_combos_are_the_contest_baselines_seven(raw_env: gym.Env) -> None:
    env = Discretizer(raw_env, SONIC_COMBOS)  # Airstriker has the same Genesis pad as Sonic
    assert env.action_meanings() == ["LEFT", "RIGHT", "LEFT+DOWN", "RIGHT+DOWN", "DOWN", "DOWN+B", "B"]


def test_an_unknown_button_names_the_games_buttons(raw_env: gym.Env) -> None:
    with pytest.raises(ConfigError, match=r"unknown button\(s\) \['JUMP'\].*START"):
        Discretizer(raw_env, [["RIGHT"], ["JUMP"]])


def test_default_combos_by_game() -> None:
    buttons = ["B", "A", "START"]
    assert default_combos("SonicTheHedgehog2-Genesis-v0", buttons) == SONIC_COMBOS
    assert default_combos(DEFAULT_GAME, buttons) == AIRSTRIKER_COMBOS
    assert default_combos("SpaceHarrier-Genesis-v0", buttons) == ((), ("B",), ("A",), ("START",))


@pytest.mark.slow
def test_airstriker_fires_on_the_press_so_no_button_must_be_an_action() -> None:
    env = make_retro_gym_env(DEFAULT_GAME, warp=False)
    try:
        held, _ = play(env, [FIRE] * 2_000, seed=0)
        tapped, _ = play(env, [FIRE, NOOP] * 1_000, seed=0)
    finally:
        env.close()
    assert sum(held) == 0  # one shot at the start, then nothing
    assert sum(tapped) >= 5 * POINTS_PER_KILL


# %% Rewards

class ScriptedRewardEnv(gym.Env):
    """Pays ``rewards[t]`` at step t: Sonic-like progress that can go backwards."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(1)

    def __init__(self, rewards: list[float]) -> None:
        self.rewards, self.t = rewards, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return np.zeros(1, np.float32), self.rewards[self.t - 1], self.t == len(self.rewards), False, {}


def test_backtracking_pays_only_new_maximum_progress() -> None:
    env = AllowBacktracking(ScriptedRewardEnv([5, -3, 2, 4, -10, 11]))
    for _ in range(2):  # and again after a reset
        env.reset()
        paid = [env.step(0)[1] for _ in range(6)]
        # progress 5, 2, 4, 8, -2, 9: only the new maxima 5, 8 and 9 pay
        assert paid == [5, 0, 0, 3, 0, 1]


def test_on_airstriker_each_training_reward_is_the_scaled_score_gain() -> None:
    # Airstriker's score never drops, so backtracking pays every gain, and the scaler scales it.
    env = make_retro_gym_env(DEFAULT_GAME, warp=False, backtracking=True, reward_scale=LinearScale(0.01))
    try:
        env.reset(seed=0)
        previous, paid = 0, 0.0
        for step in range(600):
            _, reward, terminated, truncated, info = env.step([FIRE, NOOP][step % 2])
            assert reward == pytest.approx(0.01 * (info["score"] - previous))
            previous, paid = info["score"], paid + reward
            if terminated or truncated:
                assert info["episode"]["r"] == info["score"]  # the Monitor keeps the raw score
                break
    finally:
        env.close()
    assert paid > 0


def test_reward_scale_values() -> None:
    assert LinearScale(0.01)(250.0) == pytest.approx(2.5)
    assert PIECEWISE_SCALE(50.0) == pytest.approx(0.5)
    assert PIECEWISE_SCALE(100.0) == pytest.approx(1.0)
    assert PIECEWISE_SCALE(1_000.0) == pytest.approx(1.0 + 900 * 0.001)
    assert PIECEWISE_SCALE(-1_000.0) == pytest.approx(-1.9)
    three = PiecewiseScale(breakpoints=(10.0, 20.0), slopes=(1.0, 0.5, 0.0))
    assert [three(r) for r in (5, 10, 15, 20, 99)] == [5, 10, 12.5, 15, 15]
    assert repr(PIECEWISE_SCALE) == "piecewise([100.0], [0.01, 0.001])"


def test_parse_reward_scale() -> None:
    assert parse_reward_scale("none") is None
    assert parse_reward_scale("piecewise") is PIECEWISE_SCALE
    assert parse_reward_scale("0.01") == LinearScale(0.01)
    for bad in ("tiny", "0", "-1"):
        with pytest.raises(ConfigError):
            parse_reward_scale(bad)
    with pytest.raises(ConfigError, match="one slope more"):
        PiecewiseScale(breakpoints=(1.0,), slopes=(1.0,))


# %% Game names and ROMs

def test_old_gym_retro_names_resolve_and_unknown_games_are_one_line() -> None:
    assert resolve_game("Airstriker-Genesis") == DEFAULT_GAME
    with pytest.raises(ConfigError, match="unknown retro game 'Airstriker-Genesys'.*Did you mean Airstriker-Genesis-v0"):
        resolve_game("Airstriker-Genesys")
    with pytest.raises(ConfigError, match="Level1"):
        check_state(DEFAULT_GAME, "GreenHillZone.Act1")


def _assert_missing_rom_message(error: pytest.ExceptionInfo, game: str) -> None:
    message = str(error.value)
    assert game in message and ROM_IMPORT_COMMAND in message and "\n" not in message


def test_a_missing_sonic_rom_names_the_game_and_the_import_command() -> None:
    try:
        retro.data.get_romfile_path(SONIC_GAME)
        pytest.skip("a Sonic ROM is imported on this machine")
    except FileNotFoundError:
        pass
    with pytest.raises(RLBreakoutError) as error:
        make_retro_env("SonicTheHedgehog-Genesis")
    _assert_missing_rom_message(error, SONIC_GAME)


def test_any_missing_rom_gives_the_same_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_rom(game: str, *args: object) -> str:
        raise FileNotFoundError(f"No romfiles found for game: {game}")

    monkeypatch.setattr(retro.data, "get_romfile_path", no_rom)
    with pytest.raises(RLBreakoutError) as error:
        make_retro_gym_env(DEFAULT_GAME)
    _assert_missing_rom_message(error, DEFAULT_GAME)


# %% Frame skip, determinism and seeds

def test_without_sticky_actions_the_emulator_is_deterministic_whatever_the_seed() -> None:
    actions = [int(a) for a in np.random.default_rng(0).integers(len(AIRSTRIKER_COMBOS), size=400)]
    env = make_retro_gym_env(DEFAULT_GAME, warp=False, sticky_prob=0.0)
    try:
        first, second = play(env, actions, seed=1), play(env, actions, seed=2)
    finally:
        env.close()
    assert first[0] == second[0] and np.array_equal(first[1], second[1])


def test_sticky_actions_same_seed_same_game_other_seed_other_game() -> None:
    actions = [int(a) for a in np.random.default_rng(0).integers(len(AIRSTRIKER_COMBOS), size=400)]
    env = make_retro_gym_env(DEFAULT_GAME, warp=False, sticky_prob=0.25)
    try:
        games = [play(env, actions, seed=s) for s in (1, 1, 2)]
    finally:
        env.close()
    assert games[0][0] == games[1][0] and np.array_equal(games[0][1], games[1][1])
    assert not np.array_equal(games[0][1], games[2][1])


def test_frame_skip_repeats_each_action_for_four_frames() -> None:
    right, left = AIRSTRIKER_COMBOS.index(("RIGHT",)), AIRSTRIKER_COMBOS.index(("LEFT",))
    screens = {}
    for frame_skip, actions in [(4, [right] * 10 + [left] * 5), (1, [right] * 40 + [left] * 20),
                                (1, [right] * 10 + [left] * 5)]:
        env = make_retro_gym_env(DEFAULT_GAME, warp=False, frame_skip=frame_skip, max_episode_steps=None)
        try:
            screens[(frame_skip, len(actions))] = play(env, actions, seed=0)[1]
        finally:
            env.close()
    assert np.array_equal(screens[(4, 15)], screens[(1, 60)])
    assert not np.array_equal(screens[(4, 15)], screens[(1, 15)])


def test_vec_env_is_stacked_grey_channel_first_and_seeded() -> None:
    venv = make_retro_env(DEFAULT_GAME, n_envs=2, seed=3, sticky_prob=0.25)
    try:
        assert venv.observation_space.shape == (4, 84, 84) and venv.observation_space.dtype == np.uint8
        observations = venv.reset()
        assert observations.shape == (2, 4, 84, 84)
        assert venv.get_attr("np_random_seed") == [3, 4]
    finally:
        venv.close()
    with pytest.raises(ConfigError, match="one emulator per process"):
        make_retro_env(DEFAULT_GAME, n_envs=2, vec_env="dummy")


@pytest.mark.slow
def test_same_seed_same_ppo_run() -> None:
    import torch
    from stable_baselines3 import PPO

    def train(seed: int) -> dict[str, torch.Tensor]:
        venv = make_retro_env(DEFAULT_GAME, seed=seed, vec_env="dummy", sticky_prob=0.25, max_episode_steps=40)
        try:
            model = PPO("CnnPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, seed=seed, device="cpu")
            model.learn(128)
        finally:
            venv.close()
        return model.policy.state_dict()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the chapter scripts do (--torch-threads 1)
    try:
        first, again, other = train(0), train(0), train(1)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
