"""What a search space must respect, so that no trial trains an invalid setting.

The spaces themselves are written in the chapter scripts, as ``trial.suggest_*`` calls
inside ``def objective(trial)``; this module keeps the rules they share: a batch size that
divides the rollout, a grid whose every point is valid, which ids take a wrapper frameskip,
and the short names of the Breakout ids used as TensorBoard tags and table columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rlbreakout.env_ids import env_settings
from rlbreakout.errors import ConfigError
from rlbreakout.runs import sanitize_env_id

#: Short names of the Breakout ids, used as TensorBoard eval tags and table columns.
ENV_LABELS: dict[str, str] = {"Breakout-v4": "v4", "BreakoutNoFrameskip-v4": "v4NoFS", "ALE/Breakout-v5": "v5"}
#: 4.2's grid (every combination divides the rollout for n_envs = 8, see check_grid).
DEFAULT_GRID: dict[str, tuple[int, ...]] = {
    "batch_size": (256, 512, 1024),
    "n_epochs": (2, 4, 8),
    "n_steps": (128, 256, 512),
}


def env_label(env_id: str) -> str:
    """``ALE/Breakout-v5`` -> ``v5``; other ids -> a folder-safe version of the id."""
    return ENV_LABELS.get(env_id, sanitize_env_id(env_id))


def largest_batch_size(batch_size: int, rollout: int) -> int:
    """The largest divisor of ``rollout`` that is at most ``batch_size`` (so SB3 uses equal minibatches)."""
    return max(d for d in range(1, min(batch_size, rollout) + 1) if rollout % d == 0)


def emulator_skips_frames(env_id: str) -> bool:
    """True for ids whose emulator skips frames itself (v4: 2-4 at random, v5: 4).

    A frameskip in the wrapper is then left out of the space: both would multiply.
    """
    return env_settings(env_id).emulator_frameskip != 1


def frames_per_action(env_id: str, wrapper_frame_skip: int | None = None) -> str:
    """Frames one action lasts, readable: ``"2-4"`` for Breakout-v4, ``"4"`` for v5 or a wrapper skip of 4."""
    skip = env_settings(env_id).emulator_frameskip
    if skip == 1:
        return str(wrapper_frame_skip or 1)
    return f"{skip[0]}-{skip[1] - 1}" if isinstance(skip, tuple) else str(skip)


def check_grid(grid: Mapping[str, Sequence[int]], n_envs: int) -> int:
    """Raise ConfigError unless every grid point is a valid PPO setting; return the number of points."""
    for name, values in grid.items():
        if not values or min(values) < 1:
            raise ConfigError(f"grid values for {name} must be positive integers, got {list(values)}.")
    rollouts = [n_steps * n_envs for n_steps in grid["n_steps"]]
    bad = [(b, r // n_envs) for b in grid["batch_size"] for r in rollouts if r % b != 0]
    if bad:
        batch, n_steps = bad[0]
        raise ConfigError(
            f"grid point batch_size {batch}, n_steps {n_steps} is invalid: {batch} does not divide "
            f"n_steps * n_envs = {n_steps * n_envs}. Use batch sizes that divide every n_steps * --n-envs."
        )
    return math.prod(len(values) for values in grid.values())
