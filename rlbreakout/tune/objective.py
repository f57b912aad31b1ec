"""What one trial needs while it trains: the pruning evaluation callback and the divergence check.

A chapter script's ``objective(trial)`` suggests the settings, builds the envs and the model
and calls ``model.learn``; it passes a :class:`TrialEvalCallback` (chapter 2's evaluation,
reporting to the trial) and wraps ``learn`` in :func:`trial_training`, which times the
trial for summary.json, records what the trial trained, and turns a training that
produced NaN weights into :class:`~rlbreakout.tune.workers.TrialDivergedError`, so the
trial is FAIL and the worker goes on with the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
import torch
from optuna.trial import Trial
from stable_baselines3 import PPO

from rlbreakout.callbacks import MultiEnvEvalCallback
from rlbreakout.errors import RLBreakoutError
from rlbreakout.runs import Run
from rlbreakout.tune.workers import TrialDivergedError

#: Evaluations during a trial (the original tutorial: EVAL_FREQ = 4); the last one is its score.
DEFAULT_EVALS_PER_TRIAL = 4


def trial_eval_freq(timesteps: int, evals_per_trial: int) -> int:
    """Env steps between a trial's evaluations, so that it is evaluated ``evals_per_trial`` times."""
    return max(timesteps // evals_per_trial, 1)


class TrialEvalCallback(MultiEnvEvalCallback):
    """Chapter 2's evaluation callback that also reports to an Optuna trial and prunes.

    After each evaluation it reports the median whole-game score of ``score_env`` at the
    *scheduled* evaluation step (a multiple of ``eval_freq``), so trials with different
    ``n_envs`` are compared at the same budget. When the pruner says stop, training stops
    and :meth:`score` raises ``optuna.TrialPruned``, so the trial is recorded as PRUNED.
    """

    def __init__(
        self,
        trial: Trial,
        eval_envs: dict[str, Any],
        eval_freq: int,
        n_eval_episodes: int = 10,
        *,
        score_env: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("verbose", 0)
        super().__init__(eval_envs, eval_freq, n_eval_episodes, best_model_env=score_env,
                         best_metric="median_reward", **kwargs)
        self.trial = trial
        self.is_pruned = False
        self.last_score = float("nan")

    def after_evaluation(self, results: dict[str, dict[str, float]]) -> bool:
        self.last_score = results[self.best_model_env][self.best_metric]
        step = (self.num_timesteps // self.eval_freq) * self.eval_freq if self.eval_freq > 0 else self.num_timesteps
        self.trial.report(self.last_score, step)
        if self.trial.should_prune():
            self.is_pruned = True
            return False
        return True

    def score(self) -> float:
        """The trial's value: the last median score; raises ``optuna.TrialPruned`` if the pruner stopped it."""
        if self.is_pruned:
            raise optuna.TrialPruned(f"median score {self.last_score:g} at step {self.num_timesteps}")
        return self.last_score


#: What torch says when the policy's logits or probabilities are NaN or infinite.
DIVERGENCE_MESSAGES = ("Expected parameter logits", "probability tensor contains either `inf`, `nan`")


def has_non_finite_weights(model: PPO) -> bool:
    """True when any weight of the policy is NaN or infinite (the training diverged)."""
    return any(not torch.isfinite(p).all() for p in model.policy.parameters())


def readable_schedule(schedule: Any) -> str:
    """``linear(0.1)`` rather than SB3's ``FloatSchedule(...)`` wrapper around it."""
    return repr(getattr(schedule, "value_schedule", schedule))


@contextmanager
def trial_training(trial: Trial, model: PPO, run: Run, evaluator: MultiEnvEvalCallback) -> Iterator[None]:
    """Wrap one trial's ``model.learn``: timed by ``run``, recorded on the trial, divergence made a FAIL.

    Torch's action distribution refuses NaN logits with a ``ValueError``, or, when the logits
    overflow to infinity, ``torch.multinomial`` refuses the probabilities with a
    ``RuntimeError`` (which one depends on the numbers, so on the CPU's kernels and threads).
    When the policy's weights are then NaN or infinite, or the error is one of those two
    (:data:`DIVERGENCE_MESSAGES`; huge but finite weights can overflow the logits), the trial
    diverged (e.g. a far too large learning rate) and :class:`TrialDivergedError` is raised
    instead. Any other error goes on.
    The evaluation time is taken off the training time, and the trial gets user attributes
    ``timesteps_trained``, ``tensorboard_dir`` and its readable schedules.
    """
    trial.set_user_attr("learning_rate_schedule", readable_schedule(model.learning_rate))
    trial.set_user_attr("clip_range_schedule", readable_schedule(model.clip_range))
    try:
        with run.training(model):
            yield
    except (ValueError, RuntimeError) as exc:
        if isinstance(exc, RLBreakoutError):
            raise
        if has_non_finite_weights(model):
            raise TrialDivergedError(f"trial {trial.number} diverged (NaN or infinite weights): {exc}") from exc
        if any(message in str(exc) for message in DIVERGENCE_MESSAGES):
            raise TrialDivergedError(f"trial {trial.number} diverged (non-finite action probabilities): {exc}") from exc
        raise
    finally:
        run.exclude(evaluator.eval_seconds)
    trial.set_user_attr("timesteps_trained", int(model.num_timesteps))
    trial.set_user_attr("tensorboard_dir", model.logger.get_dir())
