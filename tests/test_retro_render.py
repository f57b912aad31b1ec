"""Recording one retro game in this process: real screens, the raw score, and the partial score of a cut game."""

from __future__ import annotations

import numpy as np
import pytest

from rlbreakout.retro.envs import AIRSTRIKER_COMBOS, DEFAULT_GAME, make_retro_gym_env
from rlbreakout.retro.render import record_retro_game

pytest.importorskip("stable_retro")
pytestmark = pytest.mark.retro

FIRE, NOOP = AIRSTRIKER_COMBOS.index(("B",)), AIRSTRIKER_COMBOS.index(())


class Tapper:
    """Fires on every other step (Airstriker shoots on the press of B)."""

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        self.steps += 1
        return np.full(len(observations), FIRE if self.steps % 2 else NOOP)


def game_score_of_the_same_actions(steps: int) -> float:
    """Airstriker's own score counter after the Tapper's actions, played on a bare env (sticky 0: deterministic)."""
    env = make_retro_gym_env(DEFAULT_GAME, warp=False, sticky_prob=0.0, max_episode_steps=None)
    try:
        env.reset(seed=0)
        info: dict = {}
        for step in range(steps):
            _, _, terminated, truncated, info = env.step(FIRE if step % 2 == 0 else NOOP)
            assert not (terminated or truncated)
        return float(info["score"])
    finally:
        env.close()


def test_a_finished_game_keeps_its_frames_and_monitor_score() -> None:
    steps = 300  # long enough to shoot enemies down, so a lost or clipped score shows
    recording = record_retro_game(Tapper(), DEFAULT_GAME, max_steps=400, max_episode_steps=steps, sticky_prob=0.0)
    assert recording.finished == [True] and recording.lengths == [steps]
    assert len(recording.frames[0]) == steps
    assert recording.frames[0][0].ndim == 3 and recording.frames[0][0].dtype == np.uint8  # the RGB screen
    # the replay's score is the game's own score counter for the same actions: raw, whole, not clipped or scaled
    assert recording.scores[0] > 20
    assert recording.scores[0] == game_score_of_the_same_actions(steps)


def test_a_cut_game_reports_its_partial_score() -> None:
    tapper = Tapper()
    recording = record_retro_game(tapper, DEFAULT_GAME, max_steps=400, max_episode_steps=None, sticky_prob=0.0)
    assert recording.finished == [False] and recording.lengths == [400] and tapper.steps == 400
    assert recording.scores[0] > 0 and recording.scores[0] % 20 == 0  # 20 points per enemy shot down
