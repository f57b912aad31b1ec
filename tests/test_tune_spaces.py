"""rlbreakout.tune.spaces: the rules every search space respects."""

from __future__ import annotations

import pytest

from rlbreakout.errors import ConfigError
from rlbreakout.tune.spaces import (
    DEFAULT_GRID,
    check_grid,
    emulator_skips_frames,
    env_label,
    frames_per_action,
    largest_batch_size,
)


@pytest.mark.parametrize("batch_size, rollout, expected", [(256, 384, 192), (64, 1024, 64), (256, 128, 128), (7, 12, 6)])
def test_largest_batch_size_divides_the_rollout(batch_size: int, rollout: int, expected: int) -> None:
    assert largest_batch_size(batch_size, rollout) == expected
    assert rollout % expected == 0


@pytest.mark.parametrize("env_id, skips, frames, frames_with_wrapper_skip", [
    ("BreakoutNoFrameskip-v4", False, "1", "5"),
    ("Breakout-v4", True, "2-4", "2-4"),
    ("ALE/Breakout-v5", True, "4", "4"),
])
def test_frame_skip_is_sampled_only_where_the_emulator_does_not_skip(env_id: str, skips: bool, frames: str,
                                                                     frames_with_wrapper_skip: str) -> None:
    assert emulator_skips_frames(env_id) is skips
    assert frames_per_action(env_id) == frames
    assert frames_per_action(env_id, 5) == frames_with_wrapper_skip


def test_env_labels_are_short_for_breakout_and_folder_safe_otherwise() -> None:
    assert [env_label(e) for e in ("Breakout-v4", "BreakoutNoFrameskip-v4", "ALE/Breakout-v5")] == ["v4", "v4NoFS", "v5"]
    assert env_label("ALE/Pong-v5") == "ALE-Pong-v5"


def test_grid_must_be_valid_for_every_point() -> None:
    assert check_grid(DEFAULT_GRID, n_envs=8) == 27
    assert check_grid({"batch_size": [32, 64], "n_epochs": [1, 2, 3], "n_steps": [32]}, n_envs=2) == 6
    with pytest.raises(ConfigError, match="batch_size 48, n_steps 32 is invalid"):
        check_grid({"batch_size": [32, 48], "n_epochs": [1], "n_steps": [32]}, n_envs=2)
    with pytest.raises(ConfigError, match="must be positive integers"):
        check_grid({"batch_size": [], "n_epochs": [1], "n_steps": [32]}, n_envs=2)
