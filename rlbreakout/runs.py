"""Run folders and the run lifecycle every script shares, from folder to summary.json.

Layout (CleanRL / rl-zoo style): ``<logdir>/<script>/<env>__s<seed>__<time>/``. A run can be
reproduced from its folder alone: ``config.json`` holds the parsed arguments, the git
commit and the CPU, and ``command.txt`` the exact command line.

:class:`Run` is the one place that creates the folder, saves the config, seeds, times
training apart from evaluation and writes ``summary.json`` (its path printed last).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlbreakout.errors import RLBreakoutError
from rlbreakout.expected_time import expected_time_line, measured_speed
from rlbreakout.files import write_text_atomic
from rlbreakout.provenance import gpu_model, provenance

#: Keys every summary.json carries (the tutorial's CLI contract); evaluation and model keys
#: (``mean_reward``, ``median_reward``, ``model_path``) are added when they apply.
REQUIRED_SUMMARY_KEYS: tuple[str, ...] = (
    "script", "env_id", "timesteps", "seed", "run_dir", "wall_seconds", "steps_per_second",
)
#: Where each run records the code and machine that made it (see rlbreakout/provenance.py).
PROVENANCE_KEYS: tuple[str, ...] = ("git_commit", "git_dirty", "cpu_model")
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
COMMAND_FILE = "command.txt"


def script_name(path: str | os.PathLike[str]) -> str:
    """``2_baselines/2.3_copying_hp_zoo.py`` -> ``2.3_copying_hp_zoo``."""
    return Path(path).stem


def sanitize_env_id(env_id: str) -> str:
    """``ALE/Breakout-v5`` -> ``ALE-Breakout-v5`` (a folder name, not a path)."""
    return env_id.replace("/", "-")


def create_run_dir(logdir: str | os.PathLike[str], script: str, env_id: str, seed: int) -> Path:
    """Create and return a fresh run folder; a same-second clash gets a numeric suffix."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(logdir) / script / f"{sanitize_env_id(env_id)}__s{seed}__{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir = base.with_name(f"{base.name}_{n}")
        n += 1
    run_dir.mkdir(parents=True)
    return run_dir


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def save_run_config(run_dir: Path, config: dict[str, Any], argv: list[str] | None = None) -> None:
    """Write ``config.json`` and ``command.txt`` so the run can be reproduced from its folder."""
    write_text_atomic(run_dir / CONFIG_FILE, json.dumps(_jsonable(config), indent=2, sort_keys=True) + "\n")
    argv = sys.argv if argv is None else argv
    command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *argv])
    write_text_atomic(run_dir / COMMAND_FILE, command + "\n")


