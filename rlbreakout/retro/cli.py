"""Chapter 5's command line: the retro flags, the evaluation and freezing flags, and their checks.

Every chapter-5 script starts from :func:`retro_parser` (the common flags with
``--env`` defaulting to Airstriker and ``--game`` as its other name) and checks its
flags with :func:`validate_retro_args` before any emulator starts, so a wrong game
name or a missing Sonic ROM is one ``error: ...`` line and leaves no run folder.
"""

from __future__ import annotations

import argparse
from typing import Any

from rlbreakout.cli import common_parser
from rlbreakout.collapse import DEFAULT_COLLAPSE_FRACTION, DEFAULT_PATIENCE
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_COUNT, MAX_GIF_STEPS, MAX_THREADS, number, whole
from rlbreakout.retro.envs import (
    CONTEST_MAX_EPISODE_STEPS,
    CONTEST_STICKY_PROBABILITY,
    DEFAULT_GAME,
    SONIC_GAME,
    check_state,
    resolve_game,
)
from rlbreakout.retro.rewards import BASELINE_REWARD_SCALE, REWARD_SCALE_CHOICES_HINT, parse_reward_scale

DEFAULT_EVAL_EPISODES = 3
#: One torch thread: the emulators run in processes of their own, and on the tutorial's 2-core
#: machine one 84x84 convolution took 0.24 ms with 1 thread against 1.5 ms with 2 (measured).
DEFAULT_TORCH_THREADS = 1


def retro_parser(
    description: str | None,
    *,
    timesteps: int,
    n_envs: int,
    sticky: float = CONTEST_STICKY_PROBABILITY,
    reward_scale: str | None = str(BASELINE_REWARD_SCALE),
) -> argparse.ArgumentParser:
    """The common flags (``--env`` is the game; ``--game`` names the same setting), ``--state``,
    ``--sticky``, ``--max-episode-steps`` and, unless ``reward_scale`` is None, ``--reward-scale``
    and ``--backtracking``."""
    parser = common_parser(description, env=DEFAULT_GAME, timesteps=timesteps, n_envs=n_envs)
    retro = parser.add_argument_group("retro game")
    retro.add_argument("--game", dest="env", default=DEFAULT_GAME,
                       help=f"stable-retro game (--env is the same flag); Sonic: {SONIC_GAME} (import its ROM first)")
    retro.add_argument("--state", default=None, help="save state (level) to start from; default: the game's")
    retro.add_argument("--sticky", type=number(0, 1, high_open=True), default=sticky,
                       help="sticky-action probability (contest: 0.25; 0 = deterministic emulator)")
    retro.add_argument("--max-episode-steps", type=whole(1), default=CONTEST_MAX_EPISODE_STEPS,
                       help="agent steps after which a game is cut (the contest's 4,500)")
    if reward_scale is not None:
        retro.add_argument("--reward-scale", default=reward_scale,
                           help=f"training reward scale: {REWARD_SCALE_CHOICES_HINT}")
        retro.add_argument("--backtracking", action=argparse.BooleanOptionalAction, default=True,
                           help="reward only new maximum progress (AllowBacktracking)")
    return parser


def add_run_arguments(parser: argparse.ArgumentParser, *, eval_freq: int) -> argparse.ArgumentParser:
    """Evaluation, freeze-at-best, replay and thread flags shared by 5.2 and 5.3."""
    run = parser.add_argument_group("evaluation, freezing at the best model, replay")
    run.add_argument("--eval-freq", type=whole(0), default=eval_freq, help="env steps between evaluations (0: none)")
    run.add_argument("--eval-episodes", type=whole(1, MAX_COUNT), default=DEFAULT_EVAL_EPISODES, help="whole games per evaluation")
    run.add_argument("--collapse-fraction", type=number(0, 1), default=DEFAULT_COLLAPSE_FRACTION,
                     help="stop when the eval score is this fraction below the best ... (0: never stop)")
    run.add_argument("--collapse-patience", type=whole(1, MAX_COUNT), default=DEFAULT_PATIENCE,
                     help="... for this many evaluations in a row; the best weights are restored")
    run.add_argument("--gif-max-steps", type=whole(0, MAX_GIF_STEPS), default=CONTEST_MAX_EPISODE_STEPS,
                     help="agent steps recorded in the replay gif at most (0: no gif)")
    run.add_argument("--torch-threads", type=whole(1, MAX_THREADS), default=DEFAULT_TORCH_THREADS,
                     help="torch CPU threads (1: the emulators run in their own processes, and results "
                          "do not depend on the machine's load)")
    return parser


def validate_retro_args(args: argparse.Namespace) -> None:
    """Check the retro flags and resolve the game name (``args.env``); one line per problem."""
    if args.timesteps <= 0:
        raise ConfigError(f"--timesteps must be positive, got {args.timesteps}.")
    if not 0.0 <= args.sticky < 1.0:
        raise ConfigError(f"--sticky must be in [0, 1), got {args.sticky}.")
    if args.max_episode_steps < 1:
        raise ConfigError(f"--max-episode-steps must be >= 1, got {args.max_episode_steps}.")
    if hasattr(args, "reward_scale"):
        parse_reward_scale(args.reward_scale)
    args.env = resolve_game(args.env)
    check_state(args.env, args.state)


def validate_run_args(args: argparse.Namespace) -> None:
    """:func:`validate_retro_args` and the flags of :func:`add_run_arguments`, before any emulator starts."""
    if args.n_envs < 1:
        raise ConfigError(f"--n-envs must be >= 1, got {args.n_envs}.")
    if args.eval_freq < 0 or args.eval_episodes < 1:
        raise ConfigError("--eval-freq must be >= 0 (0: no evaluation) and --eval-episodes >= 1.")
    if not 0.0 <= args.collapse_fraction <= 1.0 or args.collapse_patience < 1:
        raise ConfigError("--collapse-fraction must be in [0, 1] (0: never stop) and --collapse-patience >= 1.")
    if args.torch_threads < 1:
        raise ConfigError(f"--torch-threads must be >= 1, got {args.torch_threads}.")
    validate_retro_args(args)


def env_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`~rlbreakout.retro.envs.make_retro_env` options that the retro flags set."""
    kwargs: dict[str, Any] = {"sticky_prob": args.sticky, "max_episode_steps": args.max_episode_steps}
    if hasattr(args, "reward_scale"):
        kwargs["reward_scale"] = parse_reward_scale(args.reward_scale)
        kwargs["backtracking"] = args.backtracking
    return kwargs


def run_label(args: argparse.Namespace) -> str:
    """The run folder's env part, e.g. ``Airstriker-Genesis-v0-scale0.01``: TensorBoard shows it as the run name."""
    return f"{args.env}-scale{args.reward_scale}"
