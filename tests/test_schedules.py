"""Schedules: values, readable reprs, the scale-invariant exponential schedule, and continuing them on a resume."""

from __future__ import annotations

import pickle

import pytest

from rlbreakout.errors import ConfigError
from rlbreakout.schedules import (
    ExponentialSchedule,
    ReplannedLinearSchedule,
    constant_schedule,
    continue_schedule,
    exponential_schedule,
    linear_schedule,
    make_schedule,
)


def progress_at(step: int, total: int) -> float:
    """SB3's progress_remaining after ``step`` of ``total`` env steps."""
    return 1.0 - step / total


def test_constant_and_linear_values() -> None:
    assert constant_schedule(0.1)(0.3) == 0.1
    assert linear_schedule(2.5e-4)(1.0) == pytest.approx(2.5e-4)
    assert linear_schedule(2.5e-4)(0.5) == pytest.approx(1.25e-4)
    assert linear_schedule(2.5e-4)(0.0) == 0.0


def test_reprs_are_readable() -> None:
    assert repr(constant_schedule(0.1)) == "constant(0.1)"
    assert repr(linear_schedule(2.5e-4)) == "linear(0.00025)"
    assert repr(exponential_schedule(1e-3, 1000, 4000)) == "exponential(0.001, half_life=1000, total_timesteps=4000)"


def test_exponential_halves_every_half_life() -> None:
    schedule = exponential_schedule(1.0, half_life=1_000, total_timesteps=4_000)
    assert schedule(progress_at(0, 4_000)) == pytest.approx(1.0)
    assert schedule(progress_at(1_000, 4_000)) == pytest.approx(0.5)
    assert schedule(progress_at(3_000, 4_000)) == pytest.approx(0.125)


@pytest.mark.parametrize("step", [0, 500, 1_000, 3_333, 10_000])
def test_exponential_has_the_same_value_at_the_same_step_for_two_run_lengths(step: int) -> None:
    short = exponential_schedule(3e-4, half_life=2_000, total_timesteps=10_000)
    long = exponential_schedule(3e-4, half_life=2_000, total_timesteps=1_000_000)
    assert short(progress_at(step, 10_000)) == pytest.approx(long(progress_at(step, 1_000_000)))


def test_linear_differs_between_run_lengths_which_is_why_exponential_exists() -> None:
    # the same step is a different fraction of a short and a long run
    assert linear_schedule(1.0)(progress_at(5_000, 10_000)) != linear_schedule(1.0)(progress_at(5_000, 100_000))


def test_schedules_pickle_into_saved_models() -> None:
    schedule = exponential_schedule(1e-3, 100, 1000)
    assert pickle.loads(pickle.dumps(schedule))(0.5) == schedule(0.5)


def test_make_schedule_by_name_and_errors() -> None:
    assert repr(make_schedule("linear", 0.1)) == "linear(0.1)"
    assert make_schedule("exponential", 1.0, total_timesteps=100, half_life=50)(0.5) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="constant, linear, exponential"):
        make_schedule("cosine", 0.1)
    with pytest.raises(ConfigError, match="half_life"):
        exponential_schedule(1.0, 0, 100)


def extend(schedule, step: int, planned: int, new_total: int):
    return continue_schedule(schedule, name="learning rate", flag="--lr-schedule", step=step,
                             planned_total=planned, new_total=new_total)


@pytest.mark.parametrize("schedule", [constant_schedule(0.1), linear_schedule(0.1), exponential_schedule(0.1, 300, 1_000)])
def test_a_resume_with_the_same_total_keeps_the_schedule(schedule) -> None:
    kept, line = extend(schedule, 400, 1_000, 1_000)
    assert kept is schedule and "goes on from step 400" in line


@pytest.mark.parametrize("schedule", [linear_schedule(0.1), exponential_schedule(0.1, 300, 1_000), constant_schedule(0.1)])
def test_an_extension_goes_on_from_the_value_it_had_when_it_stopped(schedule) -> None:
    """SB3 recomputes progress against the extended total; the continued schedule has no jump."""
    stopped = schedule(progress_at(400, 1_000))
    continued, line = extend(schedule, 400, 1_000, 3_000)
    assert continued(progress_at(400, 3_000)) == pytest.approx(stopped)
    assert line.startswith(f"learning rate {repr(schedule).split('(')[0]}: ")


