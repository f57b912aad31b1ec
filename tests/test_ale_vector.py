"""The ale_vector backend against the classic stack: layout, rewards, lives, episodes, seeding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecFrameStack

from rlbreakout.ale_vector import ALEVectorVecEnv, _frameskip_and_maxpool, make_ale_vector_env
from rlbreakout.env_ids import DEFAULT_ALE_THREADS, ale_vector_unsupported_reason, env_settings
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError

NOFRAMESKIP = "BreakoutNoFrameskip-v4"
V5 = "ALE/Breakout-v5"
BREAKOUT_LIVES = 5
SCREEN = 84


# %% Bookkeeping against a scripted fake emulator (known answers)
class ScriptedALE:
    """Stands in for ale-py's AtariVectorEnv: replays scripted step results."""

    def __init__(self, steps: list[dict[str, Any]], n_envs: int = 2) -> None:
        self.steps = steps
        self.n = n_envs
        self.sent: list[np.ndarray] = []

    def _obs(self, value: int) -> np.ndarray:
        return np.full((self.n, 1, SCREEN, SCREEN), value, dtype=np.uint8)

    def reset(self, seed: Any = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return self._obs(1), {"lives": np.array([5, 5]), "episode_frame_number": np.array([10, 10]),
                              "frame_number": np.array([10, 10])}

    def send(self, actions: np.ndarray) -> None:
        self.sent.append(actions.copy())

    def recv(self) -> tuple[np.ndarray, ...]:
        s = self.steps.pop(0)
        info = {"lives": np.array(s["lives"]), "episode_frame_number": np.array(s["efn"]),
                "frame_number": np.array(s["efn"])}
        if "final" in s:
            info["final_obs"] = self._obs(s["final"])
        return (self._obs(s["obs"]), np.array(s["reward"], dtype=np.int32), np.array(s["term"]),
                np.array(s["trunc"]), info)

    def close(self) -> None:
        pass


SCRIPT = [
    # env 1 loses a life; env 0 scores 4 (a high brick)
    {"obs": 2, "reward": [4, 0], "term": [False, False], "trunc": [False, False], "lives": [5, 4], "efn": [14, 14]},
    # env 0's game ends (ale-py already reset it: lives back to 5, frame counter restarted)
    {"obs": 3, "reward": [1, 7], "term": [True, False], "trunc": [False, False], "lives": [5, 4], "efn": [3, 18],
     "final": 77},
    # env 1 is cut by the frame limit
    {"obs": 4, "reward": [0, 0], "term": [False, False], "trunc": [False, True], "lives": [5, 5], "efn": [7, 2],
     "final": 99},
]


def scripted_env(**kwargs: Any) -> tuple[ALEVectorVecEnv, ScriptedALE]:
    venv = ALEVectorVecEnv(NOFRAMESKIP, 2, settings=env_settings(NOFRAMESKIP), **kwargs)
    venv._ale.close()
    fake = ScriptedALE([dict(s) for s in SCRIPT])
    venv._ale = fake
    venv.reset()
    return venv, fake


def test_scripted_rewards_lives_and_episodes() -> None:
    venv, fake = scripted_env()
    obs, rewards, dones, infos = venv.step(np.array([1, 3]))
    assert obs.shape == (2, 1, SCREEN, SCREEN)
    np.testing.assert_array_equal(fake.sent[0], [1, 3])
    np.testing.assert_array_equal(rewards, [1.0, 0.0])  # clipped to the sign
    np.testing.assert_array_equal(dones, [False, True])  # a lost life ends a training episode
    assert "episode" not in infos[1] and infos[1]["lives"] == 4
    np.testing.assert_array_equal(infos[1]["terminal_observation"], obs[1])  # the game goes on from here
    assert infos[1]["TimeLimit.truncated"] is False

    obs, rewards, dones, infos = venv.step(np.array([0, 0]))
    np.testing.assert_array_equal(rewards, [1.0, 1.0])
    np.testing.assert_array_equal(dones, [True, False])
    assert infos[0]["episode"]["r"] == 5.0  # 4 + 1, unclipped, whole game
    assert infos[0]["episode"]["l"] == 14 + 4  # frames: last counter + the last action's 4 frames
    assert (infos[0]["terminal_observation"] == 77).all()  # ale-py's final frame, not the new game's
    assert (obs[0] == 3).all()

    obs, rewards, dones, infos = venv.step(np.array([0, 0]))
    np.testing.assert_array_equal(dones, [False, True])
    assert infos[1]["TimeLimit.truncated"] is True
    assert infos[1]["episode"] == {"r": 7.0, "l": 18 + 4, "t": infos[1]["episode"]["t"]}
    assert (infos[1]["terminal_observation"] == 99).all()


def test_scripted_options_off() -> None:
    venv, _ = scripted_env(clip_reward=False, terminal_on_life_loss=False)
    _, rewards, dones, infos = venv.step(np.array([0, 0]))
    np.testing.assert_array_equal(rewards, [4.0, 0.0])
    np.testing.assert_array_equal(dones, [False, False])  # life lost, but no episodic life
    _, rewards, dones, _ = venv.step(np.array([0, 0]))
    np.testing.assert_array_equal(rewards, [1.0, 7.0])
    np.testing.assert_array_equal(dones, [True, False])


def test_episode_length_unit_follows_the_id() -> None:
    """The classic Monitor counts frames for NoFrameskip ids, actions for v5: so does the adapter."""
    assert _frameskip_and_maxpool(env_settings(NOFRAMESKIP)) == (4, True, 1)
    assert _frameskip_and_maxpool(env_settings(V5)) == (4, False, 4)
    assert _frameskip_and_maxpool(env_settings(NOFRAMESKIP, wrapper_frame_skip=1)) == (1, False, 1)


# %% Real ALE against the classic stack
def test_layout_and_frames_match_classic() -> None:
    options = {"wrapper_kwargs": {"noop_max": 0}}
    classic = make_env(NOFRAMESKIP, 2, seed=0, **options)
    fast = make_env(NOFRAMESKIP, 2, seed=0, backend="ale_vector", **options)
    try:
        assert fast.observation_space == classic.observation_space  # Box(0, 255, (4, 84, 84), uint8)
        assert fast.action_space == classic.action_space
        obs_c, obs_f = classic.reset(), fast.reset()
        assert obs_f.shape == obs_c.shape == (2, 4, SCREEN, SCREEN) and obs_f.dtype == np.uint8
        assert not obs_f[:, :3].any() and obs_f[:, 3].any()  # stack zero-filled at reset, like VecFrameStack
        diff = np.abs(obs_c[:, 3].astype(int) - obs_f[:, 3].astype(int))
        assert diff.mean() < 1.0  # same screen; only the grey palette differs, by less than one grey level on average
        assert fast.env_is_wrapped(Monitor) == [True, True]
    finally:
        classic.close()
        fast.close()


def play_random(venv: Any, steps: int, seed: int = 0) -> dict[str, Any]:
    """Random play; per env: the dones and rewards between game ends, the episode infos."""
    rng = np.random.default_rng(seed)
    venv.reset()
    n = venv.num_envs
    games: list[dict[str, Any]] = []
    dones_in_game, clipped_sum = [0] * n, [0.0] * n
    for _ in range(steps):
        obs, rewards, dones, infos = venv.step(rng.integers(0, venv.action_space.n, n))
        for i in range(n):
            clipped_sum[i] += float(rewards[i])
            if dones[i]:
                dones_in_game[i] += 1
                assert infos[i]["terminal_observation"].shape == obs.shape[1:]
                assert not obs[i, :-1].any()  # stack cleared at every done (life loss too)
            if "episode" in infos[i]:
                games.append({**infos[i]["episode"], "dones": dones_in_game[i], "clipped": clipped_sum[i]})
                dones_in_game[i], clipped_sum[i] = 0, 0.0
    venv.close()
    return {"games": games}


@pytest.mark.slow
def test_lives_rewards_and_episodes_match_classic() -> None:
    steps = 700  # random Breakout games last ~100-300 actions: several games per env
    results = {backend: play_random(make_env(NOFRAMESKIP, 4, seed=3, backend=backend), steps)
               for backend in ("classic", "ale_vector")}
    lengths = {}
    for backend, result in results.items():
        games = result["games"]
        assert len(games) >= 4, backend
        for game in games:
            assert game["dones"] == BREAKOUT_LIVES, backend  # one training episode per life
            assert game["r"] >= game["clipped"] >= 0  # whole-game, unclipped score
        lengths[backend] = np.mean([g["l"] for g in games])
    ratio = lengths["ale_vector"] / lengths["classic"]
    assert 0.6 < ratio < 1.6, lengths  # same unit (frames for NoFrameskip ids)


def test_unclipped_rewards_sum_to_the_episode_score() -> None:
    venv = make_env(NOFRAMESKIP, 2, seed=1, backend="ale_vector", wrapper_kwargs={"clip_reward": False})
    rng = np.random.default_rng(1)
    venv.reset()
    totals, checked = np.zeros(2), 0
    for _ in range(1500):
        _, rewards, _, infos = venv.step(rng.integers(0, 4, 2))
        totals += rewards
        for i, info in enumerate(infos):
            if "episode" in info:
                assert info["episode"]["r"] == pytest.approx(totals[i])
                totals[i], checked = 0.0, checked + 1
        if checked >= 2:
            break
    venv.close()
    assert checked >= 2


def trajectory(env_id: str, seed: int, steps: int = 60, **kwargs: Any) -> np.ndarray:
    venv = make_env(env_id, 2, seed=seed, backend="ale_vector", **kwargs)
    rng = np.random.default_rng(0)  # same actions every time
    frames = [venv.reset()[:, -1].copy()]
    for _ in range(steps):
        frames.append(venv.step(rng.integers(0, 4, 2))[0][:, -1].copy())
    venv.close()
    return np.stack(frames)


def test_seeding_reproduces_and_differs() -> None:
    np.testing.assert_array_equal(trajectory(NOFRAMESKIP, 5), trajectory(NOFRAMESKIP, 5))
    assert not np.array_equal(trajectory(NOFRAMESKIP, 5), trajectory(NOFRAMESKIP, 6))


def test_sticky_actions_per_id_and_override() -> None:
    def sticky(env_id: str, **kwargs: Any) -> float:
        venv = make_env(env_id, 1, backend="ale_vector", **kwargs)
        inner = venv.venv if isinstance(venv, VecFrameStack) else venv
        value = inner.settings.repeat_action_probability
        venv.close()
        return value

    assert sticky(V5) == 0.25
    assert sticky(NOFRAMESKIP) == 0.0
    assert sticky(V5, env_kwargs={"repeat_action_probability": 0.0}) == 0.0
    # they reach the emulator: same seed and actions, sticky or not, give different games
    no_noop = {"wrapper_kwargs": {"noop_max": 0}}
    plain = trajectory(NOFRAMESKIP, 0, 150, **no_noop)
    np.testing.assert_array_equal(plain, trajectory(NOFRAMESKIP, 0, 150, **no_noop))
    assert not np.array_equal(plain, trajectory(NOFRAMESKIP, 0, 150, env_kwargs={"repeat_action_probability": 0.25},
                                                **no_noop))


def test_thread_count_is_a_plain_parameter() -> None:
    """ALE threads come from the caller (``--fast`` passes the free cores), at most one per env."""
    def threads(**kwargs: Any) -> int:
        venv = make_env(NOFRAMESKIP, 2, backend="ale_vector", **kwargs)
        inner = venv.venv if isinstance(venv, VecFrameStack) else venv
        count = inner.num_threads
        venv.close()
        return count

    assert threads() == DEFAULT_ALE_THREADS
    assert threads(ale_threads=2) == 2
    assert threads(ale_threads=8) == 2
    with pytest.raises(ConfigError, match="num_threads"):
        make_ale_vector_env(NOFRAMESKIP, 2, num_threads=0)


def test_frameskip_four_frames_per_action() -> None:
    for env_id in (NOFRAMESKIP, V5):
        venv = make_env(env_id, 1, seed=0, backend="ale_vector", wrapper_kwargs={"noop_max": 0},
                        env_kwargs={"repeat_action_probability": 0.0})
        venv.reset()
        before = venv.step(np.array([0]))[3][0]["frame_number"]
        after = venv.step(np.array([0]))[3][0]["frame_number"]
        venv.close()
        assert after - before == 4, env_id


# %% What it refuses
def test_random_frameskip_id_is_refused() -> None:
    assert ale_vector_unsupported_reason(NOFRAMESKIP) is None
    assert ale_vector_unsupported_reason(V5) is None
    with pytest.raises(ConfigError, match="random 2-4 frames"):
        make_env("Breakout-v4", 2, backend="ale_vector")


def test_unsupported_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="env_kwargs"):
        make_ale_vector_env(NOFRAMESKIP, 2, env_kwargs={"mode": 2})
    with pytest.raises(ConfigError, match="wrapper_kwargs"):
        make_ale_vector_env(NOFRAMESKIP, 2, wrapper_kwargs={"aim": True})
    with pytest.raises(ConfigError, match="use wrapper='atari' or 'aimbot'"):
        make_env(NOFRAMESKIP, 2, backend="ale_vector", wrapper="none")
    with pytest.raises(ConfigError, match="vec_env='dummy'"):
        make_env(NOFRAMESKIP, 2, backend="ale_vector", wrapper="aimbot", vec_env="subproc")


