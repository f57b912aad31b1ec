"""Small checks shared by several test files (not part of the package: only tests need them)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def wait_until(ready: Callable[[], object], timeout: float, what: str,
               process: subprocess.Popen[str] | None = None, poll: float = 0.1) -> object:
    """Poll ``ready()`` until it returns something true, and return that.

    Fails with one clear line after ``timeout`` seconds, or as soon as ``process`` exits
    (with the end of its stderr), so a test never acts on a fixed sleep.

    :param what: what is awaited, for the failure message ("the first checkpoint")
    """
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        if process is not None and process.poll() is not None:
            err = process.stderr.read() if process.stderr else ""
            raise AssertionError(f"the process exited {process.returncode} before {what}: {err[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(poll)


class RawFrameRecorder(gym.Wrapper):
    """Keeps every emulator frame; below MaxAndSkip it sees the frames the agent's steps skip."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.frames: list[np.ndarray] = []

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        observation, info = self.env.reset(**kwargs)
        self.frames.append(observation)
        return observation, info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(observation)
        return observation, reward, terminated, truncated, info


@dataclass
class PlayedFrames:
    """A scripted game at frameskip 4 with max-pooling, and every emulator frame under it."""

    #: every emulator frame, resets included, in order
    raw: list[np.ndarray]
    #: per agent step: the index in ``raw`` of the last frame its observation pooled, and the
    #: player's predicted impact column on that observation (None: no falling ball seen)
    steps: list[tuple[int, float | None]]


def play_recording_raw_frames(agent_steps: int, seed: int = 0) -> PlayedFrames:
    """The scripted player on BreakoutNoFrameskip-v4 (MaxAndSkip 4, max-pooled), frames kept below the skip."""
    from stable_baselines3.common.atari_wrappers import MaxAndSkipEnv

    from rlbreakout.envs import make_env_thunk
    from rlbreakout.scripted_player import player_for

    recorder = RawFrameRecorder(make_env_thunk("BreakoutNoFrameskip-v4", seed=seed, wrapper="none", render_mode=None)())
    env = MaxAndSkipEnv(recorder, skip=4)
    player = player_for("BreakoutNoFrameskip-v4", seed=seed, aim_jitter=0.0)
    frame, _ = env.reset(seed=seed)
    steps: list[tuple[int, float | None]] = []
    for _ in range(agent_steps):
        action = player.act(frame)
        steps.append((len(recorder.frames) - 1, player.view.last_impact))
        frame, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            frame, _ = env.reset()
            player.reset()
    env.close()
    return PlayedFrames(raw=recorder.frames, steps=steps)
