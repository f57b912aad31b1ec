"""Recording one retro game in this process: real screens, the raw score, and the partial score of a cut game."""

from __future__ import annotations

import numpy as np
import pytest

from rlbreakout.retro.envs import AIRSTRIKER_COMBOS, DEFAULT_GAME
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


def test_a_finished_game_keeps_its_frames_and_monitor_score() -> None:
    recording = record_retro_game(Tapper(), DEFAULT_GAME, max_steps=100, max_episode_steps=30, sticky_prob=0.0)
    assert recording.finished == [True] and recording.lengths == [30]
    assert len(recording.frames[0]) == 30
    assert recording.frames[0][0].ndim == 3 and recording.frames[0][0].dtype == np.uint8  # the RGB screen


def test_a_cut_game_reports_its_partial_score() -> None:
    tapper = Tapper()
    recording = record_retro_game(tapper, DEFAULT_GAME, max_steps=400, max_episode_steps=None, sticky_prob=0.0)
    assert recording.finished == [False] and recording.lengths == [400] and tapper.steps == 400
    assert recording.scores[0] > 0 and recording.scores[0] % 20 == 0  # 20 points per enemy shot down
