"""Optuna for chapter 4: search spaces, the pruning eval callback, crash-safe storage and study workers.

Why each piece is here rather than in the scripts:

* **Search spaces as data.** Each hyperparameter is a small frozen dataclass (a name and a
  range or choices); ``sample_*_params(trial) -> dict`` functions only read them, so a
  README can print a space and a test can sample it without training anything. Numbers
  that span decades are sampled on a log scale, sizes as powers of two (the exponent is
  Optuna's parameter, the readable value is stored as a trial user attribute). Invalid
  combinations are never trained: batch sizes are derived so that they divide
  ``n_steps * n_envs`` and every trial is checked by ``validate_ppo_args`` first.
* **TrialEvalCallback** subclasses chapter 2's :class:`MultiEnvEvalCallback`: evaluation,
  logging and best-model logic stay in one place; the subclass only reports the median
  whole-game score to the trial and stops a trial the pruner gives up on. The objective
  then raises ``optuna.TrialPruned``, so such a trial is recorded as PRUNED, never COMPLETE.
* **Storage.** ``--storage URL`` or ``$OPTUNA_STORAGE``; by default an SQLite file under
  ``<logdir>/optuna/``. Any SQLAlchemy URL works (``postgresql://user@host/db``), and every
  worker started with the same storage and study name joins the same study. Heartbeats
  mark the trial of a worker killed mid-trial (even by SIGKILL) as FAIL and re-enqueue it.
* **Workers.** :func:`run_worker` runs trials until the *study* holds ``n_trials`` finished
  (COMPLETE or PRUNED) trials, counting every worker's trials, so a restarted or second
  worker only does what is left.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib.util
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial, Trial, TrialState

from rlbreakout.aimbot import COLOUR_CHOICES, CROP_CHOICES, PREDICTION_CHOICES
from rlbreakout.callbacks import MultiEnvEvalCallback
from rlbreakout.cli import common_parser, resolve_device
from rlbreakout.envs import BREAKOUT_ENV_IDS, check_env_id, env_settings, make_env
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.fast import configure_threads
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.runs import sanitize_env_id
from rlbreakout.schedules import SCHEDULE_CHOICES
from rlbreakout.training import EVAL_SEED_OFFSET, MAX_EVAL_ENVS, build_ppo, validate_ppo_args

# %% Constants

#: Environment variable holding the storage URL when ``--storage`` is not given.
STORAGE_ENV_VAR = "OPTUNA_STORAGE"
#: The default storage: one SQLite file for all studies, under ``<logdir>/optuna/``.
DEFAULT_STORAGE_SUBDIR = "optuna"
DEFAULT_STORAGE_FILE = "studies.db"
#: A running trial writes a heartbeat this often (seconds) ...
HEARTBEAT_INTERVAL_SECONDS = 60
#: ... and a trial whose last heartbeat is older than this is FAIL (its worker died).
GRACE_PERIOD_SECONDS = 180
#: A trial whose worker keeps dying (e.g. out of memory) is retried at most this often.
MAX_TRIAL_RETRIES = 3
#: A worker stops when this many of its trials in a row diverged: the search space is broken.
MAX_DIVERGED_TRIALS_IN_A_ROW = 5
#: A worker waiting for other workers' last trials looks again this often (seconds).
WAIT_POLL_SECONDS = 10
#: Seconds to wait for a database server before giving up with a clear error.
CONNECT_TIMEOUT_SECONDS = 10
#: Workers starting together on a fresh database race to create its tables; the losers retry.
SCHEMA_CREATE_ATTEMPTS = 3
SCHEMA_RETRY_SECONDS = 1.0
SAMPLER_CHOICES: tuple[str, ...] = ("tpe", "random")
PRUNER_CHOICES: tuple[str, ...] = ("median", "halving", "none")
#: TPE samples at random for this many trials before it models the good region.
TPE_STARTUP_TRIALS = 10
#: The median pruner compares a trial with others only after this many have finished ...
MEDIAN_STARTUP_TRIALS = 5
#: ... and never before this fraction of a trial's budget (an early score says little).
MEDIAN_WARMUP_FRACTION = 1 / 3
#: Successive halving keeps 1 in this many trials at each rung.
HALVING_REDUCTION_FACTOR = 3
#: Evaluations during a trial (the original tutorial: EVAL_FREQ = 4); the last one is its score.
DEFAULT_EVALS_PER_TRIAL = 4
#: Short names of the Breakout ids, used as TensorBoard eval tags and table columns.
ENV_LABELS: dict[str, str] = {"Breakout-v4": "v4", "BreakoutNoFrameskip-v4": "v4NoFS", "ALE/Breakout-v5": "v5"}
#: States of a finished trial: the ones that count towards ``--n-trials``.
FINISHED_STATES: tuple[TrialState, ...] = (TrialState.COMPLETE, TrialState.PRUNED)
#: Score given to pruned trials when they are imputed for the importance view.
PRUNED_IMPUTED_SCORE = 0.0
#: Importance = how much a parameter decides whether a trial lands in this best fraction
#: (PED-ANOVA). Optuna's default, the best 10 %, is only 2-5 trials in a tutorial-sized study.
IMPORTANCE_TARGET_QUANTILE = 0.5
#: Contour plots show the pairs among this many most important parameters.
CONTOUR_MAX_PARAMS = 3
PLOTLY_JS = "directory"  # the HTML plots share one plotly.min.js next to them: small and offline


def env_label(env_id: str) -> str:
    """``ALE/Breakout-v5`` -> ``v5``; other ids -> a folder-safe version of the id."""
    return ENV_LABELS.get(env_id, sanitize_env_id(env_id))


# %% Search spaces as data


@dataclass(frozen=True)
class Categorical:
    """One of a few choices (an env id, a schedule name)."""

    name: str
    choices: tuple[Any, ...]

    def suggest(self, trial: Trial) -> Any:
        return trial.suggest_categorical(self.name, self.choices)


@dataclass(frozen=True)
class IntRange:
    """An integer in ``[low, high]`` (a frame stack depth, a frameskip)."""

    name: str
    low: int
    high: int

    def suggest(self, trial: Trial) -> int:
        return trial.suggest_int(self.name, self.low, self.high)


@dataclass(frozen=True)
class LogUniform:
    """A positive float spanning decades (a learning rate): uniform in ``log(value)``."""

    name: str
    low: float
    high: float

    def suggest(self, trial: Trial) -> float:
        return trial.suggest_float(self.name, self.low, self.high, log=True)


@dataclass(frozen=True)
class PowerOfTwo:
    """An integer ``2**k``: Optuna samples ``k`` (param ``log2_<name>``), the value is a user attribute."""

    name: str
    low_exponent: int
    high_exponent: int

    def suggest(self, trial: Trial) -> int:
        value = 2 ** trial.suggest_int(f"log2_{self.name}", self.low_exponent, self.high_exponent)
        trial.set_user_attr(self.name, value)
        return value


#: Study 1 of 4.0: which Breakout id, how many stacked frames.
ENV_ID_SPACE = Categorical("env_id", BREAKOUT_ENV_IDS)
FRAME_STACK_SPACE = IntRange("frame_stack", 1, 8)
#: Frames per action, sampled only for NoFrameskip ids: the others skip in the emulator, and
#: skipping again in the wrapper would multiply the two (env_settings refuses that).
WRAPPER_FRAME_SKIP_SPACE = IntRange("frame_skip", 2, 6)
#: Chapter 3's aimbot view options.
AIMBOT_SPACE: tuple[Categorical, ...] = (
    Categorical("colour", COLOUR_CHOICES),
    Categorical("crop", CROP_CHOICES),
    Categorical("prediction", PREDICTION_CHOICES),
)
#: 4.3: initial values and shapes of the learning-rate and clip-range schedules.
SCHEDULE_SPACE: tuple[Categorical | LogUniform, ...] = (
    LogUniform("learning_rate", 1e-5, 1e-2),
    Categorical("lr_schedule", SCHEDULE_CHOICES),
    LogUniform("clip_range", 0.02, 0.5),
    Categorical("clip_schedule", SCHEDULE_CHOICES),
)
#: Env steps per halving of an exponential schedule. In env steps, not a fraction of the run,
#: so a value tuned with 1e6-step trials means the same in a 1e7-step run.
HALF_LIFE_SPACE = LogUniform("half_life", 1e4, 1e7)
#: 4.2's grid (every combination divides the rollout for n_envs = 8, see check_grid).
DEFAULT_GRID: dict[str, tuple[int, ...]] = {
    "batch_size": (256, 512, 1024),
    "n_epochs": (2, 4, 8),
    "n_steps": (128, 256, 512),
}


def largest_batch_size(batch_size: int, rollout: int) -> int:
    """The largest divisor of ``rollout`` that is at most ``batch_size`` (so SB3 uses equal minibatches)."""
    return max(d for d in range(1, min(batch_size, rollout) + 1) if rollout % d == 0)


def sample_wrapper_params(
    trial: Trial,
    *,
    max_n_envs: int = 16,
    wrapper: str = "aimbot",
    n_steps: int = ZOO_ATARI_PPO["n_steps"],
    batch_size: int = ZOO_ATARI_PPO["batch_size"],
) -> dict[str, Any]:
    """Study 1 of 4.0: env id, frame stack, frameskip, number of envs and the aimbot options.

    ``n_envs`` is a power of two up to ``max_n_envs``; the batch size is the zoo's 256,
    or the largest divisor of the rollout below it when the rollout is smaller.
    """
    env_id = ENV_ID_SPACE.suggest(trial)
    frame_stack = FRAME_STACK_SPACE.suggest(trial)
    n_envs = PowerOfTwo("n_envs", 0, int(math.log2(max_n_envs))).suggest(trial)
    wrapper_kwargs: dict[str, Any] = {}
    settings = env_settings(env_id)
    if settings.emulator_frameskip == 1:
        wrapper_kwargs["frame_skip"] = WRAPPER_FRAME_SKIP_SPACE.suggest(trial)
        frames_per_action = str(wrapper_kwargs["frame_skip"])
    else:
        low_high = settings.emulator_frameskip
        frames_per_action = f"{low_high[0]}-{low_high[1] - 1}" if isinstance(low_high, tuple) else str(low_high)
    trial.set_user_attr("frames_per_action", frames_per_action)
    if wrapper == "aimbot":
        wrapper_kwargs.update({dim.name: dim.suggest(trial) for dim in AIMBOT_SPACE})
    batch = largest_batch_size(batch_size, n_steps * n_envs)
    trial.set_user_attr("batch_size", batch)
    return {
        "env": env_id, "n_envs": n_envs, "frame_stack": frame_stack, "n_steps": n_steps, "batch_size": batch,
        "wrapper": wrapper, "wrapper_kwargs": wrapper_kwargs or None,
    }


def sample_schedule_params(trial: Trial) -> dict[str, Any]:
    """4.3: learning rate and clip range, each with a schedule shape (constant, linear, exponential).

    The half-life is sampled only when a schedule is exponential (it means nothing otherwise).
    """
    params = {dim.name: dim.suggest(trial) for dim in SCHEDULE_SPACE}
    if "exponential" in (params["lr_schedule"], params["clip_schedule"]):
        params["half_life"] = HALF_LIFE_SPACE.suggest(trial)
    return params


def sample_grid_params(trial: Trial, grid: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """4.2: one point of the grid (GridSampler picks it; the int range only labels the axes)."""
    return {name: trial.suggest_int(name, min(values), max(values), log=True) for name, values in grid.items()}


def check_grid(grid: Mapping[str, Sequence[int]], n_envs: int) -> int:
    """Raise ConfigError unless every grid point is a valid PPO setting; return the number of points."""
    for name, values in grid.items():
        if not values or min(values) < 1:
            raise ConfigError(f"grid values for {name} must be positive integers, got {list(values)}.")
    rollouts = [n_steps * n_envs for n_steps in grid["n_steps"]]
    bad = [(b, r // n_envs) for b in grid["batch_size"] for r in rollouts if r % b != 0]
    if bad:
        batch, n_steps = bad[0]
        raise ConfigError(
            f"grid point batch_size {batch}, n_steps {n_steps} is invalid: {batch} does not divide "
            f"n_steps * n_envs = {n_steps * n_envs}. Use batch sizes that divide every n_steps * --n-envs."
        )
    return math.prod(len(values) for values in grid.values())


# %% Pruning evaluation callback


class TrialEvalCallback(MultiEnvEvalCallback):
    """Chapter 2's evaluation callback that also reports to an Optuna trial and prunes.

    After each evaluation it reports the median whole-game score of ``score_env`` at the
    *scheduled* evaluation step (a multiple of ``eval_freq``), so trials with different
    ``n_envs`` are compared at the same budget. When the pruner says stop, training stops
    and ``is_pruned`` is set: the objective must then raise ``optuna.TrialPruned``.
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


