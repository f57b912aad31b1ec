"""Freeze at the best model: stop training when evaluation scores collapse, and keep the best weights.

The Sonic story's second lesson: training longer made the agent *worse* after a
peak, and the peak was gone for good. This callback keeps a copy of the weights
from the best evaluation so far and, once the score has stayed below the best by
more than ``collapse_fraction`` for ``patience`` evaluations in a row, stops
training and puts the best weights back into the model.

It reads scores in one of two ways:

* as ``callback_after_eval`` of an eval callback (SB3's ``EvalCallback``, or any
  subclass that sets ``self.parent.last_mean_reward`` after each evaluation);
* fed directly: ``callback.observe(score)`` (what the tests do with a fake score sequence).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from rlbreakout.errors import ConfigError, RLBreakoutError

#: Stop when the score is more than this fraction below the best ...
DEFAULT_COLLAPSE_FRACTION = 0.5
#: ... for this many evaluations in a row (one bad evaluation is usually noise).
DEFAULT_PATIENCE = 3


class FreezeOnCollapseCallback(BaseCallback):
    """Keep the best policy weights; stop and restore them when scores collapse below the best.

    A score counts as collapsed when ``score < best - collapse_fraction * |best|`` (for a
    positive best that is ``best * (1 - collapse_fraction)``).

    :param collapse_fraction: how far below the best a score must fall to count, in (0, 1]
    :param patience: collapsed evaluations in a row that stop training (K)
    :param save_path: where to ``model.save`` each new best (``.zip`` is added); None = memory only
    :param verbose: 1 prints new bests and the stop
    """

    def __init__(
        self,
        collapse_fraction: float = DEFAULT_COLLAPSE_FRACTION,
        patience: int = DEFAULT_PATIENCE,
        save_path: str | os.PathLike[str] | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose=verbose)
        if not 0.0 < collapse_fraction <= 1.0:
            raise ConfigError(f"collapse_fraction must be in (0, 1], got {collapse_fraction}.")
        if patience < 1:
            raise ConfigError(f"patience must be >= 1, got {patience}.")
        self.collapse_fraction = collapse_fraction
        self.patience = patience
        self.save_path = None if save_path is None else Path(save_path)
        #: best score so far and the (0-based) evaluation that reached it
        self.best_score: float | None = None
        self.best_eval: int | None = None
        self.best_state: dict[str, Any] | None = None
        self.scores: list[float] = []
        #: collapsed evaluations in a row
        self.evals_below = 0
        #: the evaluation at which training was stopped (None while it runs)
        self.stopped_at_eval: int | None = None

    def threshold(self) -> float:
        """The score below which an evaluation counts as collapsed."""
        if self.best_score is None:
            return float("-inf")
        return self.best_score - self.collapse_fraction * abs(self.best_score)

    def observe(self, score: float) -> bool:
        """Record one evaluation score; return False (stop) once scores have collapsed.

        A new best copies the policy weights (and saves the model if ``save_path`` is set);
        the stop restores them, so the model left behind is the best one.
        """
        if self.model is None:
            raise RLBreakoutError("FreezeOnCollapseCallback has no model: call init_callback(model) "
                                  "or pass it to model.learn(callback=...).")
        score = float(score)
        self.scores.append(score)
        eval_index = len(self.scores) - 1
        if self.best_score is None or score > self.best_score:
            self.best_score, self.best_eval, self.evals_below = score, eval_index, 0
            self.best_state = copy.deepcopy(self.model.policy.state_dict())
            if self.save_path is not None:
                self.model.save(self.save_path)
            if self.verbose:
                print(f"freeze: new best score {score:.2f} at evaluation {eval_index}")
        elif score < self.threshold():
            self.evals_below += 1
        else:
            self.evals_below = 0
        self.logger.record("collapse/best_score", self.best_score)
        self.logger.record("collapse/evals_below", self.evals_below)
        if self.evals_below >= self.patience:
            self.stopped_at_eval = eval_index
            self.restore_best()
            if self.verbose:
                print(f"freeze: {self.patience} evaluations below {self.threshold():.2f}; stopped at evaluation "
                      f"{eval_index} and restored the best weights (score {self.best_score:.2f}, "
                      f"evaluation {self.best_eval})")
            return False
        return True

    def restore_best(self) -> None:
        """Load the best weights seen so far back into the model's policy."""
        if self.best_state is not None:
            self.model.policy.load_state_dict(self.best_state)

    def _on_step(self) -> bool:
        score = getattr(self.parent, "last_mean_reward", None)
        if score is None:
            raise RLBreakoutError("FreezeOnCollapseCallback reads the parent eval callback's score: pass it as "
                                  "EvalCallback(..., callback_after_eval=FreezeOnCollapseCallback(...)).")
        return self.observe(score)
