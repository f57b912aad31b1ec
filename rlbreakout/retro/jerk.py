"""JERK, "Just Enough Retained Knowledge": the Retro Contest's scripted baseline, and why it needs determinism.

JERK has no neural network. It runs right (forward) with random jumps; when 100
steps bring no reward it backtracks left for 70 steps. At the end of each episode
it keeps the action sequence up to the episode's best cumulative reward. With a
probability that grows from ``exploit_bias`` to 1 over training, it *replays* the
best kept sequence instead of exploring, and adds the replay's score to that
sequence's record, which is ranked by its mean score (after the OpenAI
retro-baselines ``jerk_agent.py``).

Replaying a memorised sequence only reproduces its score when the emulator is
deterministic: with sticky actions the same buttons give another game, so the
mean of a "best" sequence falls as it is replayed. Chapter 4 saw the same split
between ``BreakoutNoFrameskip-v4`` and ``ALE/Breakout-v5``;
:func:`replay_spread` measures it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rlbreakout.envs import make_env_thunk
from rlbreakout.errors import ConfigError

#: JERK's four moves, as indices into the combos of :func:`jerk_combos`.
FORWARD, FORWARD_JUMP, BACK, BACK_JUMP = range(4)
#: Sonic runs right and jumps with B; in Airstriker the same buttons steer right and fire.
DEFAULT_FORWARD: tuple[str, ...] = ("RIGHT",)
DEFAULT_BACK: tuple[str, ...] = ("LEFT",)
DEFAULT_JUMP: tuple[str, ...] = ("B",)
#: The two Breakout ids whose replays chapter 5 compares: deterministic vs sticky actions.
BREAKOUT_REPLAY_IDS: tuple[str, ...] = ("BreakoutNoFrameskip-v4", "ALE/Breakout-v5")
#: Agent steps in the recorded Breakout sequence (more than a random game lasts).
DEFAULT_BREAKOUT_ACTIONS = 5_000


def jerk_combos(
    forward: Sequence[str] = DEFAULT_FORWARD,
    back: Sequence[str] = DEFAULT_BACK,
    jump: Sequence[str] = DEFAULT_JUMP,
) -> tuple[tuple[str, ...], ...]:
    """Button combos for the JERK env, in the order ``FORWARD, FORWARD_JUMP, BACK, BACK_JUMP``."""
    return (tuple(forward), (*forward, *jump), tuple(back), (*back, *jump))


@dataclass(frozen=True)
class JerkConfig:
    """The retro-baselines JERK constants."""

    #: steps of one forward move
    move_steps: int = 100
    #: steps of backtracking after a forward move that earned nothing
    backtrack_steps: int = 70
    #: chance per step to start a jump
    jump_prob: float = 0.1
    #: steps a jump button is held (Sonic jumps higher the longer B is held)
    jump_repeat: int = 4
    #: exploit probability at the start; it grows by ``steps_done / total_timesteps``
    exploit_bias: float = 0.25

    def __post_init__(self) -> None:
        if self.move_steps < 1 or self.backtrack_steps < 0 or self.jump_repeat < 1:
            raise ConfigError("JERK needs move_steps >= 1, backtrack_steps >= 0 and jump_repeat >= 1.")
        if not 0.0 <= self.jump_prob <= 1.0 or not 0.0 <= self.exploit_bias <= 1.0:
            raise ConfigError("JERK's jump_prob and exploit_bias are probabilities in [0, 1].")


@dataclass
class Solution:
    """A kept action sequence and every score it got: when found, then one per replay."""

    actions: tuple[int, ...]
    scores: list[float] = field(default_factory=list)

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.scores))


@dataclass(frozen=True)
class Episode:
    """One JERK episode: its score, its length, and whether it replayed a kept sequence."""

    score: float
    steps: int
    replayed: bool


@dataclass
class Replay:
    """What :func:`replay` saw: the score, the steps played, and whether the game ended."""

    score: float
    steps: int
    finished: bool
    frames: list[np.ndarray] = field(default_factory=list)


def replay(
    env: gym.Env, actions: Sequence[int], *, seed: int | None = None, keep_frames: bool = False
) -> Replay:
    """Reset ``env`` and play ``actions`` in order, stopping at the end of the game or of the list.

    :param keep_frames: keep ``env.render()`` after reset and after every step (for a gif)
    """
    env.reset(seed=seed)
    result = Replay(score=0.0, steps=0, finished=False)
    if keep_frames:
        result.frames.append(np.asarray(env.render(), dtype=np.uint8))
    for action in actions:
        _, reward, terminated, truncated, _ = env.step(action)
        result.score += float(reward)
        result.steps += 1
        if keep_frames:
            result.frames.append(np.asarray(env.render(), dtype=np.uint8))
        if terminated or truncated:
            result.finished = True
            break
    return result


class JerkAgent:
    """The JERK loop on a ``Discrete`` env whose actions are :func:`jerk_combos`.

    :param env: one env (e.g. ``make_retro_gym_env(game, combos=jerk_combos(), warp=False)``)
    :param total_timesteps: the budget; the exploit probability reaches 1 at its end
    :param seed: seeds JERK's own random jumps and the env resets (``seed + episode``)
    """

    def __init__(self, env: gym.Env, total_timesteps: int, config: JerkConfig = JerkConfig(), seed: int = 0) -> None:
        if total_timesteps < 1:
            raise ConfigError(f"total_timesteps must be >= 1, got {total_timesteps}.")
        if not isinstance(env.action_space, gym.spaces.Discrete) or env.action_space.n < len(jerk_combos()):
            raise ConfigError("JerkAgent needs a Discrete env built with combos=jerk_combos(...).")
        self.env = env
        self.total_timesteps = total_timesteps
        self.config = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.steps_done = 0
        self.episodes: list[Episode] = []
        self.solutions: list[Solution] = []

    # -- the two kinds of episode ------------------------------------------------------------
    def exploit_probability(self) -> float:
        """``exploit_bias + steps_done / total_timesteps``, capped at 1: replay more as training goes on."""
        return min(1.0, self.config.exploit_bias + self.steps_done / self.total_timesteps)

    def best_solution(self) -> Solution | None:
        """The kept sequence with the highest mean score (None before the first episode)."""
        return max(self.solutions, key=lambda s: s.mean_score) if self.solutions else None

    def play_episode(self) -> Episode:
        """Replay the best sequence (with :meth:`exploit_probability`) or explore a new episode."""
        best = self.best_solution()
        seed = self.seed + len(self.episodes)
        if best is not None and self.rng.random() < self.exploit_probability():
            result = replay(self.env, best.actions, seed=seed)
            best.scores.append(result.score)
            episode = Episode(score=result.score, steps=result.steps, replayed=True)
        else:
            episode = self._explore(seed)
        self.steps_done += episode.steps
        self.episodes.append(episode)
        return episode

    def _explore(self, seed: int) -> Episode:
        self.env.reset(seed=seed)
        actions: list[int] = []
        cumulative: list[float] = []
        done = False
        while not done:
            gained, done = self._move(self.config.move_steps, False, actions, cumulative)
            if not done and gained <= 0:  # no progress: back up and try again
                _, done = self._move(self.config.backtrack_steps, True, actions, cumulative)
        best_step = int(np.argmax(cumulative))  # first step that reached the best cumulative reward
        self.solutions.append(Solution(actions=tuple(actions[:best_step + 1]), scores=[cumulative[best_step]]))
        return Episode(score=cumulative[-1], steps=len(actions), replayed=False)

    def _move(self, n_steps: int, back: bool, actions: list[int], cumulative: list[float]) -> tuple[float, bool]:
        """Run forward (or back) for ``n_steps``, starting a jump with ``jump_prob`` per step."""
        gained, jump_steps_left = 0.0, 0
        for _ in range(n_steps):
            if jump_steps_left == 0 and self.rng.random() < self.config.jump_prob:
                jump_steps_left = self.config.jump_repeat
            jumping = jump_steps_left > 0
            jump_steps_left = max(0, jump_steps_left - 1)
            action = (BACK_JUMP if jumping else BACK) if back else (FORWARD_JUMP if jumping else FORWARD)
            _, reward, terminated, truncated, _ = self.env.step(action)
            actions.append(action)
            gained += float(reward)
            cumulative.append((cumulative[-1] if cumulative else 0.0) + float(reward))
            if terminated or truncated:
                return gained, True
        return gained, False

    # -- training ----------------------------------------------------------------------------
    def learn(self, on_episode: Callable[[JerkAgent, Episode], None] | None = None) -> JerkAgent:
        """Play episodes until ``total_timesteps`` steps are done; ``on_episode`` sees each one (for logging)."""
        while self.steps_done < self.total_timesteps:
            episode = self.play_episode()
            if on_episode is not None:
                on_episode(self, episode)
        return self


# %% Breakout: the same replay, deterministic and sticky

def random_action_sequence(n_actions: int, n_choices: int, seed: int) -> list[int]:
    """A fixed, seeded list of random actions: the "recording" every replay plays back."""
    return [int(a) for a in np.random.default_rng(seed).integers(n_choices, size=n_actions)]


def make_breakout_replay_env(env_id: str) -> gym.Env:
    """One Breakout env for replays: 4 frames per action, no random no-ops, whole games, raw scores.

    Built by the project's factory, so NoFrameskip-v4 skips in the wrapper and v5 in the
    emulator (with its 25 % sticky actions), exactly as in chapter 4.
    """
    options = {"noop_max": 0, "terminal_on_life_loss": False, "clip_reward": False}
    return make_env_thunk(env_id, wrapper="atari", wrapper_kwargs=options)()


def replay_spread(
    env_ids: Sequence[str] = BREAKOUT_REPLAY_IDS,
    *,
    n_replays: int = 5,
    n_actions: int = DEFAULT_BREAKOUT_ACTIONS,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Replay one recorded random action sequence ``n_replays`` times on each env id.

    Replay ``i`` resets with ``seed + i``. A deterministic emulator ignores the seed and
    gives one score; a sticky one gives a spread.
    :return: per env id, the replays' ``scores`` and ``lengths`` (agent steps)
    """
    if n_replays < 1:
        raise ConfigError(f"n_replays must be >= 1, got {n_replays}.")
    results: dict[str, dict[str, Any]] = {}
    for env_id in env_ids:
        env = make_breakout_replay_env(env_id)
        try:
            actions = random_action_sequence(n_actions, int(env.action_space.n), seed)
            replays = [replay(env, actions, seed=seed + i) for i in range(n_replays)]
        finally:
            env.close()
        results[env_id] = {"scores": [r.score for r in replays], "lengths": [r.steps for r in replays]}
    return results
