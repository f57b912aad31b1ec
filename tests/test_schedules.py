"""Schedules: values, readable reprs, and the scale-invariant exponential schedule."""

from __future__ import annotations

import pickle

import pytest

from rlbreakout.errors import ConfigError
from rlbreakout.schedules import constant_schedule, exponential_schedule, linear_schedule, make_schedule


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
