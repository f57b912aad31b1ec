"""rlbreakout.tuning against real Optuna storage (SQLite files), real envs and tiny real trainings."""

from __future__ import annotations

import argparse
import math
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FixedTrial, TrialState, create_trial

from conftest_postgres import start_worker, wait_for
from rlbreakout.callbacks import MultiEnvEvalCallback
from rlbreakout.envs import BREAKOUT_ENV_IDS
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.schedules import make_schedule
from rlbreakout.training import validate_ppo_args
from rlbreakout.tuning import (
    BudgetGuard,
    DEFAULT_GRID,
    STORAGE_ENV_VAR,
    StudyObjective,
    SurplusTrialError,
    TrialEvalCallback,
    check_grid,
    default_storage_url,
    env_comparison_table,
    impute_pruned,
    largest_batch_size,
    open_storage,
    open_study,
    param_importances,
    promote_top_trials,
    promoted_count,
    resolve_storage_url,
    run_worker,
    sample_schedule_params,
    sample_wrapper_params,
    save_study_plots,
    state_counts,
    trained_run_dirs,
    trial_config,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tiny_args(**overrides: object) -> argparse.Namespace:
    values = dict(env="Breakout-v4", n_envs=2, timesteps=128, seed=0, device="cpu", evals_per_trial=1,
                  eval_episodes=1, eval_env=None, n_steps=64, batch_size=64, n_epochs=1)
    return argparse.Namespace(**{**values, **overrides})


def sqlite_url(tmp_path: Path, name: str = "studies.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def cheap_study(tmp_path: Path, name: str = "s") -> optuna.Study:
    return open_study(open_storage(sqlite_url(tmp_path)), name, sampler=optuna.samplers.RandomSampler(seed=0))


# %% Search spaces


def test_wrapper_space_samples_only_valid_trainable_settings() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen_envs, seen_n_envs = set(), set()
    for _ in range(60):
        trial = study.ask()
        params = sample_wrapper_params(trial, max_n_envs=8, wrapper="aimbot")
        config = {**trial_config(tiny_args(timesteps=1024)), **params}
        validate_ppo_args(argparse.Namespace(**config))  # raises on any invalid combination
        no_emulator_skip = params["env"] == "BreakoutNoFrameskip-v4"
        assert ("frame_skip" in params["wrapper_kwargs"]) == no_emulator_skip
        assert set(params["wrapper_kwargs"]) >= {"colour", "crop", "prediction"}
        assert trial.user_attrs["n_envs"] == params["n_envs"] == 2 ** trial.params["log2_n_envs"] <= 8
        assert trial.user_attrs["batch_size"] == params["batch_size"]
        assert (params["n_steps"] * params["n_envs"]) % params["batch_size"] == 0
        seen_envs.add(params["env"])
        seen_n_envs.add(params["n_envs"])
    assert seen_envs == set(BREAKOUT_ENV_IDS) and seen_n_envs == {1, 2, 4, 8}


def test_wrapper_space_readable_values_and_frames_per_action() -> None:
    trial = FixedTrial({"env_id": "Breakout-v4", "frame_stack": 3, "log2_n_envs": 0})
    params = sample_wrapper_params(trial, wrapper="atari")
    # one env: the zoo's batch of 256 does not fit a 128-step rollout, so the rollout's largest divisor is used
    assert params == {"env": "Breakout-v4", "n_envs": 1, "frame_stack": 3, "n_steps": 128, "batch_size": 128,
                      "wrapper": "atari", "wrapper_kwargs": None}
    assert trial.user_attrs == {"n_envs": 1, "frames_per_action": "2-4", "batch_size": 128}
    assert largest_batch_size(256, 384) == 192 and largest_batch_size(64, 1024) == 64


def test_schedule_space_samples_half_life_only_for_exponential_schedules() -> None:
    constant = sample_schedule_params(FixedTrial({"learning_rate": 3e-4, "lr_schedule": "constant",
                                                  "clip_range": 0.1, "clip_schedule": "linear"}))
    assert "half_life" not in constant
    exponential = sample_schedule_params(FixedTrial({"learning_rate": 1e-3, "lr_schedule": "exponential",
                                                     "clip_range": 0.1, "clip_schedule": "constant",
                                                     "half_life": 2e5}))
    assert exponential["half_life"] == 2e5
    schedule = make_schedule("exponential", 1e-3, total_timesteps=10_000_000, half_life=exponential["half_life"])
    assert schedule(1.0 - 2e5 / 10_000_000) == pytest.approx(5e-4)  # halved after one half-life, whatever the run length


def test_grid_must_be_valid_for_every_point() -> None:
    assert check_grid(DEFAULT_GRID, n_envs=8) == 27
    with pytest.raises(ConfigError, match="batch_size 48, n_steps 32 is invalid"):
        check_grid({"batch_size": [32, 48], "n_epochs": [1], "n_steps": [32]}, n_envs=2)


# %% Storage


def test_storage_url_comes_from_flag_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_ENV_VAR, raising=False)
    assert resolve_storage_url(None, "runs") == default_storage_url("runs") == "sqlite:///runs/optuna/studies.db"
    monkeypatch.setenv(STORAGE_ENV_VAR, "postgresql://me@db/optuna")
    assert resolve_storage_url(None, "runs") == "postgresql://me@db/optuna"
    assert resolve_storage_url("sqlite:///x.db", "runs") == "sqlite:///x.db"


@pytest.mark.parametrize("url, reason, fix", [
    ("postgresql://me:secret@127.0.0.1:1/db", "Connection refused", "Check --storage"),
    ("nosuchdb://host/db", "Can't load plugin", "Check --storage"),
    ("not a url", "not a database URL", "Check --storage"),
    ("mysql://me@127.0.0.1:1/db", "Failed to import DB access module", "Install the database's Python driver"),
])
def test_unreachable_storage_is_one_clear_line(url: str, reason: str, fix: str) -> None:
    with pytest.raises(RLBreakoutError) as info:
        open_storage(url, connect_timeout=2)
    message = str(info.value)
    assert message.startswith("cannot reach Optuna storage ") and reason in message and fix in message
    assert "\n" not in message and "secret" not in message


def test_sqlite_storage_under_a_file_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(RLBreakoutError, match="cannot reach Optuna storage sqlite:///.*file/db.sqlite: "):
        open_storage(f"sqlite:///{tmp_path}/file/db.sqlite")


def test_joining_a_study_with_a_different_budget_is_refused(tmp_path: Path) -> None:
    storage = open_storage(sqlite_url(tmp_path))
    open_study(storage, "s", sampler=optuna.samplers.RandomSampler(), settings={"timesteps_per_trial": 1000})
    open_study(storage, "s", sampler=optuna.samplers.RandomSampler(), settings={"timesteps_per_trial": 1000})
    with pytest.raises(ConfigError, match="created with timesteps_per_trial = 1000, this worker has 2000"):
        open_study(storage, "s", sampler=optuna.samplers.RandomSampler(), settings={"timesteps_per_trial": 2000})


# %% Workers


def test_a_second_worker_only_runs_what_is_left(tmp_path: Path) -> None:
    study = cheap_study(tmp_path)
    objective = lambda trial: trial.suggest_float("x", 0, 1)  # noqa: E731
    assert run_worker(study, objective, 2) == [0, 1]
    assert run_worker(study, objective, 3) == [2]
    assert run_worker(study, objective, 3) == []
    assert state_counts(study)[TrialState.COMPLETE] == 3


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
    storage = open_storage(sqlite_url(tmp_path))
    short = open_study(storage, "short", sampler=optuna.samplers.RandomSampler())
    dist = {"x": FloatDistribution(0, 10)}
    for value in (3.0, 9.0, 1.0, 7.0):
        short.add_trial(create_trial(value=value, params={"x": value}, distributions=dist))
    long = open_study(storage, "long", sampler=optuna.samplers.RandomSampler())
    assert promote_top_trials(short, long, 2) == [1, 3]
    assert promote_top_trials(short, long, 2) == [1, 3]  # a second worker promoting again adds nothing
    assert promoted_count(long) == 2 and all(t.state == TrialState.WAITING for t in long.trials)
    run_worker(long, lambda trial: trial.suggest_float("x", 0, 10) * 10, promoted_count(long))
    assert [(t.params, t.value, t.user_attrs["promoted_from_trial"]) for t in long.trials] == [
        ({"x": 9.0}, 90.0, 1), ({"x": 7.0}, 70.0, 3)]


# %% Trials: real tiny trainings


def test_trial_eval_callback_is_the_chapter_2_callback() -> None:
    assert issubclass(TrialEvalCallback, MultiEnvEvalCallback)
    assert TrialEvalCallback.after_evaluation is not MultiEnvEvalCallback.after_evaluation
    assert TrialEvalCallback.evaluate is MultiEnvEvalCallback.evaluate


@pytest.fixture
def restore_torch_threads() -> Iterator[None]:
    """StudyObjective sets torch's thread count for its process; give other tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.usefixtures("restore_torch_threads")
def test_pruned_trial_is_recorded_pruned_not_complete(tmp_path: Path) -> None:
    storage = open_storage(sqlite_url(tmp_path))
    # a pruner that gives up on every trial at its first report: the real objective must raise TrialPruned
    study = open_study(storage, "p", sampler=optuna.samplers.RandomSampler(seed=0),
                       pruner=optuna.pruners.ThresholdPruner(lower=math.inf))
    objective = StudyObjective(sample_schedule_params, trial_config(tiny_args(timesteps=256, evals_per_trial=2)),
                               tmp_path / "run")
    assert run_worker(study, objective, 1) == [0]
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED  # Optuna keeps the last reported score as its value
    assert list(trial.intermediate_values) == [128] and trial.value == trial.intermediate_values[128]
    assert objective.steps_trained == 128  # half the budget: pruning stopped the training


@pytest.mark.slow
@pytest.mark.usefixtures("restore_torch_threads")
def test_a_diverged_trial_fails_and_the_worker_goes_on(tmp_path: Path) -> None:
    study = cheap_study(tmp_path)
    # a learning rate of 1000 turns the policy's logits into NaN within two rollouts
    sample = lambda trial: {"learning_rate": 1e3 if trial.number == 0 else 2.5e-4}  # noqa: E731
    objective = StudyObjective(sample, trial_config(tiny_args(timesteps=256)), tmp_path / "run")
    assert run_worker(study, objective, 1) == [0, 1]
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]


# %% Analysis


def study_with_pruned_trials(tmp_path: Path) -> optuna.Study:
    """env 'bad' always gets pruned; among the complete trials only lr matters."""
    study = cheap_study(tmp_path, "imputed")
    dists = {"env": CategoricalDistribution(("good", "bad")), "lr": FloatDistribution(0.0, 1.0)}
    for i in range(24):
        env, lr = ("bad", "good")[i % 2], (i * 7 % 24) / 24
        state = TrialState.PRUNED if env == "bad" else TrialState.COMPLETE
        study.add_trial(create_trial(state=state, value=100 + 50 * lr if state == TrialState.COMPLETE else None,
                                     params={"env": env, "lr": lr}, distributions=dists,
                                     intermediate_values={100: 1.0 + lr}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"env": "good", "lr": 0.5}, distributions=dists))
    return study


def test_importance_with_pruned_trials_imputed_as_zero(tmp_path: Path) -> None:
    study = study_with_pruned_trials(tmp_path)
    imputed = impute_pruned(study, 0.0)
    assert len(imputed.trials) == 24 and {t.state for t in imputed.trials} == {TrialState.COMPLETE}
    assert sorted(t.value for t in imputed.trials if t.params["env"] == "bad") == [0.0] * 12
    assert all(t.user_attrs.get("imputed") for t in imputed.trials if t.params["env"] == "bad")
    assert state_counts(study)[TrialState.PRUNED] == 12  # the stored study is untouched
    plain, with_pruned = param_importances(study), param_importances(imputed)
    assert plain["lr"] > plain["env"]  # complete trials alone: env never varies, so it seems not to matter
    assert with_pruned["env"] > with_pruned["lr"]  # counting the pruned ones, env decides most


@pytest.mark.slow
def test_study_plots_are_saved_as_html_and_png(tmp_path: Path) -> None:
    # imputed, so that both env and lr vary among the complete trials and a contour can be drawn
    written = save_study_plots(impute_pruned(study_with_pruned_trials(tmp_path)), tmp_path / "plots")
    names = {p.name for p in written}
    for plot in ("optimization_history", "intermediate_values", "param_importances", "parallel_coordinate", "contour"):
        assert {f"{plot}.html", f"{plot}.png"} <= names
    assert all(p.stat().st_size > 1000 for p in written)
    assert (tmp_path / "plots" / "plotly.min.js").is_file()  # HTML works offline


def test_env_comparison_table_has_a_row_per_training_env(tmp_path: Path) -> None:
    study = cheap_study(tmp_path)
    dist = {"train_env": CategoricalDistribution(BREAKOUT_ENV_IDS)}
    for env_id, score in (("BreakoutNoFrameskip-v4", 30.0), ("ALE/Breakout-v5", 12.0)):
        scores = {label: {"mean_reward": score + 1, "median_reward": score, "n_games": 2} for label in ("v4", "v4NoFS", "v5")}
        study.add_trial(create_trial(value=score, params={"train_env": env_id}, distributions=dist,
                                     user_attrs={"eval_scores": scores}))
    table = env_comparison_table(study).splitlines()
    assert table[0] == "| trained on \\ scored on | v4 | v4NoFS | v5 |"
    assert table[2:] == ["| v4NoFS | 30.0 (31.0) | 30.0 (31.0) | 30.0 (31.0) |", "| v5 | 12.0 (13.0) | 12.0 (13.0) | 12.0 (13.0) |"]


def test_trained_run_dirs_maps_each_finished_training_env_to_its_run_folder(tmp_path: Path) -> None:
    study = cheap_study(tmp_path)
    dist = {"train_env": CategoricalDistribution(BREAKOUT_ENV_IDS)}
    study.add_trial(create_trial(value=3.0, params={"train_env": "ALE/Breakout-v5"}, distributions=dist,
                                 user_attrs={"run_dir": str(tmp_path / "v5run")}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"train_env": "Breakout-v4"}, distributions=dist,
                                 user_attrs={"run_dir": str(tmp_path / "failed")}))
    study.add_trial(create_trial(value=1.0, params={"train_env": "BreakoutNoFrameskip-v4"}, distributions=dist))
    assert trained_run_dirs(study) == {"ALE/Breakout-v5": tmp_path / "v5run"}  # failed and folder-less trials left out
