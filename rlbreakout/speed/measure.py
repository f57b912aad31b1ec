"""What ``--fast`` measures on the machine at hand: the timing of each candidate training step.

A candidate is a precision (fp32, or bf16 where :func:`~rlbreakout.speed.hardware.bf16_supported`)
and a memory layout (NCHW or channels_last), eager or compiled. :func:`time_minibatch` times a
few training minibatches (forward, backward, Adam step) of a fresh policy with a candidate's
levers, on random images of Breakout's shape; :mod:`rlbreakout.speed.fast` chooses from the
timings.

torch.compile (inductor) is measured only where it can build (:func:`compile_unavailable_reason`:
a C++ compiler on the CPU, triton on a GPU), and before any compiled step is used, its loss and
gradients on one minibatch are checked against the eager step's (:func:`compiled_step_mismatch`):
with ``ATEN_CPU_CAPABILITY=avx2`` on an AVX-512 EPYC the compiled step returned inf/NaN while
eager was right, so that setting rules compile out. ``RLBREAKOUT_COMPILE=0`` turns the
candidate off, ``=1`` compiles whatever the run's length, without measuring
(:func:`compile_forced`).

Every function here takes the device already resolved (a ``torch.device``, see
:func:`~rlbreakout.speed.hardware.resolve_device`); a name such as ``"cpu"`` works too.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import time
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy

from rlbreakout.env_ids import DEFAULT_SCREEN_SIZE
from rlbreakout.errors import ConfigError
from rlbreakout.speed.hardware import bf16_supported, device_type, resolve_device
from rlbreakout.speed.policies import policy_class, run_policy_kwargs

#: The lever measurement: the run's own minibatch, capped so four candidates take ~3 s on 2 cores.
#: (At 128 the measurement chose bf16 NCHW on an AVX-512-BF16 EPYC, while channels_last was the
#: faster one at the zoo's 256, so the cap is the zoo's minibatch.)
MEASURE_MAX_BATCH = 256
MEASURE_WARMUP = 1
MEASURE_REPEATS = 2
#: Compiled minibatches timed after the compiling one (a compiled step is steadier than an eager one).
COMPILE_REPEATS = 3
#: ``RLBREAKOUT_COMPILE=0``: never compile in this process; ``=1``: always (where inductor can
#: build), unmeasured; unset: measured, for long runs (:func:`rlbreakout.speed.fast.maybe_compile`).
COMPILE_ENV = "RLBREAKOUT_COMPILE"
#: The compilers inductor can build its CPU kernels with.
CPU_COMPILERS = ("cc", "gcc", "g++", "clang", "clang++", "cl")
#: Restricts torch's own kernels (e.g. to AVX2); inductor's compiled step gave inf/NaN under it.
ATEN_CAPABILITY_ENV = "ATEN_CPU_CAPABILITY"
#: How far the compiled step's loss may sit from the eager one's on the check minibatch (relative):
#: same precision, other kernels, so rounding only; inf, NaN or a wrong graph are far outside.
COMPILE_LOSS_RELATIVE_TOLERANCE = 0.01
#: Observations of the measured policy: 4 stacked 84x84 grey frames, Breakout's 4 actions.
MEASURE_OBS_SPACE = gym.spaces.Box(0, 255, (4, DEFAULT_SCREEN_SIZE, DEFAULT_SCREEN_SIZE), np.uint8)
MEASURE_ACTION_SPACE = gym.spaces.Discrete(4)


def lever_label(levers: Mapping[str, Any]) -> str:
    """``"bf16 channels_last"``, ``"fp32 NCHW compiled"``, ...: one candidate, readable."""
    label = f"{levers['precision']} {'channels_last' if levers['channels_last'] else 'NCHW'}"
    return f"{label} compiled" if levers.get("compile") else label


def lever_candidates(device: torch.device | str, precision: str | None = None) -> list[dict[str, Any]]:
    """The eager candidates to measure, the reference first: stock fp32 NCHW (or ``precision``
    NCHW when the precision is fixed), then channels_last, then bf16 where :func:`~rlbreakout.speed.hardware.bf16_supported`.
    (The compiled candidate is the eager winner compiled, see :func:`rlbreakout.speed.fast.fast_settings`.)"""
    if precision is not None:
        precisions = [precision]
    else:
        precisions = ["fp32", *(["bf16"] if bf16_supported(device) else [])]
    return [{"precision": p, "channels_last": layout, "compile": False} for p in precisions for layout in (False, True)]


def compile_unavailable_reason(device: torch.device | str) -> str | None:
    """Why torch.compile is not tried here (None: it is): turned off by :data:`COMPILE_ENV` ``=0``,
    or inductor has nothing to build with (a C++ compiler for the CPU, triton for a GPU)."""
    if compile_forced() is False:
        return f"{COMPILE_ENV}=0"
    if device_type(device) == "cuda":
        return None if importlib.util.find_spec("triton") else "triton is not installed (inductor's GPU kernels need it)"
    if not any(shutil.which(name) for name in CPU_COMPILERS):
        return "no C++ compiler on PATH (inductor builds its CPU kernels with one)"
    if os.environ.get(ATEN_CAPABILITY_ENV):
        return (f"{ATEN_CAPABILITY_ENV}={os.environ[ATEN_CAPABILITY_ENV]} restricts torch's kernels, and the compiled "
                f"step gave inf/NaN under it")
    return None


def compiled_step_mismatch(levers: Mapping[str, Any], device: torch.device | str, batch_size: int) -> str | None:
    """Why the compiled training step cannot be trusted here (None: it computes what eager does).

    One minibatch, the same weights: the compiled step's loss must be finite and within
    :data:`COMPILE_LOSS_RELATIVE_TOLERANCE` of the eager step's, its gradients finite.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        compiled = measurement_policy({**levers, "compile": True}, device)
        eager = measurement_policy({**levers, "compile": False}, device)
        eager.load_state_dict(compiled.state_dict())
        obs, actions = random_minibatch(batch_size, compiled.device)
        results = []
        for policy in (eager, compiled):
            loss = ppo_shaped_loss(policy, obs, actions)
            loss.backward()
            finite = all(bool(torch.isfinite(p.grad).all()) for p in policy.parameters() if p.grad is not None)
            results.append((float(loss.detach()), finite))
    (eager_loss, _), (compiled_loss, gradients_finite) = results
    if not math.isfinite(compiled_loss) or not gradients_finite:
        return f"the compiled step gave a non-finite loss or gradient (loss {compiled_loss}, eager {eager_loss:.5g})"
    if abs(compiled_loss - eager_loss) > COMPILE_LOSS_RELATIVE_TOLERANCE * max(abs(eager_loss), 1e-6):
        return f"the compiled step's loss {compiled_loss:.5g} differs from the eager step's {eager_loss:.5g}"
    return None


