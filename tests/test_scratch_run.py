"""The from-scratch PPO's bookkeeping: whole-game evaluation spread over the envs (2.4 and 2.5 run the rest)."""

from __future__ import annotations

import numpy as np

from rlbreakout.scratch_run import MAX_EVAL_ENVS, evaluate_games


class GamesEveryFewSteps:
    """A vector env whose env ``i`` ends a game every ``i + 1`` steps, scoring ``100 * i + its game number``."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.steps = 0
        self.games = np.zeros(num_envs, dtype=int)
        self.closed = False

    def reset(self, seed: int | None = None) -> tuple[np.ndarray, dict]:
        return np.zeros((self.num_envs, 1)), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        self.steps += 1
        ended = np.array([self.steps % (i + 1) == 0 for i in range(self.num_envs)])
        self.games += ended
        scores = 100.0 * np.arange(self.num_envs) + self.games
        infos = {"final_info": {"episode": {"r": np.where(ended, scores, 0.0), "l": np.where(ended, self.steps, 0)},
                                "_episode": ended}}
        zeros = np.zeros(self.num_envs, dtype=bool)
        return np.zeros((self.num_envs, 1)), np.zeros(self.num_envs), ended, zeros, infos

    def close(self) -> None:
        self.closed = True


def test_games_are_spread_evenly_so_short_games_are_not_over_counted() -> None:
    made = []

    def make_envs(num_envs: int, seed: int) -> GamesEveryFewSteps:
        made.append(GamesEveryFewSteps(num_envs))
        return made[-1]

    scores, lengths = evaluate_games(lambda obs: np.zeros(len(obs), dtype=int), make_envs, n_games=7, seed=3)
    assert made[0].num_envs == MAX_EVAL_ENVS and made[0].closed
    # 7 games on 5 envs: envs 0-2 play one game each, envs 3 and 4 two (not env 0 seven times)
    assert sorted(scores) == [1.0, 101.0, 201.0, 301.0, 302.0, 401.0, 402.0]
    assert len(lengths) == 7 and min(lengths) >= 1
