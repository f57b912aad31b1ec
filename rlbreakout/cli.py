"""Command-line conventions shared by every chapter script.

Every training or evaluation script takes ``--env --timesteps --seed --n-envs
--device --logdir``. A chapter script calls :func:`parse_script_args` at module level:
it parses the flags (Spyder's console passes none, so the defaults apply), fills in a
``--resume`` run's saved settings, and makes a user-facing error (:class:`RLBreakoutError`)
end a terminal run with one ``error: ...`` line and exit 2 instead of a traceback.

Every number a flag takes has its range declared, and every path flag says what it must be
(:mod:`rlbreakout.flag_types`): argparse checks them while parsing, and this module prints its
complaint as one line naming the flag and the fix, before anything (a run folder, an env, a
study) is made. tests/test_flag_fuzz.py tries bad values on every flag of every script.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from collections.abc import Callable
from types import TracebackType

import torch

from rlbreakout.errors import RLBreakoutError
from rlbreakout.flag_types import MAX_ENVS, MAX_SEED, output_folder, whole
from rlbreakout.provenance import REPO_ROOT
from rlbreakout.runs import CONFIG_FILE, load_run_config

DEFAULT_ENV_ID = "BreakoutNoFrameskip-v4"
#: ``runs/`` at the repository's root, whatever the working directory: Spyder runs a cell in the
#: script's folder, and its runs must land where ``tensorboard --logdir runs`` at the root looks.
DEFAULT_LOGDIR = str(REPO_ROOT / "runs")
DEVICE_CHOICES_HINT = "auto, cpu, cuda, cuda:N or mps"
#: Exit status for bad input (argparse uses 2 as well).
EXIT_BAD_INPUT = 2
#: Exit status after Ctrl-C (the shell's convention: 128 + SIGINT).
EXIT_INTERRUPTED = 130
def common_parser(
    description: str | None,
    *,
    env: str = DEFAULT_ENV_ID,
    timesteps: int = 100_000,
    seed: int = 0,
    n_envs: int = 8,
    device: str = "auto",
    logdir: str = DEFAULT_LOGDIR,
) -> argparse.ArgumentParser:
    """A parser with the common flags; the defaults are each script's tutorial run."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--env", default=env, help="gymnasium id of the Atari game")
    parser.add_argument("--timesteps", type=whole(1), default=timesteps, help="env steps to train (or play)")
    parser.add_argument("--seed", type=whole(0, MAX_SEED), default=seed, help="seed for python, numpy, torch and the envs")
    parser.add_argument("--n-envs", type=whole(1, MAX_ENVS), default=n_envs, help="envs stepped in parallel")
    parser.add_argument("--device", default=device, help=f"torch device: {DEVICE_CHOICES_HINT}")
    parser.add_argument("--logdir", type=output_folder, default=logdir,
                        help="root folder of the run folders (TensorBoard logdir)")
    return parser


def resolve_device(device: str) -> str:
    """Check a torch device name early, with one clear line when it is unknown or absent."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise RLBreakoutError(f"--device {device!r} is unknown; use {DEVICE_CHOICES_HINT}.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RLBreakoutError(f"--device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu.")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RLBreakoutError(f"--device {device!r} asked for, but torch sees {torch.cuda.device_count()} GPU(s); "
                              f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RLBreakoutError(f"--device {device!r} asked for, but MPS is not available; use --device cpu.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise RLBreakoutError(f"--device {device!r} is unknown; use {DEVICE_CHOICES_HINT}.")
    return str(dev)


def parse_script_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a chapter script's flags; with ``--resume RUN_DIR`` the saved run's settings are the defaults.

    So ``--resume RUN_DIR`` alone continues with the original budget and settings, and any
    flag given now wins, abbreviated or not (``--times 2000000`` extends the run): argparse
    itself decides what was given, because the saved values only replace its defaults.

    A bad flag is one line (argparse's usage block left out: ``--help`` shows it), and a
    ``--device`` that is unknown or absent here fails now, before anything is made.
    """
    install_error_hook()
    parser.error = _one_line_error(parser)  # type: ignore[method-assign]
    args = parser.parse_args(argv)
    resume = getattr(args, "resume", None)
    if resume:
        if not os.path.isfile(os.path.join(resume, CONFIG_FILE)):
            raise RLBreakoutError(f"cannot resume {resume}: no {CONFIG_FILE} in it. "
                                  f"Pass --resume the run folder printed by the first run.")
        saved = load_run_config(resume)
        parser.set_defaults(**{key: value for key, value in saved.items() if key in vars(args)})
        args = parser.parse_args(argv)
        args.resume = resume
    if isinstance(getattr(args, "device", None), str):
        resolve_device(args.device)
    return args


def _one_line_error(parser: argparse.ArgumentParser) -> Callable[[str], None]:
    """argparse's ``error`` without the usage block: ``error: argument --x: ...`` and exit 2."""
    def error(message: str) -> None:
        fix = "" if "choose from" in message or "; give" in message else f" (see {parser.prog} --help)"
        print(f"error: {message}{fix}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    return error


def _script_excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """One line and exit 2 for a user error, exit 130 after Ctrl-C; a traceback for anything else."""
    if issubclass(kind, RLBreakoutError):
        print(f"error: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    elif issubclass(kind, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    else:
        sys.__excepthook__(kind, exc, tb)
        return
    # An excepthook cannot choose the exit status, so run the exit handlers (log writers,
    # worker processes) and leave with the contract's status directly.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def install_error_hook() -> None:
    """Make an uncaught user error end a terminal run with one line (IPython keeps its traceback)."""
    sys.excepthook = _script_excepthook
