"""Gif replays: tiling, size cap, and recording real games with any policy."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError
from rlbreakout.render import (
    CAPTION_HEIGHT,
    caption,
    record_comparison_gif,
    record_games,
    record_gif,
    write_gif,
)

SCREEN = (210, 160, 3)
RIGHT, LEFT = 2, 3  # Breakout's minimal action set: NOOP, FIRE, RIGHT, LEFT


class RandomPolicy:
    """Random buttons from one generator (so they vary from step to step), each batch kept for a replay."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.actions: list[np.ndarray] = []

    def __call__(self, observations: np.ndarray) -> np.ndarray:
        self.actions.append(self.rng.integers(0, 4, size=len(observations)))
        return self.actions[-1]


def test_write_gif_drops_frames_until_under_the_size_cap(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(40)]
    path = write_gif(frames, tmp_path / "noise.gif", max_bytes=60_000)
    assert path.stat().st_size <= 60_000
    assert 2 <= len(imageio.mimread(path)) < 40
    with pytest.raises(ConfigError):
        write_gif([], tmp_path / "empty.gif")


def test_record_games_plays_whole_games_on_the_real_screen() -> None:
    policy = RandomPolicy(seed=5)
    recording = record_games(policy, "BreakoutNoFrameskip-v4", n_games=2, seed=0, max_steps=3000, frame_every=5)
    assert all(recording.finished)
    assert recording.frames[0][0].shape == SCREEN
    assert len(set(np.concatenate(policy.actions))) == 4, "the policy pressed every button"
    # Replay the same buttons on the factory's envs: each game must end after its 5th lost life
    # (EpisodicLifeEnv's done), with the Monitor's raw score and frame count as recorded.
    venv = make_env("BreakoutNoFrameskip-v4", 2, seed=0)
    venv.reset()
    lost_lives, games = [0, 0], [None, None]
    for actions in policy.actions:
        _, _, dones, infos = venv.step(actions)
        for i in range(2):
            if games[i] is None:
                lost_lives[i] += int(dones[i])
                games[i] = infos[i].get("episode")
    venv.close()
    assert lost_lives == [5, 5]
    assert recording.scores == [game["r"] for game in games] and recording.lengths == [game["l"] for game in games]
    assert max(recording.scores) > 0


def test_record_gif_grid_of_games(tmp_path: Path) -> None:
    path, recording = record_gif(RandomPolicy(), tmp_path / "grid.gif", "ALE/Breakout-v5", grid=2, max_steps=30)
    frame = imageio.mimread(path)[0]
    assert frame.shape[:2] == (2 * 210 + 2, 2 * 160 + 2)
    assert len(recording.frames) == 4 and not any(recording.finished)


def test_caption_adds_a_strip_with_the_text_above_the_frame() -> None:
    frame = np.full(SCREEN, 7, np.uint8)
    captioned = caption(frame, "trained on v5")
    assert captioned.shape == (SCREEN[0] + CAPTION_HEIGHT, SCREEN[1], 3)
    np.testing.assert_array_equal(captioned[CAPTION_HEIGHT:], frame)
    assert captioned[:CAPTION_HEIGHT].max() > 200  # white text ...
    assert captioned[:CAPTION_HEIGHT, -20:].max() == 0  # ... on black, left-aligned
    assert caption(frame, "").max() == 7  # no text, no white


def test_record_comparison_gif_puts_each_policy_beside_the_other(tmp_path: Path) -> None:
    def always(action: int):  # the paddle hugs one wall
        return lambda observations: np.full(len(observations), action)

    policies = {"right": always(RIGHT), "left": always(LEFT)}
    path, recordings = record_comparison_gif(policies, tmp_path / "compare.gif", "ALE/Breakout-v5", seed=1, max_steps=60)
    assert set(recordings) == {"right", "left"}
    frames = imageio.mimread(path)
    # one frame per step of the longer game (the gif writer merges identical neighbours)
    assert 2 <= len(frames) <= max(len(r.frames[0]) for r in recordings.values())
    first = frames[0][:, :, :3]
    assert first.shape == (SCREEN[0] + CAPTION_HEIGHT, 2 * SCREEN[1] + 2, 3)
    last = frames[-1][:, :, :3]
    left_screen, right_screen = last[CAPTION_HEIGHT:, :SCREEN[1]], last[CAPTION_HEIGHT:, SCREEN[1] + 2:]
    assert not np.array_equal(left_screen, right_screen)  # two policies, two games
    with pytest.raises(ConfigError):
        record_comparison_gif({}, tmp_path / "none.gif", "ALE/Breakout-v5")