# %% SB3 trains and evaluates on it
@pytest.fixture
def one_torch_thread() -> Any:
    """One torch thread: on a shared 2-core machine two threads can run 10x slower (see rlbreakout.speed.fast)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_ppo_trains_and_evaluates(one_torch_thread: None) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    venv = make_env(NOFRAMESKIP, 4, seed=0, backend="ale_vector")
    model = PPO("CnnPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert model.num_timesteps == 256
    # stochastic: a greedy untrained policy may never press FIRE, and ale_vector does not press it
    # after a lost life (the classic FireResetEnv does), so a greedy game could run to the frame limit
    lives_lost = np.zeros(venv.num_envs, dtype=int)
    clipped = np.zeros(venv.num_envs)
    games: dict[tuple[float, int], tuple[int, float]] = {}  # (score, length) -> (lost lives, clipped sum)

    def watch(local: dict[str, Any], _: dict[str, Any]) -> None:
        i = local["i"]
        lives_lost[i] += bool(local["done"])
        clipped[i] += local["reward"]
        if "episode" in local["info"]:
            episode = local["info"]["episode"]
            games[(float(episode["r"]), int(episode["l"]))] = (int(lives_lost[i]), float(clipped[i]))
            lives_lost[i], clipped[i] = 0, 0.0

    scores, lengths = evaluate_policy(model, venv, n_eval_episodes=2, deterministic=False, warn=False,
                                      return_episode_rewards=True, callback=watch)
    # SB3 counted whole games (five lost lives each), with the unclipped score and the game's length
    assert len(scores) == 2
    for score, length in zip(scores, lengths):
        lives, clipped_sum = games[(float(score), int(length))]
        assert lives == BREAKOUT_LIVES and score >= clipped_sum
    venv.close()
