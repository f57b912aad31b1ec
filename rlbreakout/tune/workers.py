"""Crash-safe study workers: run trials until the *study* holds its budget, over all workers.

:func:`run_worker` is what a script calls instead of ``study.optimize(objective, n_trials=N)``:
it counts every worker's trials, so a restarted or second worker only does what is left;
it takes over a dead worker's trial (its heartbeat stops, it turns FAIL, a retry is
enqueued); and it stops when a search space keeps producing diverging trainings.
"""

from __future__ import annotations

import collections
import os
import socket
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.storages import fail_stale_trials
from optuna.trial import Trial, TrialState

from rlbreakout.errors import ConfigError, RLBreakoutError

#: A worker stops when this many of its trials in a row diverged: the search space is broken.
MAX_DIVERGED_TRIALS_IN_A_ROW = 5
#: A worker waiting for other workers' last trials looks again this often (seconds).
WAIT_POLL_SECONDS = 10.0
#: States of a finished trial: the ones that count towards ``--n-trials``.
FINISHED_STATES: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.PRUNED)


class SurplusTrialError(Exception):
    """Two workers started the study's last trial at the same moment; the later one stands down."""


class TrialDivergedError(Exception):
    """Training produced invalid numbers (e.g. a learning rate far too high); the trial is FAIL."""


def state_counts(study: optuna.Study) -> collections.Counter[TrialState]:
    """How many trials of the study are in each state."""
    return collections.Counter(t.state for t in study.get_trials(deepcopy=False))


class BudgetGuard:
    """Wraps the objective: a trial beyond the study's budget is not trained.

    Two workers can each see one trial left and both start one. Counting only the trials
    numbered before this one (finished, running or waiting to run) settles it: the lower
    number trains, the higher one is marked FAIL with user attribute ``surplus``.
    It also counts the trials that diverged in a row, so a broken search space stops the worker.
    """

    def __init__(self, study: optuna.Study, objective: Callable[[Trial], float], n_trials: int) -> None:
        self.study, self.objective, self.n_trials = study, objective, n_trials
        self.numbers: list[int] = []
        self.diverged_in_a_row = 0

    def __call__(self, trial: Trial) -> float:
        counted = FINISHED_STATES + (TrialState.RUNNING, TrialState.WAITING)
        before = [t for t in self.study.get_trials(deepcopy=False, states=counted) if t.number < trial.number]
        if len(before) >= self.n_trials:
            trial.set_user_attr("surplus", True)
            raise SurplusTrialError(f"trial {trial.number} is beyond the study's {self.n_trials} trials; not trained.")
        self.numbers.append(trial.number)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        try:
            value = self.objective(trial)
        except TrialDivergedError:
            self.diverged_in_a_row += 1
            raise
        except optuna.TrialPruned:
            self.diverged_in_a_row = 0
            raise
        self.diverged_in_a_row = 0
        return value


def run_worker(
    study: optuna.Study,
    objective: Callable[[Trial], float],
    n_trials: int,
    *,
    poll_seconds: float = WAIT_POLL_SECONDS,
) -> list[int]:
    """Run trials until the study holds ``n_trials`` finished trials, all workers together.

    Why not ``study.optimize(n_trials=...)`` with Optuna's ``MaxTrialsCallback``: that
    counts only after a trial ends, so two workers sharing a study overshoot by one trial
    each. Here a worker starts a trial only when finished plus running trials are below the
    budget; when the rest are running elsewhere it waits (looking every ``poll_seconds``),
    and takes over any trial whose worker died (its heartbeat stops, it turns FAIL and its
    retry is enqueued).

    :return: the numbers of the trials this worker trained
    """
    if n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, got {n_trials}.")
    guard = BudgetGuard(study, objective, n_trials)
    said_waiting = False
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            fail_stale_trials(study)  # a dead worker's trial -> FAIL, and its retry is enqueued
        counts = state_counts(study)
        finished = sum(counts[state] for state in FINISHED_STATES)
        if finished >= n_trials:
            return guard.numbers
        if finished + counts[TrialState.RUNNING] >= n_trials:
            if not said_waiting:
                print(f"study {study.study_name}: {finished}/{n_trials} finished, the rest running in other "
                      f"workers; waiting for them (or their heartbeats to stop)", flush=True)
                said_waiting = True
            time.sleep(poll_seconds)
            continue
        said_waiting = False
        study.optimize(guard, n_trials=1, catch=(SurplusTrialError, TrialDivergedError), gc_after_trial=True)
        if guard.diverged_in_a_row >= MAX_DIVERGED_TRIALS_IN_A_ROW:
            raise RLBreakoutError(
                f"{guard.diverged_in_a_row} trials in a row diverged in study {study.study_name} (see the warnings "
                f"above); narrow the search space, e.g. to lower learning rates."
            )


def promote_top_trials(source: optuna.Study, target: optuna.Study, top_k: int) -> list[int]:
    """Enqueue the params of ``source``'s ``top_k`` best COMPLETE trials into ``target``.

    Params already in ``target`` are not enqueued again, so every worker may call this.

    :return: the promoted trial numbers of ``source``, best first
    """
    if top_k < 1:
        raise ConfigError(f"--top-k must be >= 1, got {top_k}.")
    complete = source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise RLBreakoutError(
            f"study {source.study_name!r} has no COMPLETE trial to promote (all pruned or failed); "
            f"run more trials (--n-trials) or a gentler pruner (--pruner none)."
        )
    best = sorted(complete, key=lambda t: (-t.value, t.number))[:top_k]
    for trial in best:
        target.enqueue_trial(
            trial.params,
            user_attrs={"promoted_from_study": source.study_name, "promoted_from_trial": trial.number,
                        "short_trial_value": trial.value},
            skip_if_exists=True,
        )
    return [trial.number for trial in best]


def promoted_count(study: optuna.Study) -> int:
    """Trials in ``study`` that came from a promotion (a retry of one counts once)."""
    return sum(
        1 for t in study.get_trials(deepcopy=False)
        if "promoted_from_trial" in t.user_attrs and t.state != TrialState.FAIL
    )
