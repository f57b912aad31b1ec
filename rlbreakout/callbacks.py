"""Training callbacks shared by every chapter.

* :class:`MultiEnvEvalCallback` evaluates whole games on several named envs (it
  replaces SB3's EvalCallback everywhere, also with a single env);
* :class:`GameScoreCallback` logs the real game score of every finished training game;
* :class:`StepCheckpointCallback` saves a resumable checkpoint every N env steps;
* :class:`HyperparamTableCallback` writes the hyperparameters as a TensorBoard text table;
* :class:`ProgressLineCallback` prints a progress line every N steps where no bar shows.

Every callback that writes to TensorBoard takes SB3's writer through :func:`tensorboard_writer`,
which makes it a :class:`DescribedWriter`: the first value of each tag carries the tag's
meaning from :mod:`rlbreakout.tags`, and TensorBoard shows it beside the chart.

Chapter 5's ``FreezeOnCollapseCallback`` lives in rlbreakout/collapse.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EventCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecEnv
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.scalar.metadata import create_summary_metadata

from rlbreakout.errors import ConfigError
from rlbreakout.files import atomic_path
from rlbreakout.progress import ProgressLine
from rlbreakout.runs import score_stats
from rlbreakout.tags import description

BEST_MODEL_FILE = "best_model.zip"
LATEST_CHECKPOINT = "latest.zip"
#: The checkpoint before the latest: ``--resume`` falls back to it when ``latest.zip`` is damaged.
PREVIOUS_CHECKPOINT = "previous.zip"


class DescribedWriter:
    """A SummaryWriter whose first value of each tag carries the tag's meaning (:func:`rlbreakout.tags.description`).

    TensorBoard takes a chart's description from the ``summary_description`` of the first
    value of its tag in a run that has metadata; SB3 and torch write plain values without
    any, so the charts' descriptions would be empty. This writer writes the first value of
    each described tag itself, with the scalar plugin's metadata and the description, and
    passes every other call on to the wrapped writer.

    :param writer: a ``torch.utils.tensorboard.SummaryWriter``
    """

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.described: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.writer, name)

    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None, walltime: float | None = None,
                   **kwargs: Any) -> None:
        text = description(tag)
        if tag in self.described or not text:
            self.writer.add_scalar(tag, scalar_value, global_step, walltime, **kwargs)
            return
        self.described.add(tag)
        metadata = create_summary_metadata(display_name=tag, description=text)
        value = Summary.Value(tag=tag, simple_value=float(scalar_value), metadata=metadata)
        # the file writer torch's own add_* methods write through (it reopens after close)
        self.writer._get_file_writer().add_summary(Summary(value=[value]), global_step, walltime)


def tensorboard_writer(logger: Any) -> DescribedWriter | None:
    """The writer behind SB3's logger, made a :class:`DescribedWriter` (once); None when TensorBoard logging is off.

    Call it before the first value is logged (at training start): from then on SB3's own
    ``rollout/*``, ``train/*`` and ``time/fps`` and the callbacks' tags carry their descriptions.
    """
    for output in logger.output_formats:
        if isinstance(output, TensorBoardOutputFormat):
            if not isinstance(output.writer, DescribedWriter):
                output.writer = DescribedWriter(output.writer)
            return output.writer
    return None


class MultiEnvEvalCallback(EventCallback):
    """Evaluate the model on several named envs every ``eval_freq`` environment steps.

    Why not SB3's ``EvalCallback``: it takes one env, counts ``eval_freq`` in callback
    calls (not env steps) and reports only the mean. The games themselves are played by
    SB3's ``evaluate_policy``, which counts whole games through the Monitor wrapper.

    For each name it logs ``eval/<name>/mean_reward``, ``median_reward``, ``std_reward``,
    ``q25_reward`` (lower quantile) and ``mean_ep_length`` over ``n_eval_episodes`` whole
    games (all lives, unclipped), spread evenly over the envs of that VecEnv.

    .. note::
        ``eval_freq`` counts environment steps, not callback calls: with 8 envs SB3's
        EvalCallback(eval_freq=10_000) evaluates every 80,000 steps, this one every 10,000.

    :param eval_envs: name -> VecEnv, built with the same factory (and wrappers) as training
    :param eval_freq: env steps between evaluations (0 disables periodic evaluation)
    :param n_eval_episodes: whole games per env name
    :param best_model_env: name whose score picks the best model (default: the first)
    :param best_model_save_path: folder for ``best_model.zip`` (None: don't save)
    :param best_metric: ``mean_reward`` or ``median_reward``
    :param deterministic: greedy actions during evaluation (stochastic by default: greedy
        Breakout policies can stall without pressing FIRE)
    :param callback_after_eval: called after every evaluation (e.g. to prune or freeze)
    """

    def __init__(
        self,
        eval_envs: dict[str, VecEnv],
        eval_freq: int,
        n_eval_episodes: int = 10,
        *,
        best_model_env: str | None = None,
        best_model_save_path: str | os.PathLike[str] | None = None,
        best_metric: str = "mean_reward",
        deterministic: bool = False,
        callback_after_eval: BaseCallback | None = None,
        verbose: int = 1,
    ) -> None:
        super().__init__(callback_after_eval, verbose=verbose)
        if not eval_envs:
            raise ConfigError("MultiEnvEvalCallback needs at least one eval env.")
        if eval_freq < 0:
            raise ConfigError(f"eval_freq must be >= 0 env steps, got {eval_freq}.")
        if n_eval_episodes < 1:
            raise ConfigError(f"n_eval_episodes must be >= 1, got {n_eval_episodes}.")
        if best_metric not in ("mean_reward", "median_reward"):
            raise ConfigError(f"best_metric must be mean_reward or median_reward, got {best_metric!r}.")
        self.eval_envs = dict(eval_envs)
        self.eval_freq = int(eval_freq)
        self.n_eval_episodes = int(n_eval_episodes)
        self.best_model_env = best_model_env or next(iter(self.eval_envs))
        if self.best_model_env not in self.eval_envs:
            raise ConfigError(f"best_model_env {self.best_model_env!r} is not one of {sorted(self.eval_envs)}.")
        self.best_model_save_path = Path(best_model_save_path) if best_model_save_path else None
        self.best_metric = best_metric
        self.deterministic = deterministic
        self.next_eval_step = self.eval_freq
        self.best_score = -np.inf
        # SB3 EvalCallback-compatible attributes, read by callbacks chained after evaluation
        self.best_mean_reward = -np.inf
        self.last_mean_reward = -np.inf
        self.last_results: dict[str, dict[str, float]] = {}
        self.history: list[tuple[int, dict[str, dict[str, float]]]] = []
        #: wall seconds spent evaluating, so training speed can be reported without it
        self.eval_seconds = 0.0

    def _init_callback(self) -> None:
        super()._init_callback()
        tensorboard_writer(self.logger)  # eval/* (and SB3's tags) carry their meaning into TensorBoard
        # Resumed runs start at num_timesteps > 0: the next evaluation is the next multiple. The model's
        # count, not the callback's: SB3 copies it into the callback only at the first step.
        if self.eval_freq > 0:
            self.next_eval_step = (self.model.num_timesteps // self.eval_freq + 1) * self.eval_freq
        if self.best_model_save_path is not None:
            self.best_model_save_path.mkdir(parents=True, exist_ok=True)

    def _on_step(self) -> bool:
        if self.eval_freq <= 0 or self.num_timesteps < self.next_eval_step:
            return True
        while self.next_eval_step <= self.num_timesteps:
            self.next_eval_step += self.eval_freq
        return self.evaluate()

    def evaluate(self) -> bool:
        """Evaluate now on every env, log, keep the best model; returns continue_training."""
        started = time.perf_counter()
        results: dict[str, dict[str, float]] = {}
        for name, venv in self.eval_envs.items():
            scores, lengths = evaluate_policy(
                self.model, venv, n_eval_episodes=self.n_eval_episodes, deterministic=self.deterministic,
                return_episode_rewards=True,
            )
            stats = {
                **score_stats(scores),
                "mean_ep_length": float(np.mean(lengths)) if lengths else float("nan"),
            }
            results[name] = stats
            for key in ("mean_reward", "median_reward", "std_reward", "q25_reward", "mean_ep_length"):
                self.logger.record(f"eval/{name}/{key}", stats[key])
            if self.verbose >= 1:
                print(
                    f"eval {name} @ {self.num_timesteps} steps: mean {stats['mean_reward']:.1f}, "
                    f"median {stats['median_reward']:.1f} over {len(scores)} games",
                    flush=True,
                )
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        self.eval_seconds += time.perf_counter() - started
        self.last_results = results
        self.history.append((self.num_timesteps, results))
        score = results[self.best_model_env][self.best_metric]
        self.last_mean_reward = results[self.best_model_env]["mean_reward"]
        if score > self.best_score:
            self.best_score = score
            self.best_mean_reward = self.last_mean_reward
            if self.best_model_save_path is not None:
                with atomic_path(self.best_model_save_path / BEST_MODEL_FILE) as partial:
                    self.model.save(partial)
        continue_training = self.after_evaluation(results)
        if self.callback is not None:
            continue_training = continue_training and self._on_event()
        return continue_training

    def after_evaluation(self, results: dict[str, dict[str, float]]) -> bool:
        """Hook for subclasses (e.g. Optuna pruning); return False to stop training."""
        return True


class GameScoreCallback(BaseCallback):
    """Log the real game score: one TensorBoard point per finished training game.

    ``game/score`` is the unclipped return of a whole game (all lives) at the env step
    where it ended; ``game/length`` its length as Monitor counts it (emulator frames for
    NoFrameskip ids, whose Monitor sits under MaxAndSkip; agent steps for v5 ids). The clipped per-life reward that
    PPO optimises is not the score.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.scores: list[float] = []
        self.lengths: list[int] = []
        self._writer: Any | None = None

    def _on_training_start(self) -> None:
        self._writer = tensorboard_writer(self.logger)

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:  # SB3 hands every callback its step's infos
            episode = info.get("episode")
            if episode is None:
                continue
            score, length = float(episode["r"]), int(episode["l"])
            self.scores.append(score)
            self.lengths.append(length)
            if self._writer is not None:
                self._writer.add_scalar("game/score", score, self.num_timesteps)
                self._writer.add_scalar("game/length", length, self.num_timesteps)
        return True


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) while the block runs, then raise KeyboardInterrupt if one came.

    Only the main thread can set signal handlers, and a SIGINT that was ignored when the
    block started (a job started in the background) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


class StepCheckpointCallback(BaseCallback):
    """Save a resumable checkpoint every ``save_freq`` env steps (and on demand).

    Why not SB3's ``CheckpointCallback``: it counts callback calls rather than env steps
    and writes a new file per checkpoint; ``--resume`` needs one ``latest.zip``, replaced
    atomically, and Ctrl-C needs :meth:`save` on demand.

    The model zip holds the weights, optimiser state and ``num_timesteps``; the
    schedules are functions of progress, so they resume from the step count alone.
    ``latest.zip`` always points at the newest checkpoint and ``previous.zip`` at the one
    before it (the last two are kept: see :func:`rlbreakout.training.load_checkpoint`).
    """

    def __init__(self, save_freq: int, save_dir: str | os.PathLike[str], verbose: int = 0) -> None:
        super().__init__(verbose)
        if save_freq < 0:
            raise ConfigError(f"checkpoint frequency must be >= 0 env steps, got {save_freq}.")
        self.save_freq = int(save_freq)
        self.save_dir = Path(save_dir)
        self.next_save_step = self.save_freq
        #: The steps of the checkpoint this callback wrote last: the same steps are not written twice.
        self.saved_step: int | None = None

    def _init_callback(self) -> None:
        self.save_dir.mkdir(parents=True, exist_ok=True)
        if self.save_freq > 0:
            # a resumed run saves at the next multiple; the model's count, as SB3 syncs the callback's only later
            self.next_save_step = (self.model.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        if self.save_freq > 0 and self.num_timesteps >= self.next_save_step:
            while self.next_save_step <= self.num_timesteps:
                self.next_save_step += self.save_freq
            self.save()
        return True

    def save(self) -> Path:
        """Write ``latest.zip`` and keep the one it replaces as ``previous.zip``.

        The write is atomic (:func:`rlbreakout.files.atomic_path`): a kill or a full disk
        mid-write leaves the last complete checkpoint in place (a full disk: one line naming
        the path and the space left). A Ctrl-C during the write is held until the file is
        complete, then raised: raised inside ``torch.save`` it would surface as a RuntimeError
        from the zip writer, a traceback instead of the clean interrupt that saves a
        checkpoint and says how to resume.
        """
        final = self.save_dir / LATEST_CHECKPOINT
        if self.saved_step == self.model.num_timesteps and final.is_file():
            return final  # e.g. the end of training right after a periodic checkpoint
        with ctrl_c_held(), atomic_path(final, keep_previous=self.save_dir / PREVIOUS_CHECKPOINT) as partial:
            self.model.save(partial)
        self.saved_step = self.model.num_timesteps
        if self.verbose:
            print(f"checkpoint at {self.model.num_timesteps} steps: {final}", flush=True)
        return final


class HyperparamTableCallback(BaseCallback):
    """Write a markdown table of the run's hyperparameters to TensorBoard's text tab once."""

    def __init__(self, table: str, tag: str = "hyperparameters") -> None:
        super().__init__()
        self.table = table
        self.tag = tag

    def _on_training_start(self) -> None:
        writer = tensorboard_writer(self.logger)
        if writer is not None:
            writer.add_text(self.tag, self.table, self.num_timesteps)

    def _on_step(self) -> bool:
        return True


class ProgressLineCallback(BaseCallback):
    """Print a progress line every N env steps when no terminal shows SB3's progress bar.

    The line has the steps done, steps per second and the last game scores (see
    :class:`~rlbreakout.progress.ProgressLine`); ``model.learn(progress_bar=on_terminal())``
    draws the bar on a terminal, so the two never show together.
    """

    def __init__(self, total_timesteps: int, every: int | None = None, *, enabled: bool | None = None) -> None:
        super().__init__()
        self.total_timesteps = int(total_timesteps)
        self.every = every
        self.enabled = enabled
        self.progress: ProgressLine | None = None
        self.scores: list[float] = []

    def _on_training_start(self) -> None:
        # total_timesteps of a resumed run counts from its first step, like num_timesteps
        self.progress = ProgressLine(self.total_timesteps, self.every, enabled=self.enabled,
                                     start_step=self.num_timesteps)

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:  # SB3 hands every callback its step's infos
            episode = info.get("episode")
            if episode is not None:
                self.scores.append(float(episode["r"]))
        assert self.progress is not None
        self.progress.update(self.num_timesteps, self.scores)
        return True
