"""Command-line conventions shared by every chapter script.

Every training or evaluation script takes ``--env --timesteps --seed --n-envs
--device --logdir``; :func:`run_main` turns a user-facing error into one line and
a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rlbreakout.errors import RLBreakoutError

DEFAULT_ENV_ID = "BreakoutNoFrameskip-v4"
DEFAULT_LOGDIR = "runs"
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
    parser.add_argument("--timesteps", type=int, default=timesteps, help="env steps to train (or play)")
    parser.add_argument("--seed", type=int, default=seed, help="seed for python, numpy, torch and the envs")
    parser.add_argument("--n-envs", type=int, default=n_envs, help="envs stepped in parallel")
    parser.add_argument("--device", default=device, help=f"torch device: {DEVICE_CHOICES_HINT}")
    parser.add_argument("--logdir", default=logdir, help="root folder of the run folders (TensorBoard logdir)")
    return parser


def resolve_device(device: str) -> str:
    """Check a torch device name early, with one clear line when it is unknown or absent."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise RLBreakoutError(f"unknown device {device!r}; use {DEVICE_CHOICES_HINT}.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RLBreakoutError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RLBreakoutError(f"device {device!r} asked for, but MPS is not available; use --device cpu.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise RLBreakoutError(f"unknown device {device!r}; use {DEVICE_CHOICES_HINT}.")
    return str(dev)


def run_main(main: Callable[[], object]) -> None:
    """Run a script's ``main()``: user errors become ``error: ...`` and exit 2, Ctrl-C exits 130."""
    try:
        main()
    except RLBreakoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