def load_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of an earlier run (used by ``--resume``)."""
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text())


def write_summary(run_dir: Path, summary: dict[str, Any], *, announce: bool = True) -> Path:
    """Write ``summary.json`` into ``run_dir`` (whole or not at all) and, by convention, print its path last.

    Missing required keys are a programming error, so they raise ``KeyError`` here
    rather than produce a summary that downstream tools cannot read.
    """
    missing = [k for k in REQUIRED_SUMMARY_KEYS if k not in summary]
    if missing:
        raise KeyError(f"summary.json is missing required keys: {missing}")
    path = Path(run_dir) / SUMMARY_FILE
    write_text_atomic(path, json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n")
    if announce:
        print(path, flush=True)
    return path


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch, so same seed on CPU gives bit-identical training."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


#: The "lower quantile" reported beside mean and median: a robust view of the bad games.
LOWER_QUANTILE = 0.25


def score_stats(scores: list[float] | np.ndarray) -> dict[str, float]:
    """Mean, median, std, lower quantile, min and max of whole-game scores (empty -> NaNs)."""
    arr = np.asarray(scores, dtype=float)
    if arr.size == 0:
        nan = float("nan")
        return {"mean_reward": nan, "median_reward": nan, "std_reward": nan,
                "q25_reward": nan, "min_reward": nan, "max_reward": nan, "n_games": 0}
    return {
        "mean_reward": float(arr.mean()),
        "median_reward": float(np.median(arr)),
        "std_reward": float(arr.std()),
        "q25_reward": float(np.quantile(arr, LOWER_QUANTILE)),
        "min_reward": float(arr.min()),
        "max_reward": float(arr.max()),
        "n_games": int(arr.size),
    }


class Run:
    """One run of a script: its folder, config, seed, training clock and summary.json.

    Usage, in the order a chapter script's cells use it::

        run = Run.from_args(__file__, args)          # folder, config.json, command.txt, seed
        with run.training(model, on_interrupt=checkpoint.save):
            model.learn(...)                         # timed apart from evaluation
        run.finish(timesteps=model.num_timesteps, scores=scores, model_path=path)

    ``finish`` writes summary.json with :data:`REQUIRED_SUMMARY_KEYS`, the score
    statistics and the provenance, and prints its path as the last line.

    :param script: the calling script's path (``__file__``); its stem names the folder
    :param config: what config.json records (the parsed flags and anything they imply)
    :param resume_dir: an existing run folder to continue instead of a new one
    :param folder_label: names the folder instead of ``env_id`` (e.g. a game with its sticky
        setting, so runs to compare sit side by side in TensorBoard)
    """

    def __init__(
        self,
        script: str | os.PathLike[str],
        *,
        env_id: str,
        seed: int,
        logdir: str | os.PathLike[str],
        config: Mapping[str, Any],
        resume_dir: str | os.PathLike[str] | None = None,
        argv: list[str] | None = None,
        folder_label: str | None = None,
    ) -> None:
        self.name = script_name(script)
        self.env_id = env_id
        self.seed = int(seed)
        self.logdir = Path(logdir)
        self.started = time.perf_counter()
        #: Seconds spent in training alone (evaluation inside it excluded with :meth:`exclude`).
        self.train_seconds = 0.0
        #: Env steps trained in this process (a resumed run counts only the new ones).
        self.trained_steps = 0
        #: The torch device asked for (``auto``, ``cpu``, ``cuda``...): summary.json names the GPU that ran it.
        self.device = config.get("device")
        #: The run's planned env steps and speed flag: the expected-time line before training uses them.
        self.planned_steps = int(config.get("timesteps") or 0)
        self.fast = bool(config.get("fast"))
        if resume_dir is not None:
            self.dir = Path(resume_dir)
            if not (self.dir / CONFIG_FILE).is_file():
                raise RLBreakoutError(f"cannot resume {self.dir}: it has no {CONFIG_FILE}; "
                                      f"pass the run folder printed by the first run.")
        else:
            self.dir = create_run_dir(self.logdir, self.name, folder_label or env_id, self.seed)
            save_run_config(self.dir, {**config, **provenance()}, argv)
        print(f"run folder: {self.dir}  (tensorboard --logdir {self.logdir})", flush=True)
        seed_everything(self.seed)

    @classmethod
    def from_args(cls, script: str | os.PathLike[str], args: argparse.Namespace, **config: Any) -> "Run":
        """A run named by ``args.env``, ``args.seed``, ``args.logdir`` (and ``args.resume`` if set)."""
        return cls(script, env_id=args.env, seed=args.seed, logdir=args.logdir,
                   config={**vars(args), **config}, resume_dir=getattr(args, "resume", None))

    @contextmanager
    def training(self, model: Any = None, *, on_interrupt: Callable[[], Path] | None = None) -> Iterator[None]:
        """Time the block as training; count the env steps ``model.num_timesteps`` gained.

        Training a model, it first prints the steps left and the wall time they should take
        here (:mod:`rlbreakout.expected_time`), and how to stop and go on.

        On Ctrl-C, ``on_interrupt`` (a checkpoint's ``save``) runs before the interrupt
        goes on, and one line says how to continue with ``--resume``.
        """
        steps_before = int(getattr(model, "num_timesteps", 0))
        if model is not None and self.planned_steps > steps_before:
            speed = measured_speed(self.name, self.fast, self.logdir, exclude=self.dir)
            print(expected_time_line(self.planned_steps - steps_before, speed, self.dir), flush=True)
        started = time.perf_counter()
        try:
            yield
        except KeyboardInterrupt:
            if on_interrupt is not None:
                path = on_interrupt()
                print(f"\ninterrupted at {getattr(model, 'num_timesteps', '?')} steps; checkpoint {path}. "
                      f"Continue with: --resume {self.dir}", file=sys.stderr, flush=True)
            raise
        finally:
            self.train_seconds += time.perf_counter() - started
            if model is not None:
                self.trained_steps += int(model.num_timesteps) - steps_before

    def exclude(self, seconds: float) -> None:
        """Take seconds spent inside :meth:`training` on something else (periodic evaluation) off."""
        self.train_seconds = max(self.train_seconds - float(seconds), 0.0)

    @property
    def steps_per_second(self) -> float:
        """Env steps per second of training alone (0 when nothing was trained)."""
        return round(self.trained_steps / self.train_seconds, 2) if self.train_seconds > 0 else 0.0

    def summary(
        self,
        *,
        timesteps: int,
        scores: Sequence[float] | None = None,
        model_path: str | os.PathLike[str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """summary.json's content: the required keys, score statistics, provenance, then ``extra``."""
        summary: dict[str, Any] = {
            "script": self.name,
            "env_id": self.env_id,
            "timesteps": int(timesteps),
            "seed": self.seed,
            "run_dir": str(self.dir),
            "wall_seconds": round(time.perf_counter() - self.started, 2),
            "steps_per_second": self.steps_per_second,
            "train_seconds": round(self.train_seconds, 2),
            **provenance(),
        }
        gpu = gpu_model(self.device)
        if gpu is not None:
            summary["gpu_model"] = gpu
        if scores is not None:
            summary.update({**score_stats(list(scores)), "scores": [float(s) for s in scores]})
        if model_path is not None:
            summary["model_path"] = str(model_path)
        summary.update(extra)
        return summary

    def finish(
        self,
        *,
        timesteps: int,
        scores: Sequence[float] | None = None,
        model_path: str | os.PathLike[str] | None = None,
        **extra: Any,
    ) -> Path:
        """Write summary.json (see :meth:`summary`) and print its path as the last line."""
        summary = self.summary(timesteps=timesteps, scores=scores, model_path=model_path, **extra)
        if scores is not None and len(scores):
            print(f"final evaluation: mean {summary['mean_reward']:.1f}, median {summary['median_reward']:.1f} "
                  f"over {summary['n_games']} whole games; {summary['steps_per_second']} steps/s of training",
                  flush=True)
        return write_summary(self.dir, summary)