# %% Storage


def default_storage_url(logdir: str | os.PathLike[str]) -> str:
    """``sqlite:///<logdir>/optuna/studies.db``: one embedded database file for every study."""
    return f"sqlite:///{(Path(logdir) / DEFAULT_STORAGE_SUBDIR / DEFAULT_STORAGE_FILE).as_posix()}"


def resolve_storage_url(storage: str | None, logdir: str | os.PathLike[str]) -> str:
    """The ``--storage`` flag, else ``$OPTUNA_STORAGE``, else the default SQLite file."""
    return storage or os.environ.get(STORAGE_ENV_VAR) or default_storage_url(logdir)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe to print and to store in summary.json)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _engine_kwargs(backend: str, timeout: int) -> dict[str, Any]:
    """Short connection timeouts, so an unreachable server fails in seconds, not minutes."""
    if backend == "sqlite":
        # for SQLite "timeout" is how long a writer waits for another process's lock
        return {"connect_args": {"timeout": timeout}}
    # pool_pre_ping: trials run for hours; a connection the server closed meanwhile is replaced
    return {"connect_args": {"connect_timeout": timeout}, "pool_pre_ping": True}


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_SECONDS,
    grace_period: int = GRACE_PERIOD_SECONDS,
    max_retry: int = MAX_TRIAL_RETRIES,
    connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
) -> RDBStorage:
    """Connect to (and if needed create) the Optuna database at ``url``, with crash safety on.

    A running trial writes a heartbeat every ``heartbeat_interval`` seconds; one silent for
    ``grace_period`` seconds is marked FAIL by the next worker that looks, and a copy is
    enqueued (``RetryHeartbeatStaleTrialCallback``), so a killed worker's trial is run again.

    :raises RLBreakoutError: one line naming the storage and the reason when it cannot be reached
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, IntegrityError, ProgrammingError, SQLAlchemyError

    hint = (f"Check --storage or ${STORAGE_ENV_VAR}: e.g. sqlite:///runs/optuna/studies.db or "
            f"postgresql://user@host:5432/db (server running, user and database exist)")
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise RLBreakoutError(f"cannot reach Optuna storage {url!r}: not a database URL ({exc}). {hint}.") from exc
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is not None:
        # SQLAlchemy 2.1 picks psycopg 3 for a bare postgresql://; the postgres extra installs psycopg2
        url = parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    try:
        if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, SCHEMA_CREATE_ATTEMPTS + 1):
            try:
                with warnings.catch_warnings():
                    # heartbeats are marked experimental; the warning would greet every learner
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return RDBStorage(
                        url,
                        engine_kwargs=_engine_kwargs(backend, connect_timeout),
                        heartbeat_interval=heartbeat_interval,
                        grace_period=grace_period,
                        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                    )
            except (IntegrityError, ProgrammingError):
                # Two workers on a fresh database both create Optuna's tables; the slower one
                # hits "already exists". The tables are there now: connecting again works.
                if attempt == SCHEMA_CREATE_ATTEMPTS:
                    raise
                time.sleep(SCHEMA_RETRY_SECONDS)
        raise AssertionError("unreachable")
    except ImportError as exc:
        raise RLBreakoutError(
            f"cannot reach Optuna storage {shown}: {_first_line(exc)} "
            f"Install the database's Python driver (PostgreSQL: pip install -e '.[postgres]')."
        ) from exc
    except (SQLAlchemyError, OSError, RuntimeError) as exc:
        raise RLBreakoutError(f"cannot reach Optuna storage {shown}: {_first_line(exc)}. {hint}.") from exc


# %% Samplers, pruners, studies


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """``tpe`` (Tree-structured Parzen Estimator, the default) or ``random``, seeded."""
    if name == "tpe":
        return optuna.samplers.TPESampler(n_startup_trials=TPE_STARTUP_TRIALS, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLER_CHOICES)}.")


def make_pruner(name: str, *, timesteps: int, eval_freq: int) -> optuna.pruners.BasePruner:
    """``median`` (stop a trial below the median of earlier ones at the same step), ``halving``
    (successive halving: keep the best third at each rung) or ``none``."""
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=MEDIAN_STARTUP_TRIALS, n_warmup_steps=int(timesteps * MEDIAN_WARMUP_FRACTION)
        )
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=eval_freq, reduction_factor=HALVING_REDUCTION_FACTOR)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNER_CHOICES)}.")


def open_study(
    storage: optuna.storages.BaseStorage | str,
    study_name: str,
    *,
    sampler: optuna.samplers.BaseSampler | Callable[[int], optuna.samplers.BaseSampler],
    pruner: optuna.pruners.BasePruner | None = None,
    settings: Mapping[str, Any] | None = None,
) -> optuna.Study:
    """Create the study or join it (``load_if_exists``): every worker calls this the same way.

    :param pruner: default: no pruning
    :param sampler: a sampler, or ``seed_offset -> sampler``: it is then built with the number
        of trials already in the study, so a restarted worker draws new values instead of
        replaying the first worker's
    :param settings: the per-trial budget (timesteps, eval env, ...). Stored on a new study;
        a worker joining with different values gets a ConfigError, because trials trained
        with different budgets cannot be compared.
    """
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize",
                                pruner=pruner or optuna.pruners.NopPruner(), load_if_exists=True)
    if callable(sampler) and not isinstance(sampler, optuna.samplers.BaseSampler):
        sampler = sampler(len(study.get_trials(deepcopy=False)))
    study.sampler = sampler
    for key, value in (settings or {}).items():
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != value:
            raise ConfigError(
                f"study {study_name!r} was created with {key} = {stored!r}, this worker has {value!r}; "
                f"use the same flags to join it, or a new --study-name."
            )
    return study


# %% Workers


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
    poll_seconds: float | None = None,
) -> list[int]:
    """Run trials until the study holds ``n_trials`` finished trials, all workers together.

    Why not ``study.optimize(n_trials=...)`` with Optuna's ``MaxTrialsCallback``: that
    counts only after a trial ends, so two workers sharing a study overshoot by one trial
    each. Here a worker starts a trial only when finished plus running trials are below the
    budget; when the rest are running elsewhere it waits, and takes over any trial whose
    worker died (its heartbeat stops, it turns FAIL and its retry is enqueued).

    :return: the numbers of the trials this worker trained
    """
    if n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1, got {n_trials}.")
    storage = study._storage  # Optuna offers no public accessor for a study's storage
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    poll = poll_seconds if poll_seconds is not None else float(min(interval or 1, WAIT_POLL_SECONDS))
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
            time.sleep(poll)
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


# %% The objective: one short PPO training per trial


def trial_config(args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """The fixed part of every trial: the zoo's PPO values, then the script's flags, then ``overrides``."""
    timesteps = overrides.pop("timesteps", args.timesteps)
    evals = overrides.pop("evals_per_trial", args.evals_per_trial)
    config = {
        "env": args.env, "n_envs": args.n_envs, "timesteps": timesteps, "seed": args.seed, "device": args.device,
        "n_steps": ZOO_ATARI_PPO["n_steps"], "batch_size": ZOO_ATARI_PPO["batch_size"],
        "n_epochs": ZOO_ATARI_PPO["n_epochs"], "learning_rate": ZOO_ATARI_PPO["learning_rate"],
        "lr_schedule": ZOO_ATARI_PPO["learning_rate_schedule"], "clip_range": ZOO_ATARI_PPO["clip_range"],
        "clip_schedule": ZOO_ATARI_PPO["clip_range_schedule"], "half_life": None,
        "ent_coef": ZOO_ATARI_PPO["ent_coef"], "vf_coef": ZOO_ATARI_PPO["vf_coef"],
        "frame_stack": ZOO_ATARI_PPO["frame_stack"], "eval_freq": max(timesteps // evals, 1),
        "eval_episodes": args.eval_episodes, "eval_env": args.eval_env,
        "wrapper": "atari", "wrapper_kwargs": None, "env_kwargs": None,
    }
    for key in ("n_steps", "batch_size", "n_epochs"):
        if getattr(args, key, None) is not None:
            config[key] = getattr(args, key)
    config.update(overrides)
    return config


class StudyObjective:
    """``objective(trial) -> median score``: sample, train PPO briefly, evaluate whole games.

    :param sample: ``trial -> dict`` of config keys to override (a ``sample_*_params``)
    :param base: the fixed config (:func:`trial_config`)
    :param run_dir: TensorBoard logs go to ``run_dir/trial_<number>_1``
    :param save_models: save each trial's final model as ``run_dir/trial_<number>.zip``
    """

    def __init__(
        self,
        sample: Callable[[Trial], dict[str, Any]],
        base: dict[str, Any],
        run_dir: Path,
        *,
        save_models: bool = False,
    ) -> None:
        self.sample, self.base, self.run_dir, self.save_models = sample, base, Path(run_dir), save_models
        self.steps_trained = 0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        # Several workers often share one machine: torch takes only the cores free now, since
        # more threads than free cores make every worker many times slower.
        self.threads = configure_threads()

    def __call__(self, trial: Trial) -> float:
        config = {**self.base, **self.sample(trial)}
        return self.train(trial, config)

    def train(self, trial: Trial, config: dict[str, Any]) -> float:
        """Train one trial as ``config`` says; report, prune, return the last median score."""
        args = argparse.Namespace(**config)
        validate_ppo_args(args)  # an invalid combination raises here, before any training
        eval_id = config["eval_env"] or config["env"]
        label = env_label(eval_id)
        env_options = dict(frame_stack=args.frame_stack, wrapper=config["wrapper"],
                           wrapper_kwargs=config["wrapper_kwargs"], env_kwargs=config["env_kwargs"])
        with contextlib.ExitStack() as closing:
            train_env = make_env(args.env, args.n_envs, seed=args.seed, **env_options)
            closing.callback(train_env.close)
            eval_env = make_env(eval_id, min(args.eval_episodes, MAX_EVAL_ENVS), seed=args.seed + EVAL_SEED_OFFSET,
                                **env_options)
            closing.callback(eval_env.close)
            model = build_ppo(args, train_env, self.run_dir, policy_kwargs={})
            trial.set_user_attr("learning_rate_schedule", repr(model.learning_rate))
            # SB3 wraps a float schedule in FloatSchedule; store the readable inner one
            trial.set_user_attr("clip_range_schedule", repr(getattr(model.clip_range, "value_schedule", model.clip_range)))
            trial.set_user_attr("eval_env", eval_id)
            # eval_freq <= timesteps (validate_tuning_args), so at least one evaluation happens
            callback = TrialEvalCallback(trial, {label: eval_env}, args.eval_freq, args.eval_episodes, verbose=0)
            started = time.perf_counter()
            try:
                model.learn(total_timesteps=args.timesteps, callback=callback, tb_log_name=f"trial_{trial.number}")
            except ValueError as exc:
                # torch's distributions refuse NaN logits, e.g. after a far too large learning rate
                if isinstance(exc, RLBreakoutError) or "invalid values" not in str(exc):
                    raise
                raise TrialDivergedError(f"trial {trial.number} diverged: {exc}") from exc
            self.steps_trained += int(model.num_timesteps)
            self.train_seconds += time.perf_counter() - started - callback.eval_seconds
            self.eval_seconds += callback.eval_seconds
            trial.set_user_attr("timesteps_trained", int(model.num_timesteps))
            trial.set_user_attr("tensorboard_dir", str(self.run_dir / f"trial_{trial.number}_1"))
            if self.save_models:
                path = self.run_dir / f"trial_{trial.number}.zip"
                model.save(path)
                trial.set_user_attr("model_path", str(path))
        if callback.is_pruned:
            raise optuna.TrialPruned(f"median score {callback.last_score:g} at step {model.num_timesteps}")
        return callback.last_score


# %% Command line


def add_study_flags(
    parser: argparse.ArgumentParser,
    *,
    study_name: str,
    n_trials: int | None,
    sampler: str | None = None,
    pruner: str | None = None,
) -> argparse.ArgumentParser:
    """``--storage --study-name --n-trials`` (and ``--sampler --pruner`` when the script has a choice)."""
    group = parser.add_argument_group("Optuna study")
    group.add_argument("--storage", default=None,
                       help=f"SQLAlchemy URL of the study database (default: ${STORAGE_ENV_VAR}, else "
                            f"sqlite:///<logdir>/{DEFAULT_STORAGE_SUBDIR}/{DEFAULT_STORAGE_FILE})")
    group.add_argument("--study-name", default=study_name, help="workers with the same storage and name share a study")
    group.add_argument("--n-trials", type=int, default=n_trials,
                       help="the study's total of finished trials, over all workers")
    if sampler is not None:
        group.add_argument("--sampler", choices=SAMPLER_CHOICES, default=sampler)
    if pruner is not None:
        group.add_argument("--pruner", choices=PRUNER_CHOICES, default=pruner)
    return parser


def tuning_parser(
    description: str | None,
    *,
    study_name: str,
    n_trials: int | None,
    timesteps: int,
    n_envs: int,
    env: str,
    eval_env: str | None,
    eval_episodes: int,
    sampler: str | None = "tpe",
    pruner: str | None = "median",
) -> argparse.ArgumentParser:
    """The common flags, the study flags and how each trial is evaluated."""
    parser = common_parser(description, env=env, timesteps=timesteps, n_envs=n_envs)
    add_study_flags(parser, study_name=study_name, n_trials=n_trials, sampler=sampler, pruner=pruner)
    group = parser.add_argument_group("trial evaluation")
    group.add_argument("--eval-env", default=eval_env,
                       help="env id every trial is scored on (default: the trial's own training env)")
    group.add_argument("--eval-episodes", type=int, default=eval_episodes, help="whole games per evaluation")
    group.add_argument("--evals-per-trial", type=int, default=DEFAULT_EVALS_PER_TRIAL,
                       help="evaluations per trial (reported to the pruner); the last one is the trial's score")
    return parser


def validate_tuning_args(args: argparse.Namespace) -> None:
    """Check the study and trial flags before any storage is touched; one line per problem."""
    if args.n_trials is not None and args.n_trials < 1:
        raise ConfigError(f"--n-trials must be >= 1 (the study's total of finished trials), got {args.n_trials}.")
    if args.timesteps <= 0:
        raise ConfigError(f"--timesteps must be positive, got {args.timesteps}.")
    if args.n_envs < 1:
        raise ConfigError(f"--n-envs must be >= 1, got {args.n_envs}.")
    if args.eval_episodes < 1:
        raise ConfigError(f"--eval-episodes must be >= 1, got {args.eval_episodes}.")
    evals = getattr(args, "evals_per_trial", 1)
    if not 1 <= evals <= args.timesteps:
        raise ConfigError(f"--evals-per-trial must be between 1 and --timesteps, got {evals}.")
    check_env_id(args.env)
    if getattr(args, "eval_env", None):
        check_env_id(args.eval_env)
    args.device = resolve_device(args.device)


def study_settings(args: argparse.Namespace, script: str, **extra: Any) -> dict[str, Any]:
    """What all trials of a study must share (stored on the study, checked for joining workers)."""
    return {"script": script, "timesteps_per_trial": args.timesteps, "eval_env": args.eval_env or "own",
            "eval_episodes": args.eval_episodes, "evals_per_trial": getattr(args, "evals_per_trial", 1), **extra}


# %% Results


def study_summary(study: optuna.Study, storage_url: str) -> dict[str, Any]:
    """Best value and params, trial counts by state, study name and (password-free) storage URL."""
    counts = state_counts(study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    return {
        "study_name": study.study_name,
        "storage": redact_url(storage_url),
        "n_trials": sum(counts[state] for state in FINISHED_STATES),
        "n_complete": counts[TrialState.COMPLETE],
        "n_pruned": counts[TrialState.PRUNED],
        "n_failed": counts[TrialState.FAIL],
        "best_value": best.value if best else None,
        "best_params": best.params if best else None,
        "best_user_attrs": best.user_attrs if best else None,
        "best_trial": best.number if best else None,
    }


def env_comparison_table(study: optuna.Study) -> str:
    """Markdown table of 4.1: one row per training env, one column per eval env (median, mean in brackets).

    Read from the trials' ``eval_scores`` user attribute, so rows trained by other workers appear too.
    """
    rows = {
        t.params["train_env"]: t.user_attrs["eval_scores"]
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "eval_scores" in t.user_attrs
    }
    columns = list(ENV_LABELS.values())
    lines = ["| trained on \\ scored on | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for env_id, scores in sorted(rows.items(), key=lambda row: columns.index(env_label(row[0]))):
        cells = [f"{scores[c]['median_reward']:.1f} ({scores[c]['mean_reward']:.1f})" if c in scores else "-"
                 for c in columns]
        lines.append(f"| {env_label(env_id)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def trained_run_dirs(study: optuna.Study) -> dict[str, Path]:
    """4.1: train env id -> run folder of its finished training (from the trials' ``run_dir`` attribute).

    A run folder made by a worker on another machine is listed too; callers check it exists here.
    """
    return {
        t.params["train_env"]: Path(t.user_attrs["run_dir"])
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "run_dir" in t.user_attrs and "train_env" in t.params
    }


def impute_pruned(study: optuna.Study, value: float = PRUNED_IMPUTED_SCORE) -> optuna.Study:
    """An in-memory copy of ``study`` where each PRUNED trial is COMPLETE with score ``value``.

    Optuna's importance and contour views ignore pruned trials, so a parameter that gets
    trials *pruned* (a bad env id, say) looks unimportant. Imputing a score of 0, as the
    original tutorial did, lets those failures count. FAIL trials are left out.
    """
    copy = optuna.create_study(direction=study.direction, study_name=f"{study.study_name}_pruned_as_{value:g}")
    trials: list[FrozenTrial] = []
    for trial in study.get_trials(deepcopy=False, states=FINISHED_STATES):
        if trial.state == TrialState.PRUNED:
            trial = optuna.trial.create_trial(
                state=TrialState.COMPLETE, value=value, params=trial.params, distributions=trial.distributions,
                user_attrs={**trial.user_attrs, "imputed": True}, system_attrs=trial.system_attrs,
                intermediate_values=trial.intermediate_values,
            )
        trials.append(trial)
    copy.add_trials(trials)
    return copy


def importance_evaluator() -> optuna.importance.PedAnovaImportanceEvaluator:
    """PED-ANOVA (Optuna's default) asking: which parameters put a trial in the better half?"""
    return optuna.importance.PedAnovaImportanceEvaluator(target_quantile=IMPORTANCE_TARGET_QUANTILE)


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Parameter importances (normalised to sum 1); ``{}`` when the study is too small to tell."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(study, evaluator=importance_evaluator())
    except (ValueError, RuntimeError):  # e.g. no parameter shared by all trials
        return {}


def _plots(study: optuna.Study, params: list[str]) -> dict[str, tuple[Callable[..., Any], Callable[..., Any], dict]]:
    from optuna import visualization as plotly_vis
    from optuna.visualization import matplotlib as mpl_vis

    contour = {"params": params[:CONTOUR_MAX_PARAMS]} if len(params) >= 2 else None
    plots: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict]] = {
        "optimization_history": (plotly_vis.plot_optimization_history, mpl_vis.plot_optimization_history, {}),
        "intermediate_values": (plotly_vis.plot_intermediate_values, mpl_vis.plot_intermediate_values, {}),
    }
    if params:
        plots["param_importances"] = (plotly_vis.plot_param_importances, mpl_vis.plot_param_importances,
                                      {"evaluator": importance_evaluator()})
        plots["parallel_coordinate"] = (plotly_vis.plot_parallel_coordinate, mpl_vis.plot_parallel_coordinate,
                                        {"params": params})
    if contour:
        plots["contour"] = (plotly_vis.plot_contour, mpl_vis.plot_contour, contour)
    return plots


