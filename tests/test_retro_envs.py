"""The retro env factory on Airstriker-Genesis (its ROM ships with stable-retro): actions, ROMs, seeds, workers.

stable-retro allows one emulator per process, so every test closes its env before the next opens one.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from rlbreakout.errors import ConfigError, RLBreakoutError

retro = pytest.importorskip("stable_retro")
from rlbreakout.retro.envs import (  # noqa: E402  (after the importorskip)
    AIRSTRIKER_COMBOS,
    DEFAULT_GAME,
    ROM_IMPORT_COMMAND,
    SONIC_COMBOS,
    SONIC_GAME,
    Discretizer,
    check_state,
    default_combos,
    make_retro_env,
    make_retro_gym_env,
    resolve_game,
    workers_without_script,
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


# %% Game names and ROMs

def test_old_gym_retro_names_resolve_and_unknown_games_are_one_line() -> None:
    assert resolve_game("Airstriker-Genesis") == DEFAULT_GAME
    unknown = "unknown retro game 'Airstriker-Genesys'.*Did you mean Airstriker-Genesis-v0"
    with pytest.raises(ConfigError, match=unknown):
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


# %% Worker processes

#: A main script that counts how often it runs, then starts two emulator processes.
COUNTING_SCRIPT = """
import sys
with open(sys.argv[1], "a") as runs:
    runs.write("ran\\n")
from rlbreakout.retro.envs import DEFAULT_GAME, make_retro_env
venv = make_retro_env(DEFAULT_GAME, n_envs=2, max_episode_steps=20)
print(venv.reset().shape)
venv.close()
"""


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_worker_processes_do_not_re_run_the_main_script(tmp_path: Path, start_method: str) -> None:
    # Under spawn (Windows, macOS) and forkserver (SB3's choice on Linux) a new process re-runs
    # the main script unless make_retro_env hides it: a chapter script would then train in every worker.
    script = tmp_path / "story.py"
    script.write_text(f"import multiprocessing\nmultiprocessing.set_start_method({start_method!r})\n"
                      + COUNTING_SCRIPT)
    runs = tmp_path / "runs.txt"
    result = subprocess.run([sys.executable, str(script), str(runs)], capture_output=True, text=True, timeout=300,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(2, 4, 84, 84)" in result.stdout
    assert runs.read_text().splitlines() == ["ran"]


def test_the_script_is_back_in_place_after_the_workers_started() -> None:
    script = sys.modules["__main__"]
    with workers_without_script():
        assert sys.modules["__main__"] is not script and getattr(sys.modules["__main__"], "__file__", None) is None
    assert sys.modules["__main__"] is script
