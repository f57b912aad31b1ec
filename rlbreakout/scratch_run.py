"""The bookkeeping of the from-scratch PPO (2.4, 2.5), one call each, so the scripts read as PPO.

CleanRL's ``ppo_atari.py`` keeps its run name, TensorBoard writer and episode logging in
the script. Ours also plays whole games after training, records a gif and writes
summary.json, as 2.3 does, so its curves and results sit beside SB3's; none of that is PPO.
:class:`ScratchRun` holds it, and the script makes one call for each part:

* ``ScratchRun(__file__, args, speed)``: the run folder (config.json, command.txt, seeds) and
  the TensorBoard writer (each tag's meaning from rlbreakout/tags.py beside its chart), the
  flags as its first text;
* :meth:`~ScratchRun.record_games`: each finished whole game's unclipped score and length as
  ``game/score`` and ``game/length`` (the clipped rewards are PPO's, these are the player's);
* :meth:`~ScratchRun.log`: one iteration's ``train/*`` values with SB3's ``time/fps`` and
  ``rollout/ep_rew_mean``, so the curves overlay 2.3's, and the progress line;
* :meth:`~ScratchRun.training`: times the loop, saves the weights at its end (on Ctrl-C too);
* :meth:`~ScratchRun.evaluate`, :meth:`~ScratchRun.replay`, :meth:`~ScratchRun.finish`: the
  final whole-game scores, the gif of the real screen, and summary.json.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from rlbreakout.callbacks import DescribedWriter
from rlbreakout.expected_time import expected_time_line, measured_speed
from rlbreakout.flag_types import MAX_COUNT, MAX_GIF_GRID, MAX_GIF_STEPS, whole
from rlbreakout.hyperparams import markdown_table
from rlbreakout.progress import ProgressLine
from rlbreakout.render import record_gif
from rlbreakout.runs import Run
from rlbreakout.speed.scratch_speed import SpeedLevers, finished_games, vector_env_backend
from rlbreakout.training import EVAL_SEED_OFFSET, MAX_EVAL_ENVS, REPLAY_GIF

MODEL_FILE = "model.pt"
#: rollout/ep_rew_mean averages the last 100 games, as SB3's ep_info_buffer does
SCORE_WINDOW = 100
#: Safety cap on agent steps of one evaluation (games end at 108k frames anyway).
MAX_EVAL_STEPS = 200_000

#: numpy observations -> numpy actions
Policy = Callable[[np.ndarray], np.ndarray]
#: (number of envs, seed) -> a gymnasium vector env of the script's games
VectorEnvFactory = Callable[[int, int], Any]


def add_replay_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of the final evaluation and the gif: ``--eval-games``, ``--gif-games``, ``--gif-max-steps``."""
    replay = parser.add_argument_group("evaluation and replay")
    replay.add_argument("--eval-games", type=whole(0, MAX_COUNT), default=10, help="whole games of the final evaluation (0: none)")
    replay.add_argument("--gif-games", type=whole(0, MAX_GIF_GRID), default=1, help="grid side of the replay gif (3: 9 games); 0: none")
    replay.add_argument("--gif-max-steps", type=whole(0, MAX_GIF_STEPS), default=2_000, help="agent steps recorded in the gif at most")


def acting_policy(model: torch.nn.Module, speed: SpeedLevers) -> Policy:
    """numpy observations -> numpy actions of ``model.get_action_and_value``, sampled as in training
    (a greedy Breakout agent can stall), under the run's acting precision."""
    def policy(obs: np.ndarray) -> np.ndarray:
        with speed.acting():
            return model.get_action_and_value(torch.as_tensor(obs, device=speed.device))[0].cpu().numpy()
    return policy


