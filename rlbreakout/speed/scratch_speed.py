"""The speed levers of the from-scratch PPO (2.4, 2.5), kept out of the algorithm's way.

Why a module: 2.4 is the lesson (the nine Atari details, the loss, GAE, the update), and
``--backend ale_vector --precision bf16`` should not cost it a line of that story. Each
lever is one call here:

* **ale-py's C++ vector env** (:func:`make_ale_vector_envs`): the same Atari details as
  2.4's visible wrapper stack, applied in C++ threads. It speaks gymnasium's vector API
  (``step``) and envpool's asynchronous one (``send`` now, ``recv`` later), which 2.5 uses
  to step one half of the games while the network acts for the other half;
* **bf16 autocast** where the hardware has it (:meth:`SpeedLevers.autocast`), with uint8
  pixels scaled straight into bf16 in one pass (:func:`scale_pixels`);
* **fused Adam** (one kernel for all parameters: the same update rule);
* **threads from the free cores** (:mod:`rlbreakout.speed.threads`) and **glibc keeps freed
  memory** (:mod:`rlbreakout.speed.allocator`); channels_last weights on CUDA, and on a CPU
  where it measured faster;
* **torch.compile of the update's forward** (:meth:`SpeedLevers.prepare`) for runs long
  enough to pay for the compile, where it measured faster: the same rule as ``--fast``
  (:func:`rlbreakout.speed.fast.maybe_compile`); acting stays eager.

Same algorithm: none of these changes what PPO computes beyond bf16 rounding.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ale_py.vector_env import AtariVectorEnv

from rlbreakout.env_ids import BACKEND_CHOICES, ale_vector_unsupported_reason, check_env_id, env_settings
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_THREADS, whole
from rlbreakout.speed.allocator import keep_freed_memory
from rlbreakout.speed.fast import DEFAULT_N_EPOCHS, choose_levers, maybe_compile, training_minibatches
from rlbreakout.speed.hardware import FUSED_ADAM_DEVICES, PRECISION_CHOICES, resolve_device, resolve_precision
from rlbreakout.speed.measure import MEASURE_MAX_BATCH, lever_candidates, time_minibatch
from rlbreakout.speed.threads import configure_threads

#: Minibatch size of the layout measurement when the caller does not say: 2.4's (1024 / 4).
LAYOUT_BATCH_SIZE = 256


# %% The ALE vector env, in gymnasium's vector API
def vector_env_backend(envs: Any) -> str:
    """``ale_vector`` for ale-py's C++ vector env (under any wrappers), else ``classic``: what a run played on."""
    return "ale_vector" if isinstance(getattr(envs, "unwrapped", envs), AtariVectorEnv) else "classic"