def test_an_extended_linear_schedule_is_replanned_to_zero_over_the_steps_left() -> None:
    continued, line = extend(linear_schedule(0.1), 400, 1_000, 3_000)
    assert isinstance(continued, ReplannedLinearSchedule)
    assert continued(progress_at(1_700, 3_000)) == pytest.approx(0.06 / 2)  # halfway from 0.06 at 400 to 0 at 3000
    assert continued(progress_at(3_000, 3_000)) == 0.0
    assert line == "learning rate linear: re-planned from 0.06 at step 400 to 0 at step 3,000 (over the 2,600 steps left)"
    again, _ = extend(continued, 1_700, 3_000, 5_000)  # extended twice: still no jump
    assert again(progress_at(1_700, 5_000)) == pytest.approx(0.03)


def test_an_extended_exponential_schedule_keeps_halving_per_env_step() -> None:
    continued, line = extend(exponential_schedule(0.8, 300, 1_000), 600, 1_000, 3_000)
    assert isinstance(continued, ExponentialSchedule) and continued.total_timesteps == 3_000
    assert continued(progress_at(900, 3_000)) == pytest.approx(0.1)  # 3 half-lives
    assert line.startswith("learning rate exponential: keeps halving every 300 env steps, 0.2 at step 600")


def test_a_finished_linear_schedule_cannot_be_extended_and_the_error_names_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"reached 0 at step 1,000.*--timesteps 2000.*--lr-schedule exponential"):
        extend(linear_schedule(0.1), 1_000, 1_000, 2_000)


def test_each_schedule_by_name_and_each_bad_argument_named() -> None:
    assert repr(make_schedule("constant", 0.1)) == "constant(0.1)" and make_schedule("constant", 0.1)(0.0) == 0.1
    # the smallest valid half-life and run length (any positive number of env steps)
    assert exponential_schedule(1.0, half_life=1, total_timesteps=1)(0.0) == pytest.approx(0.5)
    assert exponential_schedule(1.0, half_life=0.5, total_timesteps=2)(0.5) == pytest.approx(0.25)
    with pytest.raises(ConfigError, match=r"^total_timesteps must be > 0, got 0\.$"):
        exponential_schedule(1.0, 100, 0)
    with pytest.raises(ConfigError, match=r"^half_life must be > 0 env steps, got -1\.$"):
        exponential_schedule(1.0, -1, 100)
    for missing in ({"total_timesteps": 100}, {"half_life": 50.0}):  # either one missing is an error
        with pytest.raises(ConfigError, match=r"^an exponential schedule needs total_timesteps and half_life\.$"):
            make_schedule("exponential", 1.0, **missing)


def test_a_checkpoint_saved_before_any_training_continues_from_the_start_value() -> None:
    """SB3 saves ``_total_timesteps`` 0 for a model that never learned: no division by it."""
    continued, line = extend(linear_schedule(0.1), 0, 0, 1_000)
    assert continued(progress_at(0, 1_000)) == pytest.approx(0.1) and continued(progress_at(1_000, 1_000)) == 0.0
    assert line.startswith("learning rate linear: re-planned from 0.1 at step 0")


def test_sb3s_float_schedule_wrapper_is_looked_through() -> None:
    """A loaded checkpoint holds SB3's ``FloatSchedule`` around ours: the extension sees the linear one inside."""
    from stable_baselines3.common.utils import FloatSchedule

    continued, line = extend(FloatSchedule(linear_schedule(0.1)), 400, 1_000, 3_000)
    assert isinstance(continued, ReplannedLinearSchedule)
    assert line.startswith("learning rate linear: re-planned from 0.06 at step 400")


def test_a_one_step_run_that_trained_its_step_is_finished() -> None:
    """planned_total 1 is a real plan (not the 0 of a checkpoint saved before training): its step 1 is the end."""
    with pytest.raises(ConfigError, match=r"reached 0 at step 1,"):
        extend(linear_schedule(0.1), 1, 1, 2)


def test_the_extension_line_gives_the_exponential_value_at_the_new_total() -> None:
    _, line = extend(exponential_schedule(0.8, 300, 1_000), 600, 1_000, 3_000)
    assert line == ("learning rate exponential: keeps halving every 300 env steps, 0.2 at step 600, "
                    "0.00078125 at step 3,000")  # 0.8 halved 10 times over 3,000 steps


def test_an_unknown_schedule_is_refused_with_the_choices_and_the_fix() -> None:
    def cosine(progress_remaining: float) -> float:
        return progress_remaining

    with pytest.raises(ConfigError) as refused:
        extend(cosine, 400, 1_000, 3_000)
    assert str(refused.value).startswith("cannot extend this run: its learning rate schedule <function ")
    assert str(refused.value).endswith(" is not one of constant, linear, exponential; "
                                       "resume it with its own --timesteps 1000.")
