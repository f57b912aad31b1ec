"""Learning-rate and clip-range schedules as small callable objects with a readable repr.

SB3 calls a schedule with ``progress_remaining``, which goes from 1 (start) to 0
(end of ``learn``). Objects (not lambdas) pickle into saved models and show up in
logs as ``linear(0.00025)`` instead of ``<function <lambda>>``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlbreakout.errors import ConfigError

SCHEDULE_CHOICES: tuple[str, ...] = ("constant", "linear", "exponential")


@dataclass(frozen=True)
class ConstantSchedule:
    """The same value for the whole run."""

    value: float

    def __call__(self, progress_remaining: float) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"constant({self.value:g})"


@dataclass(frozen=True)
class LinearSchedule:
    """From ``initial`` at the start down to 0 at the end of training (rl-zoo's ``lin_``)."""

    initial: float

    def __call__(self, progress_remaining: float) -> float:
        return self.initial * progress_remaining

    def __repr__(self) -> str:
        return f"linear({self.initial:g})"


@dataclass(frozen=True)
class ExponentialSchedule:
    """Halves every ``half_life`` env steps: ``initial * 0.5 ** (steps_done / half_life)``.

    ``steps_done = (1 - progress_remaining) * total_timesteps``, so two runs of
    different length have the same value at the same step. The original tutorial's
    exponential schedule was a function of progress alone, so a longer run decayed
    more slowly per step and tuned values did not transfer between budgets.
    """

    initial: float
    half_life: float
    total_timesteps: int

    def __call__(self, progress_remaining: float) -> float:
        steps_done = (1.0 - progress_remaining) * self.total_timesteps
        return self.initial * 0.5 ** (steps_done / self.half_life)

    def __repr__(self) -> str:
        return f"exponential({self.initial:g}, half_life={self.half_life:g}, total_timesteps={self.total_timesteps})"


#: Any of the schedules above: a callable of SB3's progress_remaining with a readable repr.
Schedule = ConstantSchedule | LinearSchedule | ExponentialSchedule


def constant_schedule(value: float) -> ConstantSchedule:
    """A schedule that always returns ``value``."""
    return ConstantSchedule(float(value))


def linear_schedule(initial: float) -> LinearSchedule:
    """A schedule falling linearly from ``initial`` to 0 over the run."""
    return LinearSchedule(float(initial))


def exponential_schedule(initial: float, half_life: float, total_timesteps: int) -> ExponentialSchedule:
    """A schedule halving every ``half_life`` env steps, whatever the run length."""
    if half_life <= 0:
        raise ConfigError(f"half_life must be > 0 env steps, got {half_life}.")
    if total_timesteps <= 0:
        raise ConfigError(f"total_timesteps must be > 0, got {total_timesteps}.")
    return ExponentialSchedule(float(initial), float(half_life), int(total_timesteps))


def make_schedule(
    kind: str, initial: float, *, total_timesteps: int | None = None, half_life: float | None = None
) -> ConstantSchedule | LinearSchedule | ExponentialSchedule:
    """Build a schedule by name (``constant``, ``linear``, ``exponential``); used by flags and Optuna."""
    if kind == "constant":
        return constant_schedule(initial)
    if kind == "linear":
        return linear_schedule(initial)
    if kind == "exponential":
        if total_timesteps is None or half_life is None:
            raise ConfigError("an exponential schedule needs total_timesteps and half_life.")
        return exponential_schedule(initial, half_life, total_timesteps)
    raise ConfigError(f"unknown schedule {kind!r}; choose one of: {', '.join(SCHEDULE_CHOICES)}.")