class ClipRewardKeepScore(gym.vector.VectorWrapper):
    """Atari detail 5 for the ALE vector env, in Python, after adding up the unclipped score.

    ale-py could clip rewards itself, but then no one would see the real score. So its
    clipping is off; this wrapper sums the raw rewards per game and clips what PPO gets.
    A finished game is reported as 2.4's classic stack reports it (``final_info["episode"]``).
    ``send``/``recv`` are ale-py's asynchronous step, in two halves.
    """

    def __init__(self, env: Any, frames_per_action: int, frames_per_base_step: int) -> None:
        super().__init__(env)
        self.frames_per_action = frames_per_action
        self.frames_per_base_step = frames_per_base_step  # 1 for NoFrameskip ids, 4 for v5 (as Monitor counts)
        self.game_return = np.zeros(self.num_envs, dtype=np.float64)
        self.game_frames = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.game_return[:] = 0.0
        self.game_frames[:] = info["episode_frame_number"]
        return obs, info

    def send(self, actions: np.ndarray) -> None:
        """Start stepping every env with ``actions``; returns at once (C++ threads do the work)."""
        self.env.send(np.asarray(actions, dtype=np.int64))

    def recv(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Wait for the step :meth:`send` started; clipped rewards, the whole-game score in ``final_info``."""
        obs, reward, terminated, truncated, info = self.env.recv()
        self.game_return += reward
        frames = info["episode_frame_number"]
        # With life_loss_info a lost life is "terminated" too; only a game over makes ale-py
        # start a new game at once (same-step autoreset), which restarts its frame counter.
        game_over = (terminated | truncated) & (frames < self.game_frames)
        if game_over.any():
            lengths = (self.game_frames + self.frames_per_action) // self.frames_per_base_step
            info = {**info, "final_info": {"episode": {"r": np.where(game_over, self.game_return, 0.0),
                                                       "l": np.where(game_over, lengths, 0)},
                                           "_episode": game_over}}
            self.game_return[game_over] = 0.0
        self.game_frames = frames.astype(np.int64)
        return obs, np.sign(reward).astype(np.float32), terminated, truncated, info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        self.send(actions)
        return self.recv()


class StepAtRecv(gym.vector.VectorWrapper):
    """``send``/``recv`` for a vector env that only has ``step`` (2.4's classic stack): the whole
    step runs at ``recv``, in this thread, so nothing overlaps, but the same loop drives it."""

    def send(self, actions: np.ndarray) -> None:
        self.pending_actions = actions

    def recv(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        return self.env.step(self.pending_actions)


def with_send_recv(envs: gym.vector.VectorEnv) -> gym.vector.VectorEnv:
    """``envs`` itself when it can step asynchronously (the ALE vector env), else :class:`StepAtRecv`."""
    return envs if hasattr(envs, "send") and hasattr(envs, "recv") else StepAtRecv(envs)


def add_speed_flags(parser: argparse.ArgumentParser, *, backend: str = "classic", precision: str = "fp32") -> None:
    """The from-scratch PPO's speed flags: ``--backend``, ``--precision``, ``--torch-threads`` (2.5's defaults differ)."""
    speed = parser.add_argument_group("speed (rlbreakout/speed/scratch_speed.py)")
    speed.add_argument("--backend", choices=BACKEND_CHOICES, default=backend,
                       help="classic: gymnasium + SB3 wrappers (every detail visible); ale_vector: ale-py's C++ env")
    speed.add_argument("--precision", choices=PRECISION_CHOICES, default=precision,
                       help="bf16 autocast where the hardware has it (else fp32, with a warning), or fp32")
    speed.add_argument("--torch-threads", type=whole(0, MAX_THREADS), default=0, help="torch CPU threads (0: from the cores free now)")


def check_backend(env_id: str, backend: str) -> None:
    """One clear line when ``backend`` cannot play ``env_id`` (before any run folder exists)."""
    if backend not in BACKEND_CHOICES:
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_CHOICES)}.")
    check_env_id(env_id)
    reason = ale_vector_unsupported_reason(env_id) if backend == "ale_vector" else None
    if reason is not None:
        raise ConfigError(reason)


def make_ale_vector_envs(env_id: str, num_envs: int, *, ale_threads: int = 1, noop_max: int = 30,
                         screen_size: int = 84, frame_stack: int = 4) -> ClipRewardKeepScore:
    """``num_envs`` games in ale-py's C++ vector env with 2.4's Atari details; uint8 (n, 4, 84, 84)."""
    check_backend(env_id, "ale_vector")
    settings = env_settings(env_id)
    wrapper_skips = settings.wrapper_frame_skip > 1
    frames_per_action = settings.wrapper_frame_skip if wrapper_skips else int(settings.emulator_frameskip)
    frames_per_base_step = 1 if wrapper_skips else int(settings.emulator_frameskip)
    envs = AtariVectorEnv(
        gym.spec(env_id).kwargs["game"], num_envs, num_threads=max(1, min(ale_threads, num_envs)),
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        repeat_action_probability=settings.repeat_action_probability,
        full_action_space=settings.full_action_space, max_num_frames_per_episode=settings.max_num_frames_per_episode,
        noop_max=noop_max * frames_per_base_step,  # detail 1 (ale-py counts no-ops in frames)
        frameskip=frames_per_action, maxpool=wrapper_skips,  # detail 2
        episodic_life=False, life_loss_info=True,  # detail 3 (episodic_life=True would restart the game)
        use_fire_reset=True,  # detail 4 (at game start only: no FIRE after a lost life)
        reward_clipping=False,  # detail 5 happens in ClipRewardKeepScore, after the score is kept
        img_height=screen_size, img_width=screen_size, grayscale=True,  # detail 6
        stack_num=frame_stack,  # detail 7
    )
    return ClipRewardKeepScore(envs, frames_per_action, frames_per_base_step)


def finished_games(infos: dict[str, Any]) -> list[tuple[int, float, int]]:
    """(env index, unclipped score, length) of each whole game that ended in this step."""
    final = infos.get("final_info")
    if not final or "episode" not in final:
        return []  # no game over (a lost life ends an episode, not the game)
    return [(int(i), float(final["episode"]["r"][i]), int(final["episode"]["l"][i]))
            for i in np.flatnonzero(final["_episode"])]


# %% Precision, Adam, threads, allocator
def compute_dtype(device: torch.device) -> torch.dtype:
    """The dtype convolutions run in here: autocast's (bf16) inside an autocast block, else float32."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return torch.float32


def scale_pixels(obs: torch.Tensor, scale: float) -> torch.Tensor:
    """uint8 pixels times ``scale``, straight in the convolutions' dtype (bf16 under autocast):
    one pass over the batch instead of three (to float32, scale, autocast's copy to bf16)."""
    return obs.to(compute_dtype(obs.device)).mul_(scale)


@dataclass(frozen=True)
class SpeedLevers:
    """What ``--backend``, ``--precision`` and ``--torch-threads`` resolved to on this machine."""

    device: torch.device
    backend: str = "classic"
    precision: str = "fp32"
    keeps_freed_memory: bool = False
    threads: dict[str, Any] = field(default_factory=dict)
    #: channels_last conv weights: on CUDA always, on the CPU where it measured faster
    channels_last: bool = False
    #: seconds per training minibatch of each measured layout (empty when nothing was measured)
    layout_timings: dict[str, float] = field(default_factory=dict)
    #: the update's forward runs through torch.compile (see :meth:`prepare`)
    compile: bool = False
    #: seconds the measured compile took (None: not measured)
    compile_seconds: float | None = None

    @property
    def ale_threads(self) -> int:
        return int(self.threads.get("ale_threads", 1))

    @property
    def fused_adam(self) -> bool:
        """Adam's ``fused=`` keyword: one kernel for all parameters where torch has it."""
        return self.device.type in FUSED_ADAM_DEVICES

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast when the precision is bf16, else a block that changes nothing."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @contextlib.contextmanager
    def acting(self) -> Iterator[None]:
        """The rollout's network calls: no autograd bookkeeping, in the update's precision.

        Acting in the precision the update will score the actions in keeps PPO's ratio exact at
        the start of each update (an fp32 rollout with a bf16 update starts every update with a
        mean |log-prob difference| of about 0.005). It is also the faster choice on the CPU this
        was measured on: 2.4's network acting on uint8 frames, 2 threads, 2-core AMD EPYC with
        AVX-512-BF16, median of 6: batch 4 (2.5's half) 1.18 ms fp32 against 0.95 bf16, batch 8
        1.85 against 1.44. (An earlier version acted in fp32 on CPUs after a 2-core AMX Xeon
        measured 369 env steps/s that way against 346 in bf16; the ratio argument outweighs that.)
        """
        with torch.inference_mode(), self.autocast():
            yield

    def prepare(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move ``model`` to the device, with channels_last conv weights when that layout was chosen
        (the convolutions then run channels_last, whatever the input's layout); with
        :attr:`compile`, the update's ``get_action_and_value`` calls run compiled."""
        model.to(self.device)
        if self.channels_last or self.device.type == "cuda":
            model.to(memory_format=torch.channels_last)
        if self.compile:
            compile_update_path(model)
        return model

    def to_config(self) -> dict[str, Any]:
        """For config.json and summary.json."""
        return {"backend": self.backend, "precision": self.precision, "keeps_freed_memory": self.keeps_freed_memory,
                "torch_threads": self.threads.get("torch_threads"), "ale_threads": self.ale_threads,
                "free_cores": self.threads.get("free_cores"),
                "channels_last": self.channels_last, "compile": self.compile,
                "compile_seconds": None if self.compile_seconds is None else round(self.compile_seconds, 2),
                "layout_timings_ms": {label: round(1000 * t, 2) for label, t in self.layout_timings.items()}}


def overlap_pays(threads: dict[str, Any], n_envs: int) -> bool:
    """Whether 2.5's overlap can run the network and one half's games at the same time on cores
    of their own: torch's threads plus one half's ALE threads fit in the free cores.

    Without that the two thread pools share cores, and the overlap costs more than it hides:
    2.5 on a 2-core AMD EPYC (torch 2 threads, ALE 2), 16,384 steps, runs alternating:
    508 and 639 env steps/s overlapped against 653 and 668 without.
    """
    half_ale_threads = max(1, min(int(threads.get("ale_threads", 1)), n_envs // 2))
    return int(threads.get("torch_threads", 1)) + half_ale_threads <= int(threads.get("free_cores", 0))


def compile_update_path(model: torch.nn.Module) -> None:
    """Run ``model.get_action_and_value`` through torch.compile when the update calls it (an action
    given, autograd on); acting and evaluation (no action, inference mode) stay eager, since
    compiling the rollout's small batches did not pay (0_setup/README.md)."""
    eager = model.get_action_and_value
    compiled = torch.compile(eager)

    def get_action_and_value(obs: torch.Tensor, action: torch.Tensor | None = None) -> Any:
        if action is not None and torch.is_grad_enabled():
            return compiled(obs, action)
        return eager(obs, action)

    model.get_action_and_value = get_action_and_value  # type: ignore[method-assign]


def speed_levers(device: str, backend: str, precision: str, n_envs: int, torch_threads: int = 0, *,
                 measure_layout: bool = False, batch_size: int = LAYOUT_BATCH_SIZE, timesteps: int | None = None,
                 n_epochs: int = DEFAULT_N_EPOCHS) -> SpeedLevers:
    """Resolve the levers and apply the process-wide ones (torch threads, allocator); print one line.

    :param torch_threads: 0 picks them from the cores free now (:func:`rlbreakout.speed.threads.configure_threads`)
    :param measure_layout: time a few training minibatches in NCHW and channels_last (``--fast``'s
        measurement, rlbreakout/speed/measure.py) and keep the faster; NCHW wins ties, as stock; then,
        for a run of ``timesteps`` long enough, the winner compiled (:func:`rlbreakout.speed.fast.maybe_compile`)
    :param batch_size: the update's minibatch (measured up to :data:`rlbreakout.speed.measure.MEASURE_MAX_BATCH`)
    :param n_epochs: passes over each rollout (with ``timesteps``: the run's minibatches)
    """
    where = resolve_device(device)  # once; the questions below read it
    resolved = resolve_precision(precision, where)  # bf16 without the hardware: fp32, with a warning
    threads = configure_threads(n_envs, torch_threads=torch_threads or None, apply=where.type == "cpu")
    channels_last, timings, compiled, compile_seconds, notes = False, {}, False, None, []
    if measure_layout:
        batch = max(1, min(int(batch_size), MEASURE_MAX_BATCH))
        chosen, timings = choose_levers(lever_candidates(where, resolved),
                                        lambda levers: time_minibatch(levers, where, batch))
        chosen, compile_seconds = maybe_compile(chosen, timings, where, batch,
                                                training_minibatches(timesteps or 0, n_epochs, batch), notes)
        channels_last, compiled = chosen["channels_last"], chosen["compile"]
    for note in notes:
        print(note, flush=True)
    levers = SpeedLevers(where, backend, resolved, keep_freed_memory(), threads, channels_last, timings, compiled,
                         compile_seconds)
    layout = "channels_last" if channels_last or where.type == "cuda" else "NCHW"
    measured = f" (measured ms: {', '.join(f'{k} {1000 * v:.0f}' for k, v in timings.items())})" if timings else ""
    compile_text = ""
    if compiled:  # measured, or forced by RLBREAKOUT_COMPILE=1 (then the notes say so)
        compile_text = (", compiled update" if compile_seconds is None
                        else f", compiled update (compiling took {compile_seconds:.0f} s)")
    print(f"device {where}, backend {backend}, precision {resolved}, layout {layout}{compile_text}{measured}, "
          f"torch threads {threads['torch_threads']}, ALE threads {threads['ale_threads']} (free cores {threads['free_cores']} "
          f"of {threads['cores']})", flush=True)
    return levers
