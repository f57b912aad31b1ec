"""The flags of the chapter-4 studies: where the study lives, how many trials, how each is scored.

Every study script takes ``--storage --study-name --n-trials`` (and ``--sampler --pruner``
where it has a choice); the trial scripts add how each trial is evaluated. The checks run
before any storage is touched, so bad input is one line and leaves nothing behind.
"""

from __future__ import annotations

import argparse
from typing import Any

from rlbreakout.cli import common_parser, resolve_device
from rlbreakout.env_ids import check_env_id
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_COUNT, whole
from rlbreakout.tune.objective import DEFAULT_EVALS_PER_TRIAL
from rlbreakout.tune.storage import DEFAULT_STORAGE_FILE, DEFAULT_STORAGE_SUBDIR, STORAGE_ENV_VAR

SAMPLER_CHOICES: tuple[str, ...] = ("tpe", "random")
PRUNER_CHOICES: tuple[str, ...] = ("median", "halving", "none")


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
    group.add_argument("--n-trials", type=whole(1, MAX_COUNT), default=n_trials,
                       help="the study's total of finished trials, over all workers")
    if sampler is not None:
        group.add_argument("--sampler", choices=SAMPLER_CHOICES, default=sampler,
                           help="tpe: Tree-structured Parzen Estimator; random: uniform draws (both seeded)")
    if pruner is not None:
        group.add_argument("--pruner", choices=PRUNER_CHOICES, default=pruner,
                           help="median: below the median of earlier trials; halving: successive halving")
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
    group.add_argument("--eval-episodes", type=whole(1, MAX_COUNT), default=eval_episodes, help="whole games per evaluation")
    group.add_argument("--evals-per-trial", type=whole(1, MAX_COUNT), default=DEFAULT_EVALS_PER_TRIAL,
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
        check_env_id(args.eval_env, "--eval-env")
    args.device = resolve_device(args.device)


def study_settings(args: argparse.Namespace, script: str, **extra: Any) -> dict[str, Any]:
    """What all trials of a study must share (stored on the study, checked for joining workers)."""
    return {"script": script, "timesteps_per_trial": args.timesteps, "eval_env": args.eval_env or "own",
            "eval_episodes": args.eval_episodes, "evals_per_trial": getattr(args, "evals_per_trial", 1), **extra}
