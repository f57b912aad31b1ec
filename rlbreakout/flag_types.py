"""The types of flag values: numbers in a declared range, paths that must exist or be writable.

A flag declares what it takes with ``type=``: ``whole(1)`` for a count of env steps,
``number(0, 1, low_open=True)`` for a discount factor, :func:`input_file` for a model to load,
:func:`output_folder` for a run folder's root. argparse checks the value while it parses, so a
bad one ends the script with one line that names the flag and the range or kind it wants,
before anything is made. The flag fuzzer (tests/test_flag_fuzz.py) reads the declared ranges
to pick its bad values: negative, zero where zero is out of range, absurdly large.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

#: The most env steps any flag accepts: about a year at 300 steps/s, past any run of this tutorial.
MAX_STEPS = 10**10
#: The most envs stepped at once (each Atari env holds its own emulator and frames).
MAX_ENVS = 1024
#: numpy, torch and gymnasium take seeds in [0, 2**32).
MAX_SEED = 2**32 - 1
#: The most games, trials, repeats or threads a flag accepts.
MAX_COUNT = 10**6
#: The most frames a replay gif records (a gif is held in memory before it is written).
MAX_GIF_STEPS = 100_000
#: The largest grid side of a replay gif (8: 64 games at once).
MAX_GIF_GRID = 8
#: The most CPU threads a flag asks torch for.
MAX_THREADS = 1024


class _Range:
    """An argparse type: a number within a range, with a message that names the range (the fix)."""

    def __init__(self, kind: type, low: float | None, high: float | None, low_open: bool, high_open: bool) -> None:
        self.kind, self.low, self.high, self.low_open, self.high_open = kind, low, high, low_open, high_open
        self.__name__ = "whole" if kind is int else "number"  # argparse and the flag fuzzer read it

    def describe(self) -> str:
        fmt = (lambda v: f"{v:,}") if self.kind is int else (lambda v: f"{v:g}")
        if self.low is not None and self.high is not None and not (self.low_open or self.high_open):
            return f"from {fmt(self.low)} to {fmt(self.high)}"
        bounds = [f"{'>' if self.low_open else '>='} {fmt(self.low)}" if self.low is not None else "",
                  f"{'<' if self.high_open else '<='} {fmt(self.high)}" if self.high is not None else ""]
        return " and ".join(b for b in bounds if b) or "finite"

    def __call__(self, text: str) -> int | float:
        what = "a whole number" if self.kind is int else "a number"
        try:
            value: float = float(text)
            if self.kind is int:
                value = int(text) if text.strip().lstrip("+-").isdigit() else value
                if not float(value).is_integer():
                    raise ValueError(text)
                value = int(value)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; give one {self.describe()}") from None
        if not math.isfinite(value) or (self.low is not None and (value <= self.low if self.low_open else value < self.low)) \
                or (self.high is not None and (value >= self.high if self.high_open else value > self.high)):
            raise argparse.ArgumentTypeError(f"{text} is out of range; give {what} {self.describe()}")
        return value

    def __repr__(self) -> str:
        return f"{self.__name__}({self.describe()})"


def whole(low: int = 0, high: int = MAX_STEPS) -> _Range:
    """A ``type=`` for a whole-number flag in ``[low, high]`` (``1e6`` is read as 1,000,000)."""
    return _Range(int, low, high, False, False)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> _Range:
    """A ``type=`` for a finite number flag between ``low`` and ``high`` (``low_open``: ``> low``)."""
    return _Range(float, low, high, low_open, high_open)


def _kind(path: Path) -> str:
    """``folder``, ``file``, ``missing`` or ``hidden`` (a folder above it cannot be searched)."""
    try:
        return "folder" if path.is_dir() else "file" if path.exists() else "missing"
    except PermissionError:
        return "hidden"


def _nearest_existing(path: Path) -> Path:
    while _kind(path) in ("missing", "hidden") and path != path.parent:
        path = path.parent
    return path


def output_folder(text: str) -> str:
    """A ``type=`` for a folder the script creates or writes into: it must be a folder (or not yet
    exist) and the nearest existing folder above it must be writable."""
    path = Path(text).expanduser()
    if _kind(path) == "file":
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder; give a folder")
    return _writable_from(path, text)


def output_file(text: str) -> str:
    """A ``type=`` for a file the script writes: not a folder, in a folder that can be written."""
    path = Path(text).expanduser()
    if _kind(path) == "folder":
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name in it")
    return _writable_from(path.parent, text)


def _writable_from(folder: Path, text: str) -> str:
    existing = _nearest_existing(folder.absolute())
    if _kind(existing) != "folder":
        raise argparse.ArgumentTypeError(f"{text}: {existing} is a file, not a folder; give a path in a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: cannot write in {existing}; give a folder you can write to")
    return text


def input_file(text: str) -> str:
    """A ``type=`` for a file the script reads: it must exist, be a file and be readable."""
    kind = _kind(Path(text).expanduser())
    if kind in ("missing", "hidden"):
        what = "does not exist" if kind == "missing" else "cannot be reached (permissions)"
        raise argparse.ArgumentTypeError(f"{text} {what}; give the path of an existing file")
    if kind == "folder":
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file in it")
    if not os.access(Path(text).expanduser(), os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read (permissions); give a file you can read")
    return text


def input_folder(text: str) -> str:
    """A ``type=`` for a folder the script reads: it must exist and be a folder."""
    path = Path(text).expanduser()
    kind = _kind(path)
    if kind != "folder":
        what = {"file": "is a file", "missing": "does not exist", "hidden": "cannot be reached (permissions)"}[kind]
        raise argparse.ArgumentTypeError(f"{text} {what}; give an existing folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be read (permissions); give a folder you can read")
    return text