def compile_forced() -> bool | None:
    """:data:`COMPILE_ENV`: True (``1``) always compile, False (``0``) never, None (unset) measure."""
    value = os.environ.get(COMPILE_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise ConfigError(f"{COMPILE_ENV}={value!r} is not understood; set it to 1 (always compile the training "
                          f"step), 0 (never), or leave it unset (measured for long runs).")
    return None if value == "" else value == "1"


def measurement_policy(levers: Mapping[str, Any], device: torch.device | str) -> ActorCriticCnnPolicy:
    """A fresh PPO CNN policy with ``levers`` (and fused Adam) on ``device``, as a ``--fast`` run builds it."""
    kwargs = run_policy_kwargs(levers, device, fused_adam=True)
    chosen = policy_class(kwargs)
    cls = ActorCriticCnnPolicy if isinstance(chosen, str) else chosen
    return cls(MEASURE_OBS_SPACE, MEASURE_ACTION_SPACE, lambda _: 2.5e-4, **kwargs).to(resolve_device(device))


def random_minibatch(batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 observations, actions) of a random minibatch in the measured policy's spaces."""
    obs = torch.randint(0, 256, (batch_size, *MEASURE_OBS_SPACE.shape), dtype=torch.uint8, device=device)
    actions = torch.randint(0, int(MEASURE_ACTION_SPACE.n), (batch_size,), device=device)
    return obs, actions


def ppo_shaped_loss(policy: ActorCriticCnnPolicy, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """A loss with PPO's parts (policy, value, entropy terms) for measuring and checking a step."""
    values, log_prob, entropy = policy.evaluate_actions(obs, actions)
    return -log_prob.mean() + 0.5 * values.pow(2).mean() - 0.01 * entropy.mean()


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_minibatch(levers: Mapping[str, Any], device: torch.device | str, batch_size: int, *,
                   warmup: int = MEASURE_WARMUP, repeats: int = MEASURE_REPEATS) -> float:
    """Seconds of one PPO training minibatch (forward, losses, backward, Adam step) with ``levers``:
    the fastest of ``repeats`` after ``warmup``. Leaves torch's random state as it was."""
    return min(minibatch_seconds(levers, device, batch_size, warmup + repeats)[warmup:])


def time_compiled_minibatch(levers: Mapping[str, Any], device: torch.device | str, batch_size: int, *,
                            repeats: int = COMPILE_REPEATS) -> tuple[float, float]:
    """(seconds the compile took, seconds of one compiled minibatch) for ``levers`` with ``compile``:
    the first minibatch compiles, the fastest of the next ``repeats`` is the compiled speed."""
    seconds = minibatch_seconds({**levers, "compile": True}, device, batch_size, 1 + repeats)
    steady = min(seconds[1:])
    return max(seconds[0] - steady, 0.0), steady


def minibatch_seconds(levers: Mapping[str, Any], device: torch.device | str, batch_size: int, count: int) -> list[float]:
    """Seconds of each of ``count`` PPO training minibatches in a row on a fresh policy with ``levers``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        policy = measurement_policy(levers, device)
        where = policy.device
        obs, actions = random_minibatch(batch_size, where)
        seconds = []
        for _ in range(count):
            _synchronize(where)
            start = time.perf_counter()
            loss = ppo_shaped_loss(policy, obs, actions)
            policy.optimizer.zero_grad()
            loss.backward()
            policy.optimizer.step()
            _synchronize(where)
            seconds.append(time.perf_counter() - start)
    return seconds
