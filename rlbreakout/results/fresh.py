"""A committed model's own score: a fresh evaluation of the very file, apart from the runs that picked it.

Why: ``pictures/export_best_policy.py`` picks the seed with the highest 20-game mean in the
ledger, and the best of several noisy means is most likely a lucky one (the winner's curse).
So the figure that picked a file is not its score. A fresh evaluation plays the committed file
again (``--load``) on other seeds, over :data:`FRESH_GAMES` whole games per env, and
``pictures/record_fresh_evaluation.py`` keeps the result in the file's record
(``models/<name>.json``, key ``fresh_evaluations``), which ``make_tables.py`` quotes.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlbreakout.errors import RLBreakoutError

#: Whole games a fresh evaluation plays on each env: a mean's standard error is then a tenth of one game's spread.
FRESH_GAMES = 100
#: The record's key that holds the fresh evaluations, env id -> figures.
FRESH_KEY = "fresh_evaluations"


def fresh_evaluation(summary: Mapping[str, Any], model_file: str | os.PathLike[str],
                     repo_root: str | os.PathLike[str], min_games: int = FRESH_GAMES) -> tuple[str, dict[str, Any]]:
    """``(env_id, figures)`` of a ``--load`` run's summary.json, checked to be a fresh evaluation of ``model_file``.

    The summary must have played that file (its ``model_path``, relative to ``repo_root`` or
    absolute), trained 0 steps, and played at least ``min_games`` whole games.
    """
    played = Path(repo_root, str(summary.get("model_path") or "")).resolve()
    if summary.get("timesteps") != 0 or played != Path(repo_root, model_file).resolve():
        raise RLBreakoutError(f"{summary.get('run_dir')} is not a --load evaluation of {model_file} (it played "
                              f"{summary.get('model_path')} after {summary.get('timesteps')} steps of training); "
                              f"run the script from the repository root with --load {model_file} "
                              f"--eval-episodes {min_games}.")
    raw_scores = summary.get("scores")
    if not isinstance(raw_scores, list) or not all(isinstance(score, (int, float)) and not isinstance(score, bool)
                                                   and math.isfinite(score) for score in raw_scores):
        raise RLBreakoutError(f"{summary.get('run_dir')}'s summary has no list of game scores; point at the "
                              f"summary.json that a --load evaluation wrote.")
    scores = [float(score) for score in raw_scores]
    if len(scores) < max(2, min_games):
        raise RLBreakoutError(f"{summary.get('run_dir')} played {len(scores)} whole games; a fresh evaluation "
                              f"needs {max(2, min_games)} (--eval-episodes {max(2, min_games)}).")
    missing = [key for key in ("seed", "script", "git_commit", "cpu_model", "env_id") if key not in summary]
    if missing:
        raise RLBreakoutError(f"{summary.get('run_dir')}'s summary lacks {', '.join(missing)}; point at the "
                              f"summary.json that a chapter script wrote.")
    figures = {"mean": statistics.fmean(scores), "standard_error": statistics.stdev(scores) / math.sqrt(len(scores)),
               "median": statistics.median(scores), "min": min(scores), "max": max(scores), "n_games": len(scores),
               "wall_seconds": summary.get("wall_seconds"), "seed": summary["seed"],
               "script": summary["script"], "git_commit": summary["git_commit"], "git_dirty": bool(summary.get("git_dirty")),
               "cpu_model": summary["cpu_model"]}
    return str(summary["env_id"]), figures
