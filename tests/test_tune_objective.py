"""rlbreakout.tune.objective with tiny real trainings: pruning, divergence, what a trial records."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from rlbreakout.callbacks import MultiEnvEvalCallback
from rlbreakout.envs import make_env
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.runs import Run
from rlbreakout.training import build_ppo
from rlbreakout.tune.objective import (
    TrialEvalCallback,
    has_non_finite_weights,
    readable_schedule,
    trial_eval_freq,
    trial_training,
)
from rlbreakout.tune.workers import TrialDivergedError, run_worker

optuna.logging.set_verbosity(optuna.logging.WARNING)
TINY = ZOO_ATARI_PPO.replace(n_envs=2, n_steps=64, batch_size=64, n_epochs=1)
ENV_ID = "Breakout-v4"


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(__file__, env_id=ENV_ID, seed=0, logdir=tmp_path, config={})


def tiny_objective(run: Run, timesteps: int, evals: int, learning_rate=lambda trial: 2.5e-4):
    """The shape of the chapter scripts' objective, with tiny settings."""

    def objective(trial: optuna.Trial) -> float:
        config = TINY.replace(learning_rate=learning_rate(trial))
        with (closing(make_env(ENV_ID, config.n_envs, seed=0)) as env,
              closing(make_env(ENV_ID, 1, seed=1)) as eval_env):
            model = build_ppo(config, env, timesteps=timesteps, tensorboard_log=run.dir, seed=0, device="cpu")
            evaluator = TrialEvalCallback(trial, {"v4": eval_env}, trial_eval_freq(timesteps, evals), 1)
            with trial_training(trial, model, run, evaluator):
                model.learn(total_timesteps=timesteps, callback=evaluator, tb_log_name=f"trial_{trial.number}")
        return evaluator.score()

    return objective


def test_trial_eval_callback_is_the_chapter_2_callback() -> None:
    assert issubclass(TrialEvalCallback, MultiEnvEvalCallback)
    assert TrialEvalCallback.after_evaluation is not MultiEnvEvalCallback.after_evaluation
    assert TrialEvalCallback.evaluate is MultiEnvEvalCallback.evaluate


def test_eval_freq_spreads_the_evaluations_over_the_trial() -> None:
    assert trial_eval_freq(1000, 4) == 250 and trial_eval_freq(3, 4) == 1


@pytest.mark.slow
def test_a_complete_trial_records_what_it_trained(run: Run) -> None:
    study = optuna.create_study(direction="maximize")
    study.optimize(tiny_objective(run, timesteps=128, evals=2), n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE and trial.value == trial.intermediate_values[128]
    assert sorted(trial.intermediate_values) == [64, 128]  # reported at the scheduled steps
    assert trial.user_attrs["timesteps_trained"] == 128
    assert Path(trial.user_attrs["tensorboard_dir"]) == run.dir / "trial_0_1"
    assert trial.user_attrs["learning_rate_schedule"].startswith("linear(")
    assert run.trained_steps == 128 and run.train_seconds > 0


@pytest.mark.slow
def test_pruned_trial_is_recorded_pruned_not_complete(run: Run) -> None:
    # a pruner that gives up on every trial at its first report: the objective must raise TrialPruned
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=math.inf))
    assert run_worker(study, tiny_objective(run, timesteps=256, evals=2), 1) == [0]
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED  # Optuna keeps the last reported score as its value
    assert list(trial.intermediate_values) == [128]
    assert run.trained_steps == 128  # half the budget: pruning stopped the training


@pytest.mark.slow
def test_a_diverged_trial_fails_and_the_worker_goes_on(run: Run) -> None:
    study = optuna.create_study(direction="maximize")
    # a learning rate of 1000 turns the policy's weights into NaN within two rollouts
    objective = tiny_objective(run, timesteps=256, evals=1,
                               learning_rate=lambda trial: 1e3 if trial.number == 0 else 2.5e-4)
    assert run_worker(study, objective, 1) == [0, 1]
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]


def tiny_trial() -> tuple:
    """A tiny untrained PPO, a fresh trial of a new study, and its evaluator (env closed)."""
    with closing(make_env(ENV_ID, 1, seed=0)) as env:
        model = build_ppo(TINY.replace(n_envs=1, batch_size=64), env, timesteps=64, device="cpu")
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    evaluator = TrialEvalCallback(trial, {"v4": env}, 64, 1)
    return model, trial, evaluator


def test_non_finite_weights_are_detected_and_other_errors_go_on(run: Run) -> None:
    model, trial, evaluator = tiny_trial()
    assert not has_non_finite_weights(model)
    with pytest.raises(ValueError, match="not a divergence"), trial_training(trial, model, run, evaluator):
        raise ValueError("not a divergence")  # finite weights: the error is not turned into a FAIL
    with torch.no_grad():
        next(model.policy.parameters()).view(-1)[0] = float("inf")
    assert has_non_finite_weights(model)
    with pytest.raises(TrialDivergedError, match="diverged"), trial_training(trial, model, run, evaluator):
        raise ValueError("Expected parameter logits to satisfy the constraint")


def test_overflowing_logits_are_a_divergence_even_with_finite_weights(run: Run) -> None:
    model, trial, evaluator = tiny_trial()
    assert not has_non_finite_weights(model)
    with pytest.raises(TrialDivergedError, match="non-finite action probabilities"), \
            trial_training(trial, model, run, evaluator):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    with pytest.raises(RuntimeError, match="out of memory"), trial_training(trial, model, run, evaluator):
        raise RuntimeError("out of memory")  # finite weights, another error: it goes on


def test_readable_schedule_unwraps_sb3s_float_schedule() -> None:
    from stable_baselines3.common.utils import FloatSchedule

    from rlbreakout.schedules import make_schedule

    schedule = make_schedule("linear", 0.1, total_timesteps=100)
    assert readable_schedule(FloatSchedule(schedule)) == repr(schedule) == readable_schedule(schedule)
