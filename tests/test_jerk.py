"""JERK: its moves on scripted envs with known answers, its replays on Airstriker, and Breakout's replays."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlbreakout.errors import ConfigError
from rlbreakout.retro.jerk import (
    BACK,
    BACK_JUMP,
    FORWARD,
    FORWARD_JUMP,
    JerkAgent,
    JerkConfig,
    jerk_combos,
    random_action_sequence,
    replay,
    replay_spread,
)

NO_JUMPS = JerkConfig(move_steps=5, backtrack_steps=3, jump_prob=0.0)


class TimedRewardEnv(gym.Env):
    """Pays ``rewards[t]`` at step t whatever the action, and records the actions; ends after the list."""

    observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
    action_space = gym.spaces.Discrete(4)

    def __init__(self, rewards: list[float]) -> None:
        self.rewards, self.t, self.actions = rewards, 0, []

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t, self.actions = 0, []
        return np.zeros(1, np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.actions.append(int(action))
        self.t += 1
        return np.zeros(1, np.float32), float(self.rewards[self.t - 1]), self.t == len(self.rewards), False, {}


def test_jerk_combos_are_forward_forward_jump_back_back_jump() -> None:
    combos = jerk_combos()
    assert [combos[i] for i in (FORWARD, FORWARD_JUMP, BACK, BACK_JUMP)] == [
        ("RIGHT",), ("RIGHT", "B"), ("LEFT",), ("LEFT", "B")]


def test_it_backtracks_after_a_move_that_earned_nothing() -> None:
    env = TimedRewardEnv([0.0] * 16)
    JerkAgent(env, total_timesteps=16, config=NO_JUMPS).play_episode()
    assert env.actions == [FORWARD] * 5 + [BACK] * 3 + [FORWARD] * 5 + [BACK] * 3


def test_it_keeps_the_actions_up_to_the_best_cumulative_reward() -> None:
    # +1 for 7 steps, then -1: the cumulative reward peaks at 7 after step 7
    env = TimedRewardEnv([1.0] * 7 + [-1.0] * 5)
    agent = JerkAgent(env, total_timesteps=12, config=NO_JUMPS)
    episode = agent.play_episode()
    # 5 forward (+5, go on), 5 forward (+1 +1 -1 -1 -1 = -1, so back up), 2 back before the end
    assert env.actions == [FORWARD] * 10 + [BACK] * 2
    assert (episode.score, episode.steps, episode.replayed) == (2.0, 12, False)
    best = agent.best_solution()
    assert best.actions == (FORWARD,) * 7 and best.scores == [7.0]


def test_jumps_start_with_jump_prob_and_last_jump_repeat_steps() -> None:
    env = TimedRewardEnv([1.0] * 10)
    JerkAgent(env, total_timesteps=10, config=JerkConfig(jump_prob=1.0, jump_repeat=4)).play_episode()
    assert env.actions == [FORWARD_JUMP] * 10
    env = TimedRewardEnv([1.0] * 2_000)
    one_move = JerkConfig(move_steps=2_000, jump_prob=0.1, jump_repeat=4)  # a new move cuts a jump short
    JerkAgent(env, total_timesteps=2_000, config=one_move).play_episode()
    runs = "".join("J" if a == FORWARD_JUMP else "." for a in env.actions).split(".")
    jumps = [len(run) for run in runs if run]
    assert jumps and all(n % 4 == 0 for n in jumps)  # jumps come in whole 4-step holds
    assert 0.1 < len(jumps) * 4 / 2_000 < 0.5


def test_exploit_probability_grows_from_the_bias_to_one() -> None:
    agent = JerkAgent(TimedRewardEnv([1.0]), total_timesteps=100, config=JerkConfig(exploit_bias=0.25))
    probabilities = []
    for steps in (0, 50, 75, 200):
        agent.steps_done = steps
        probabilities.append(agent.exploit_probability())
    assert probabilities == [0.25, 0.75, 1.0, 1.0]


def test_replays_of_the_best_sequence_are_scored_and_ranked_by_their_mean() -> None:
    env = TimedRewardEnv([1.0] * 7 + [-1.0] * 5)
    agent = JerkAgent(env, total_timesteps=30, config=JerkConfig(move_steps=5, backtrack_steps=3, jump_prob=0.0,
                                                                  exploit_bias=1.0)).learn()
    assert [e.replayed for e in agent.episodes] == [False, True, True, True]
    assert agent.best_solution().scores == [7.0, 7.0, 7.0, 7.0]
    assert agent.steps_done == 12 + 3 * 7


def test_bad_agent_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        JerkConfig(move_steps=0)
    with pytest.raises(ConfigError):
        JerkConfig(jump_prob=1.5)
    with pytest.raises(ConfigError):
        JerkAgent(TimedRewardEnv([1.0]), total_timesteps=0)
    with pytest.raises(ConfigError, match="jerk_combos"):
        JerkAgent(gym.make("CartPole-v1"), total_timesteps=10)


@pytest.mark.retro
@pytest.mark.slow
def test_on_airstriker_the_best_sequence_replays_to_the_same_score() -> None:
    pytest.importorskip("stable_retro")
    from rlbreakout.retro.envs import DEFAULT_GAME, make_retro_gym_env

    env = make_retro_gym_env(DEFAULT_GAME, combos=jerk_combos(), warp=False, sticky_prob=0.0, max_episode_steps=150)
    try:
        agent = JerkAgent(env, total_timesteps=600, seed=0).learn()
        best = agent.best_solution()
        replays = [replay(env, best.actions, seed=seed).score for seed in (11, 12, 13)]
    finally:
        env.close()
    assert best.scores[0] > 0
    assert any(e.replayed for e in agent.episodes)
    assert set(best.scores) == {best.scores[0]}  # every replay during training matched
    assert replays == [best.scores[0]] * 3


def test_a_recorded_sequence_replays_identically_only_without_sticky_actions() -> None:
    results = replay_spread(n_replays=3, n_actions=600, seed=0)
    deterministic, sticky = results["BreakoutNoFrameskip-v4"], results["ALE/Breakout-v5"]
    assert len(set(deterministic["scores"])) == 1 and len(set(deterministic["lengths"])) == 1
    assert len(set(sticky["lengths"])) > 1
    assert random_action_sequence(5, 4, seed=0) == random_action_sequence(5, 4, seed=0)
