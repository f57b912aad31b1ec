"""Learning-rate and clip-range schedules as small callable objects with a readable repr.

SB3 calls a schedule with ``progress_remaining``, which goes from 1 (start) to 0
(end of ``learn``). Objects (not lambdas) pickle into saved models and show up in
logs as ``linear(0.00025)`` instead of ``<function <lambda>>``.

A resumed run (``--resume``) with the same ``--timesteps`` goes on as before: SB3 computes
``progress_remaining = 1 - steps_done / total_timesteps`` from the saved step count. A run
extended (or shortened) with another ``--timesteps`` gets a new total, and
:func:`continue_schedule` says what each schedule does from there.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlbreakout.errors import ConfigError

SCHEDULE_CHOICES: tuple[str, ...] = ("constant", "linear", "exponential")
#: Env steps per halving of an exponential schedule when no ``--half-life`` is given. A fixed
#: number of steps, not a share of the run, so a 1e6-step and a 1e7-step run have the same
#: value at the same step; 250,000 is the quarter of a 1e6-step run that the earlier default
#: (``timesteps / 4``) gave the chapters' 1e6-step runs.
DEFAULT_HALF_LIFE = 250_000


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


@dataclass(frozen=True)
class ReplannedLinearSchedule:
    """A linear schedule re-planned for an extended run: ``value`` at ``start_step``, 0 at ``total_timesteps``.

    SB3 recomputes ``progress_remaining`` against the extended run's total, under which a
    plain :class:`LinearSchedule` would jump (one that reached 0 at 1e6 would be back at
    half its initial value in a run extended to 2e6); this one goes on from where it was.
    """

    value: float
    start_step: int
    total_timesteps: int

    def __call__(self, progress_remaining: float) -> float:
        steps_done = (1.0 - progress_remaining) * self.total_timesteps
        return self.value * max(self.total_timesteps - steps_done, 0.0) / (self.total_timesteps - self.start_step)

    def __repr__(self) -> str:
        return f"linear({self.value:g} at step {self.start_step} to 0 at {self.total_timesteps})"


#: Any of the schedules above: a callable of SB3's progress_remaining with a readable repr.
Schedule = ConstantSchedule | LinearSchedule | ExponentialSchedule | ReplannedLinearSchedule


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
) -> Schedule:
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


def continue_schedule(schedule: Schedule, *, name: str, flag: str, step: int, planned_total: int,
                      new_total: int) -> tuple[Schedule, str]:
    """The schedule a resumed run follows from env step ``step`` to ``new_total``, and one line saying so.

    :param schedule: the checkpoint's schedule (SB3's ``FloatSchedule`` wrapper is looked through)
    :param name: what it schedules, for the line (``learning rate``, ``clip range``)
    :param flag: the flag that chooses its kind (``--lr-schedule``), named in a refusal
    :param planned_total: the total the checkpoint was training towards
    :param new_total: this run's ``--timesteps``

    With the same total nothing changes. On an extension a constant stays, an exponential
    keeps halving every ``half_life`` env steps (only its total, which turns SB3's progress
    back into steps, is updated), and a linear one is re-planned from its present value to
    0 at the new total; one that has already reached 0 is refused with the fix, as more
    steps at 0 would not learn.
    """
    schedule = getattr(schedule, "value_schedule", schedule)
    value = schedule(1.0 - step / planned_total if planned_total > 0 else 1.0)  # 0: saved before any training
    if new_total == planned_total:
        return schedule, f"{name} {schedule!r} goes on from step {step:,} ({value:g} now)"
    if isinstance(schedule, ConstantSchedule):
        return schedule, f"{name} constant: stays {value:g} up to step {new_total:,}"
    if isinstance(schedule, ExponentialSchedule):
        extended = ExponentialSchedule(schedule.initial, schedule.half_life, new_total)
        return extended, (f"{name} exponential: keeps halving every {schedule.half_life:,.0f} env steps, {value:g} at step "
                          f"{step:,}, {extended(0.0):g} at step {new_total:,}")
    if isinstance(schedule, (LinearSchedule, ReplannedLinearSchedule)):
        if value <= 0:
            raise ConfigError(
                f"cannot extend this run to {new_total:,} steps: its linear {name} reached 0 at step {step:,}, the end "
                f"of the {planned_total:,} steps it was planned over, so more steps would not learn. Train a new run "
                f"with --timesteps {new_total}, or give runs you mean to extend {flag} exponential (it keeps halving).")
        return ReplannedLinearSchedule(value, step, new_total), (
            f"{name} linear: re-planned from {value:g} at step {step:,} to 0 at step {new_total:,} "
            f"(over the {new_total - step:,} steps left)")
    raise ConfigError(f"cannot extend this run: its {name} schedule {schedule!r} is not one of {', '.join(SCHEDULE_CHOICES)}; "
                      f"resume it with its own --timesteps {planned_total}.")
