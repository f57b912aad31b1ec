"""Whole-game evaluation: the score a player would call the score.

Training envs end an "episode" at every lost life (EpisodicLifeEnv) and clip rewards
to their sign, so the training reward is neither the game nor the score. The Monitor
under the Atari wrappers writes ``info["episode"]`` only when the whole game ends,
with the unclipped return; these helpers count only those.
"""

from __future__ import annotations

from stable_baselines3.common.vec_env import VecEnv

from rlbreakout.errors import ConfigError
from rlbreakout.render import Policy, policy_actions

#: Safety cap on agent steps for one evaluation (each game is also cut at 108k frames by the env).
DEFAULT_MAX_EVAL_STEPS = 200_000


def games_per_env(n_games: int, n_envs: int) -> list[int]:
    """Spread ``n_games`` evenly over ``n_envs`` (the first envs take the remainder).

    Counting per env avoids the bias of taking the first N games to finish, which
    favours short (bad) games.
    """
    if n_games < 1:
        raise ConfigError(f"n_eval_episodes must be >= 1, got {n_games}.")
    return [(n_games + i) // n_envs for i in range(n_envs)]


def evaluate_games(
    policy: Policy,
    venv: VecEnv,
    n_games: int,
    *,
    deterministic: bool = False,
    max_steps: int = DEFAULT_MAX_EVAL_STEPS,
) -> tuple[list[float], list[int]]:
    """Play ``n_games`` whole games on ``venv``; return their unclipped scores and lengths.

    The env is reset first. Games still running after ``max_steps`` agent steps are
    not counted (the returned lists can then be shorter than ``n_games``).
    """
    targets = games_per_env(n_games, venv.num_envs)
    counts = [0] * venv.num_envs
    scores: list[float] = []
    lengths: list[int] = []
    observations = venv.reset()
    for _ in range(max_steps):
        if all(c >= t for c, t in zip(counts, targets)):
            break
        actions = policy_actions(policy, observations, deterministic)
        observations, _, _, infos = venv.step(actions)
        for i, info in enumerate(infos):
            episode = info.get("episode")
            if episode is not None and counts[i] < targets[i]:
                counts[i] += 1
                scores.append(float(episode["r"]))
                lengths.append(int(episode["l"]))
    return scores, lengths

