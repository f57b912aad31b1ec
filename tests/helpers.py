"""Small checks shared by several test files (not part of the package: only tests need them)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

REPO_ROOT = Path(__file__).resolve().parents[1]


def is_channel_first_uint8(venv: VecEnv) -> bool:
    """True when the VecEnv's observation space is a uint8 image with channels first."""
    space = venv.observation_space
    return (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[0] < space.shape[1]
    )


@functools.lru_cache(maxsize=None)
def script_help(script: str) -> str:
    """``python script --help`` (a path relative to the repository root), run once per test session."""
    result = subprocess.run([sys.executable, script, "--help"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{script} --help failed:\n{result.stderr[-2000:]}"
    return result.stdout


#: Runs each script given as an argument with ``--help`` in this one process (torch is imported once),
#: and prints {script: its help text} as JSON. A script's story starts after ``parse_args()``, where
#: ``--help`` exits, so nothing but its imports and its Settings cell runs.
_HELP_OF_EACH = """
import contextlib, io, json, runpy, sys
helps = {}
for script in sys.argv[1:]:
    sys.argv = [script, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        if exit.code in (0, None):
            helps[script] = out.getvalue()
json.dump(helps, sys.__stdout__)
"""


def scripts_help(scripts: list[str]) -> dict[str, str]:
    """Each script's ``--help`` text, from one Python process; a script whose ``--help`` fails is missing."""
    result = subprocess.run([sys.executable, "-c", _HELP_OF_EACH, *scripts], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"--help of the scripts failed:\n{result.stderr[-2000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])
