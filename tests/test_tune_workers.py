"""rlbreakout.tune.workers against real SQLite studies and real worker processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState, create_trial

from conftest_postgres import start_worker, wait_for
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.tune.storage import open_storage
from rlbreakout.tune.workers import (
    MAX_DIVERGED_TRIALS_IN_A_ROW,
    BudgetGuard,
    SurplusTrialError,
    TrialDivergedError,
    promote_top_trials,
    promoted_count,
    run_worker,
    state_counts,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sqlite_url(tmp_path: Path, name: str = "studies.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def cheap_study(tmp_path: Path, name: str = "s") -> optuna.Study:
    return optuna.create_study(storage=open_storage(sqlite_url(tmp_path)), study_name=name, direction="maximize",
                               sampler=optuna.samplers.RandomSampler(seed=0), load_if_exists=True)


def test_a_second_worker_only_runs_what_is_left(tmp_path: Path) -> None:
    study = cheap_study(tmp_path)
    objective = lambda trial: trial.suggest_float("x", 0, 1)  # noqa: E731
    assert run_worker(study, objective, 2) == [0, 1]
    assert run_worker(study, objective, 3) == [2]
    assert run_worker(study, objective, 3) == []
    assert state_counts(study)[TrialState.COMPLETE] == 3
    with pytest.raises(ConfigError, match="--n-trials must be >= 1"):
        run_worker(study, objective, 0)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # study.ask() stands in for another worker
def test_a_trial_beyond_the_budget_is_not_trained(tmp_path: Path) -> None:
    study = cheap_study(tmp_path)
    for value in (1.0, 2.0):
        study.add_trial(create_trial(value=value, params={"x": value}, distributions={"x": FloatDistribution(0, 3)}))
    study.ask()  # another worker is running the third and last trial
    called: list[int] = []
    guard = BudgetGuard(study, lambda trial: called.append(trial.number) or 0.0, n_trials=3)
    study.optimize(guard, n_trials=1, catch=(SurplusTrialError,))
    surplus = study.trials[-1]
    assert called == [] and surplus.state == TrialState.FAIL and surplus.user_attrs["surplus"] is True


def test_diverged_trials_fail_and_too_many_in_a_row_stop_the_worker(tmp_path: Path) -> None:
    study = cheap_study(tmp_path)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number != 1:  # trial 1 trains fine, every other one diverges
            raise TrialDivergedError(f"trial {trial.number} diverged")
        return x

    with pytest.raises(RLBreakoutError, match=f"{MAX_DIVERGED_TRIALS_IN_A_ROW} trials in a row diverged"):
        run_worker(study, objective, 10)
    states = [t.state for t in study.trials]
    # one failure, the success resets the count, then five failures in a row stop it
    assert states == [TrialState.FAIL, TrialState.COMPLETE] + [TrialState.FAIL] * MAX_DIVERGED_TRIALS_IN_A_ROW


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_sigkilled_worker_leaves_its_trial_failed_and_retried(tmp_path: Path) -> None:
    url, markers, n_trials = sqlite_url(tmp_path, "kill.db"), tmp_path / "markers", 3
    first = start_worker(url, "crash", n_trials, markers, sleep=3.0)
    wait_for(markers / "started_1", timeout=120, process=first)  # trial 0 done, trial 1 half way
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    second = start_worker(url, "crash", n_trials, markers, sleep=0.2, seed=1)
    _, err = second.communicate(timeout=180)
    assert second.returncode == 0, err[-3000:]

    trials = optuna.load_study(study_name="crash", storage=url).trials
    by_number = {t.number: t for t in trials}
    assert by_number[0].state == TrialState.COMPLETE  # finished before the kill: kept
    assert by_number[1].state == TrialState.FAIL  # killed: not left RUNNING
    retries = [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == 1]
    assert [t.state for t in retries] == [TrialState.COMPLETE]
    assert retries[0].params == by_number[1].params  # the same settings were run again
    assert state_counts(optuna.load_study(study_name="crash", storage=url)) == {
        TrialState.COMPLETE: n_trials, TrialState.FAIL: 1}


def test_promotion_enqueues_the_top_k_once(tmp_path: Path) -> None:
    short = cheap_study(tmp_path, "short")
    dist = {"x": FloatDistribution(0, 10)}
    for value in (3.0, 9.0, 1.0, 7.0):
        short.add_trial(create_trial(value=value, params={"x": value}, distributions=dist))
    long = cheap_study(tmp_path, "long")
    assert promote_top_trials(short, long, 2) == [1, 3]
    assert promote_top_trials(short, long, 2) == [1, 3]  # a second worker promoting again adds nothing
    assert promoted_count(long) == 2 and all(t.state == TrialState.WAITING for t in long.trials)
    run_worker(long, lambda trial: trial.suggest_float("x", 0, 10) * 10, promoted_count(long))
    assert [(t.params, t.value, t.user_attrs["promoted_from_trial"]) for t in long.trials] == [
        ({"x": 9.0}, 90.0, 1), ({"x": 7.0}, 70.0, 3)]


def test_promoting_from_a_study_without_complete_trials_is_one_line(tmp_path: Path) -> None:
    short = cheap_study(tmp_path, "short")
    short.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 1.0}, distributions={"x": FloatDistribution(0, 3)}))
    with pytest.raises(RLBreakoutError, match="has no COMPLETE trial to promote"):
        promote_top_trials(short, cheap_study(tmp_path, "long"), 1)
