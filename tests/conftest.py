"""Shared test helpers: run a chapter script as a learner would, and read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Flags that shrink any SB3 PPO chapter script to a few seconds of real training.
TINY_PPO_FLAGS = [
    "--timesteps", "64", "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1",
    "--eval-episodes", "1", "--gif-max-steps", "40", "--checkpoint-freq", "0", "--device", "cpu",
]


def run_script(script: str, *args: str, timeout: int = 600, expect_ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (a path relative to the repo root) with the venv's python."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, env=env,
    )
    if expect_ok and result.returncode != 0:
        raise AssertionError(f"{script} exited {result.returncode}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


def summary_of(result: subprocess.CompletedProcess[str]) -> tuple[Path, dict]:
    """The summary.json whose path the script printed as its last line."""
    last_line = result.stdout.strip().splitlines()[-1]
    path = Path(last_line)
    assert path.name == "summary.json" and path.is_file(), f"last line is not a summary path: {last_line!r}"
    return path, json.loads(path.read_text())


def event_files(run_dir: Path) -> list[Path]:
    """TensorBoard event files anywhere under a run folder."""
    return sorted(run_dir.rglob("events.out.tfevents.*"))


def scalar_steps(run_dir: Path, tag: str) -> list[int]:
    """The steps at which ``tag`` was logged, over all event files of a run (tensorboard's reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: list[int] = []
    for path in event_files(run_dir):
        acc = EventAccumulator(str(path))
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            steps += [event.step for event in acc.Scalars(tag)]
    return sorted(steps)


@dataclass
class ScalarSeries:
    """One scalar tag of one run as TensorBoard's UI gets it: the chart's description and its points."""

    description: str
    steps: list[int]
    values: list[float]


def tensorboard_runs(logdir: Path) -> dict[str, dict[str, ScalarSeries]]:
    """Every run (event folder) under ``logdir`` -> its scalar tags, read by TensorBoard's own data provider."""
    from tensorboard import context
    from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = MultiplexerDataProvider(multiplexer, str(logdir))
    ctx = context.RequestContext()
    listed = provider.list_scalars(ctx, experiment_id="", plugin_name="scalars")
    points = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10_000)
    return {run: {tag: ScalarSeries(series.description, [p.step for p in points[run][tag]],
                                    [p.value for p in points[run][tag]]) for tag, series in tags.items()}
            for run, tags in listed.items()}


def tensorboard_scalars(logdir: Path) -> dict[str, ScalarSeries]:
    """The scalar tags of the one run under ``logdir`` (see :func:`tensorboard_runs`)."""
    runs = tensorboard_runs(logdir)
    assert len(runs) == 1, f"expected one run under {logdir}, found {sorted(runs)}"
    return next(iter(runs.values()))


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    return tmp_path / "runs"