def evaluate_games(policy: Policy, make_envs: VectorEnvFactory, n_games: int, seed: int) -> tuple[list[float], list[int]]:
    """Play ``n_games`` whole games, spread evenly over the envs (so the short, bad games that
    finish first are not over-counted); returns their scores and lengths."""
    num_envs = min(n_games, MAX_EVAL_ENVS)
    targets, counts, scores, lengths = [(n_games + i) // num_envs for i in range(num_envs)], [0] * num_envs, [], []
    envs = make_envs(num_envs, seed)
    next_obs, _ = envs.reset(seed=seed)
    for _ in range(MAX_EVAL_STEPS):
        if counts == targets:
            break
        next_obs, _, _, _, infos = envs.step(policy(next_obs))
        for i, score, length in finished_games(infos):
            if counts[i] < targets[i]:
                counts[i] += 1
                scores.append(score)
                lengths.append(length)
    envs.close()
    return scores, lengths


class ScratchRun:
    """A from-scratch PPO run's folder, TensorBoard writer, game scores, timing and summary.

    :param script: the calling script's path (``__file__``), naming the run folder
    :param args: the script's flags (``timesteps``, ``n_envs``, ``num_steps``, ``eval_games``,
        ``gif_games``, ``gif_max_steps``, ``env``, ``seed``, ``loss``)
    :param speed: the speed levers, recorded in config.json and summary.json
    """

    def __init__(self, script: str | os.PathLike[str], args: argparse.Namespace, speed: SpeedLevers) -> None:
        self.args = args
        self.speed = speed
        self.run = Run.from_args(script, args, **speed.to_config())
        self.dir = self.run.dir
        self.writer = DescribedWriter(SummaryWriter(str(self.dir)))  # each tag's meaning beside its chart
        self.writer.add_text("hyperparameters", markdown_table(vars(args)))
        #: (score, length) of the last :data:`SCORE_WINDOW` whole training games
        self.recent_games: deque[tuple[float, int]] = deque(maxlen=SCORE_WINDOW)
        #: every whole training game's unclipped score, in order
        self.train_scores: list[float] = []
        self.progress = ProgressLine(args.timesteps, enabled=True)  # a line every tenth of the run
        self.global_step = 0
        self.iterations = 0
        self.first_iteration_seconds = 0.0
        self.model_path = self.dir / MODEL_FILE
        #: the backend of the envs the final evaluation played on (summary.json's ``eval_backend``)
        self.eval_backend: str | None = None
        self._started = time.perf_counter()

    def record_games(self, infos: dict[str, Any], global_step: int) -> None:
        """Keep and log the whole games that ended in this step (``game/score``, ``game/length``)."""
        self.global_step = global_step
        for _, score, length in finished_games(infos):
            self.recent_games.append((score, length))
            self.train_scores.append(score)
            self.writer.add_scalar("game/score", score, global_step)
            self.writer.add_scalar("game/length", length, global_step)

    def log(self, stats: dict[str, float], global_step: int) -> None:
        """One iteration's ``stats`` at env step ``global_step``, with SB3's fps and last-100-games means."""
        self.global_step = global_step
        seconds = time.perf_counter() - self._started
        self.iterations += 1
        if self.iterations == 1:
            self.first_iteration_seconds = seconds  # left out of the steady steps/s, like the benchmark
        stats = {**stats, "time/fps": int(global_step / seconds)}
        if self.recent_games:
            stats["rollout/ep_rew_mean"], stats["rollout/ep_len_mean"] = np.mean(self.recent_games, axis=0)
        for tag, value in stats.items():
            self.writer.add_scalar(tag, value, global_step)
        self.progress.update(global_step, self.train_scores)

    @contextmanager
    def training(self, model: torch.nn.Module) -> Iterator[None]:
        """Time the block as training; save ``model``'s weights when it ends, on Ctrl-C first.

        It first prints the steps and the wall time they should take here, as every training does.
        """
        speed = measured_speed(self.run.name, self.run.fast, self.run.logdir, exclude=self.dir)
        print(expected_time_line(self.args.timesteps, speed, self.dir,
                                 how=f"Ctrl-C saves the weights to {self.model_path} (no --resume here: the run "
                                     f"starts from scratch each time)."), flush=True)
        self._started = time.perf_counter()
        try:
            with self.run.training():
                yield
        except KeyboardInterrupt:
            torch.save(model.state_dict(), self.model_path)
            print(f"\ninterrupted at step {self.global_step}; weights saved to {self.model_path}", flush=True)
            raise
        finally:
            self.run.trained_steps = self.global_step
            self.writer.close()
        torch.save(model.state_dict(), self.model_path)

    def evaluate(self, model: torch.nn.Module, make_envs: VectorEnvFactory) -> tuple[list[float], list[int]]:
        """``--eval-games`` whole games (5 lives) of ``model`` (:func:`acting_policy`), unclipped scores; prints them.

        The backend of the envs ``make_envs`` built is kept for summary.json (``eval_backend``).
        """
        def recorded(num_envs: int, seed: int) -> Any:
            envs = make_envs(num_envs, seed)
            self.eval_backend = vector_env_backend(envs)
            return envs

        scores, lengths = [], []
        if self.args.eval_games:
            scores, lengths = evaluate_games(acting_policy(model, self.speed), recorded, self.args.eval_games,
                                             self.args.seed + EVAL_SEED_OFFSET)
        print(f"scores of {len(scores)} whole games:", scores)
        return scores, lengths

    def replay(self, model: torch.nn.Module, frame_stack: int) -> Path | None:
        """A gif of ``--gif-games`` squared games on the real screen (None with ``--gif-games 0``).

        SB3's AtariWrapper stack (:mod:`rlbreakout.render`) plays them: it keeps the RGB screen,
        which the C++ vector env does not.
        """
        if not self.args.gif_games:
            return None
        path, _ = record_gif(acting_policy(model, self.speed), self.dir / REPLAY_GIF, self.args.env, grid=self.args.gif_games,
                             seed=self.args.seed + EVAL_SEED_OFFSET, max_steps=self.args.gif_max_steps,
                             frame_stack=frame_stack)
        return path

    def finish(self, scores: list[float], lengths: list[int], gif_path: Path | None, **extra: Any) -> Path:
        """Write summary.json (steady steps/s without the first iteration's first-call costs); its path."""
        steps_per_iteration = self.args.n_envs * self.args.num_steps
        steady_seconds = self.run.train_seconds - self.first_iteration_seconds
        steady = (self.global_step - steps_per_iteration) / steady_seconds if self.iterations > 1 else None
        return self.run.finish(timesteps=self.global_step, scores=scores, model_path=self.model_path,
                               eval_lengths=lengths, gif_path=gif_path,
                               train_game_scores=self.train_scores[-SCORE_WINDOW:], n_envs=self.args.n_envs,
                               steps_per_second_after_first_iteration=steady, loss=self.args.loss,
                               **self.speed.to_config(), eval_backend=self.eval_backend, **extra)
