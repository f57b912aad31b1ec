"""Run folders: where every script writes its TensorBoard logs, config, models, gifs and summary.

Layout (CleanRL / rl-zoo style): ``<logdir>/<script>/<env>__s<seed>__<time>/``. A run can be
reproduced from its folder alone: ``config.json`` holds the parsed arguments and
``command.txt`` the exact command line.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Keys every summary.json carries (DEVELOPERS.md); evaluation and model keys are added when they apply.
REQUIRED_SUMMARY_KEYS: tuple[str, ...] = (
    "script", "env_id", "timesteps", "seed", "run_dir", "wall_seconds", "steps_per_second",
)
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
COMMAND_FILE = "command.txt"


def script_name(path: str | os.PathLike[str]) -> str:
    """``2_baselines/2.3_copying_hp_zoo.py`` -> ``2.3_copying_hp_zoo``."""
    return Path(path).stem


def sanitize_env_id(env_id: str) -> str:
    """``ALE/Breakout-v5`` -> ``ALE-Breakout-v5`` (a folder name, not a path)."""
    return env_id.replace("/", "-")


def create_run_dir(logdir: str | os.PathLike[str], script: str, env_id: str, seed: int) -> Path:
    """Create and return a fresh run folder; a same-second clash gets a numeric suffix."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(logdir) / script / f"{sanitize_env_id(env_id)}__s{seed}__{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir = base.with_name(f"{base.name}_{n}")
        n += 1
    run_dir.mkdir(parents=True)
    return run_dir


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def save_run_config(run_dir: Path, config: dict[str, Any], argv: list[str] | None = None) -> None:
    """Write ``config.json`` and ``command.txt`` so the run can be reproduced from its folder."""
    (run_dir / CONFIG_FILE).write_text(json.dumps(_jsonable(config), indent=2, sort_keys=True) + "\n")
    argv = sys.argv if argv is None else argv
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *argv])
    (run_dir / COMMAND_FILE).write_text(command + "\n")


def load_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of an earlier run (used by ``--resume``)."""
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text())


def write_summary(run_dir: Path, summary: dict[str, Any], *, announce: bool = True) -> Path:
    """Write ``summary.json`` into ``run_dir`` and, by convention, print its path last.

    Missing required keys are a programming error, so they raise ``KeyError`` here
    rather than produce a summary that downstream tools cannot read.
    """
    missing = [k for k in REQUIRED_SUMMARY_KEYS if k not in summary]
    if missing:
        raise KeyError(f"summary.json is missing required keys: {missing}")
    path = Path(run_dir) / SUMMARY_FILE
    path.write_text(json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n")
    if announce:
        print(path, flush=True)
    return path


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, so same seed on CPU gives bit-identical training."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


#: The "lower quantile" reported beside mean and median: a robust view of the bad games.
LOWER_QUANTILE = 0.25


def score_stats(scores: list[float] | np.ndarray) -> dict[str, float]:
    """Mean, median, std, lower quantile, min and max of whole-game scores (empty -> NaNs)."""
    arr = np.asarray(scores, dtype=float)
    if arr.size == 0:
        nan = float("nan")
        return {"mean_reward": nan, "median_reward": nan, "std_reward": nan,
                "q25_reward": nan, "min_reward": nan, "max_reward": nan, "n_games": 0}
    return {
        "mean_reward": float(arr.mean()),
        "median_reward": float(np.median(arr)),
        "std_reward": float(arr.std()),
        "q25_reward": float(np.quantile(arr, LOWER_QUANTILE)),
        "min_reward": float(arr.min()),
        "max_reward": float(arr.max()),
        "n_games": int(arr.size),
    }