def save_study_plots(study: optuna.Study, out_dir: str | os.PathLike[str], *, prefix: str = "") -> list[Path]:
    """Write the analysis plots of ``study`` as interactive HTML (plotly) and PNG (matplotlib).

    Optimisation history, intermediate values (the learning curves the pruner saw), parameter
    importances, parallel coordinates, and contours of the most important parameter pairs.
    Plots that need more trials than the study has are skipped with a note.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    # most important first; a parameter that never varied has nothing to show
    params = [p for p in param_importances(study) if len({t.params.get(p) for t in complete}) > 1]
    written: list[Path] = []
    for name, (plotly_plot, mpl_plot, kwargs) in _plots(study, params).items():
        stem = out / f"{prefix}{name}"
        try:
            plotly_plot(study, **kwargs).write_html(stem.with_suffix(".html"), include_plotlyjs=PLOTLY_JS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = mpl_plot(study, **kwargs)
        except (ValueError, RuntimeError) as exc:
            print(f"skipped plot {prefix}{name}: {exc}", flush=True)
            continue
        figure = (axes.flat[0] if isinstance(axes, np.ndarray) else axes).figure
        figure.savefig(stem.with_suffix(".png"), bbox_inches="tight")
        plt.close(figure)
        written += [stem.with_suffix(".html"), stem.with_suffix(".png")]
    return written
