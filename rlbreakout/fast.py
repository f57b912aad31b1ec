"""``--fast``: levers measured on the machine at hand, bf16 / channels_last policies, threads.

Why each lever (measured in ``0_setup/0.2_benchmark.py``, README "Performance"):

* **bf16 autocast** inside the features extractor: on CPUs with AVX-512-BF16 or AMX
  (and on CUDA GPUs) the Nature-CNN's convolutions run about twice as fast in bf16.
  The extractor returns float32, because SB3's rollout buffer and losses reject bf16,
  and only the extractor is autocast: the small heads, the losses and Adam stay float32.
* **uint8 images straight to bf16** (:class:`MixedPrecisionCnnPolicy`): SB3 makes each
  uint8 minibatch float32, divides it by 255, and autocast copies it to bf16 again;
  scaling the uint8 batch into bf16 in one pass gives the same values for less work
  (SB3 ``--fast`` 8,192 steps, alternating, medians of 3: 501 -> 599 env steps/s).
* **channels_last** (NHWC) conv weights and batches: cuDNN's bf16 kernels want them; on
  one CPU oneDNN gained from them, on another converting each batch cost more than it saved.
* So precision and layout are **measured, not assumed**: :func:`fast_settings` times a few
  training minibatches (forward, backward, Adam step) of each candidate, fp32 or bf16
  (where supported) x NCHW or channels_last, and keeps the fastest. fp32 NCHW is stock
  SB3's setting: another candidate is kept only if it measured faster. A resumed run passes
  its recorded choice back (``levers=``) and is not measured again.
* **torch.compile of the training step** (inductor): :class:`MixedPrecisionCnnPolicy`
  compiles ``evaluate_actions`` (and so its backward) when ``compile_training`` is set. It
  is a fifth measured candidate, on top of the fastest eager one, and only for runs long
  enough to pay for it: compiling takes 10-25 s on 2 cores, so it is tried only when the
  run's training minibatches take :data:`COMPILE_MIN_TRAINING_SECONDS` or more, and kept
  only when the seconds it saves over the whole run exceed the seconds it took to compile
  (:func:`compile_pays`). The run's own compile happens in its first update, inside its
  wall time and its steps/s. ``RLBREAKOUT_COMPILE=0`` turns the candidate off, ``=1``
  compiles whatever the run's length, without measuring (the parity runs in 0_setup/README.md
  use it); a machine where inductor cannot build (no C++ compiler on the CPU, no triton on a
  GPU) skips it with a note. Before any compiled step is used, its loss and gradients on one
  minibatch are checked against the eager step's (:func:`compiled_step_mismatch`): with
  ``ATEN_CPU_CAPABILITY=avx2`` on an AVX-512 EPYC the compiled step returned inf/NaN while
  eager was right, so that setting rules compile out, and any other mismatch is one note.
* **threads from free cores** (:mod:`rlbreakout.threads`) and **the allocator keeps freed
  memory** (:mod:`rlbreakout.allocator`).

Environment variable ``RLBREAKOUT_FORCE_NO_BF16=1``: bf16 counts as unsupported on every
device in this process (:func:`rlbreakout.hardware.bf16_supported`), as on a CPU without
AVX-512-BF16: bf16 is then never a candidate and ``--precision bf16`` falls back to fp32.
Use it to run the test suite down the fp32 branch on a machine that has bf16.

bf16 numerics: the extractor's outputs agree with fp32 about as closely as bf16 rounding
of the weights allows; that is not proof that learning is unchanged, which is why the
benchmark's README section reports same-seed parity runs.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN

from rlbreakout.allocator import keep_freed_memory
from rlbreakout.env_ids import (
    ALE_VECTOR_WRAPPERS,
    BACKEND_CHOICES,
    DEFAULT_ALE_THREADS,
    DEFAULT_SCREEN_SIZE,
    ale_vector_unsupported_reason,
)
from rlbreakout.errors import ConfigError
from rlbreakout.hardware import FUSED_ADAM_DEVICES, PRECISION_CHOICES, bf16_supported, device_type, resolve_precision
from rlbreakout.threads import configure_threads

#: uint8 pixel values run 0..255; images are divided by this to lie in [0, 1], as SB3 does.
PIXEL_MAX = 255.0
#: The Adam epsilon SB3's policies use for Atari PPO (torch's default is 1e-8).
SB3_ADAM_EPS = 1e-5
#: Stock SB3's precision, layout and eager training step: the reference every measured candidate must beat.
STOCK_LEVERS: dict[str, Any] = {"precision": "fp32", "channels_last": False, "compile": False}
#: The lever measurement: the run's own minibatch, capped so four candidates take ~3 s on 2 cores.
#: (At 128 the measurement chose bf16 NCHW on an AVX-512-BF16 EPYC, while channels_last was the
#: faster one at the zoo's 256, so the cap is the zoo's minibatch.)
MEASURE_MAX_BATCH = 256
MEASURE_WARMUP = 1
MEASURE_REPEATS = 2
#: torch.compile is tried only for runs whose training minibatches take this many seconds at the
#: eager winner's speed. On a 2-core EPYC (minibatch of 256) it cut fp32 steps by 16-35 % and left
#: bf16 ones unchanged, and a first compile costs 3-25 s, so a gain of ~10 % needs ~250 s of
#: minibatches to repay it; shorter runs (tests, the demo, 100k-step chapters) skip the measurement.
COMPILE_MIN_TRAINING_SECONDS = 250.0
#: Compiled minibatches timed after the compiling one (a compiled step is steadier than an eager one).
COMPILE_REPEATS = 3
#: ``RLBREAKOUT_COMPILE=0``: never compile in this process; ``=1``: always (where inductor can
#: build), unmeasured; unset: measured, for long runs (:func:`maybe_compile`).
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
#: The zoo's Atari minibatch and passes over each rollout, when the caller does not say.
DEFAULT_BATCH_SIZE = 256
DEFAULT_N_EPOCHS = 4


# %% The mixed-precision extractor and policy
class BF16NatureCNN(NatureCNN):
    """SB3's Nature-CNN under bf16 autocast and/or channels_last; same parameters as NatureCNN.

    Use it through :func:`cnn_policy_kwargs`, which also passes ``net_arch=[]``: SB3
    gives the plain Nature-CNN policy (no hidden MLP) only when the extractor class is
    *exactly* ``NatureCNN``; a subclass would silently get two 64-64 tanh heads.
    """

    def __init__(self, observation_space: gym.Space, features_dim: int = 512, normalized_image: bool = False, *,
                 bf16: bool = True, channels_last: bool = True) -> None:
        super().__init__(observation_space, features_dim, normalized_image)
        self.bf16 = bool(bf16)
        self.channels_last = bool(channels_last)
        self._weights_channels_last = False

    def _convert_weights(self) -> None:
        """Switch conv weights to channels_last, in place (the Parameter objects, and so the
        optimizer's references to them, stay the same).

        Done at the first forward, not in ``__init__``: SB3 initialises the weights after
        building the extractor, and its orthogonal init cannot write into channels_last
        tensors. Only 4-d tensors change layout; the flattened features keep NCHW order,
        so the weights stay interchangeable with the stock extractor's.
        """
        self.to(memory_format=torch.channels_last)
        self._weights_channels_last = True

    def prepare_layout(self) -> None:
        """Convert the conv weights to channels_last now, if this extractor uses that layout and has
        not yet: before torch.compile traces it (replacing Parameters cannot be traced)."""
        if self.channels_last and not self._weights_channels_last:
            self._convert_weights()

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Features of ``observations`` as float32.

        uint8 images (what :class:`MixedPrecisionCnnPolicy` hands over) are scaled to [0, 1]
        here, straight into the dtype the convolutions run in: one pass over the batch
        instead of SB3's three (to float32, divide by 255, autocast's copy to bf16), with
        the same values (the tests compare the two paths).
        """
        x = observations
        use_bf16 = self.bf16
        if x.dtype == torch.uint8:
            x = x.to(torch.bfloat16 if use_bf16 else torch.float32).div_(PIXEL_MAX)
        if self.channels_last and x.dim() == 4:
            self.prepare_layout()
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            features = super().forward(x)
        return features.float()


class MixedPrecisionCnnPolicy(ActorCriticCnnPolicy):
    """SB3's ``CnnPolicy`` that lets :class:`BF16NatureCNN` scale uint8 images itself.

    Stock SB3 turns each uint8 batch into float32 / 255 before the extractor, and autocast
    then copies it to bf16 again: three passes over every 256 x 4 x 84 x 84 minibatch, about
    a tenth of each ``--fast`` iteration here (0.21 of 2.0 s under cProfile). This policy hands
    the uint8 images over unscaled. Same parameters, same outputs (see the tests); any other
    case takes SB3's own path.

    ``compile_training=True`` runs :meth:`evaluate_actions`, the forward pass of PPO's update,
    through ``torch.compile`` (compiled at its first call, the run's first update); acting
    and evaluation stay eager. SB3 keeps the flag in a saved model's ``policy_kwargs``, so a
    resumed run compiles again; a policy saved alone (``policy.save``) loads eager.
    """

    def __init__(self, *args: Any, compile_training: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.compile_training = bool(compile_training)
        self._compiled_evaluate_actions: Callable[..., Any] | None = None
        # Decided once: SB3's is_image_space branches on numpy bounds, which torch.compile cannot trace.
        self._image_observations = (isinstance(self.observation_space, gym.spaces.Box)
                                    and is_image_space(self.observation_space))

    def evaluate_actions(  # type: ignore[override]
        self, obs: Any, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not self.compile_training:
            return super().evaluate_actions(obs, actions)
        if self._compiled_evaluate_actions is None:
            for extractor in {self.features_extractor, self.pi_features_extractor, self.vf_features_extractor}:
                if isinstance(extractor, BF16NatureCNN):
                    extractor.prepare_layout()
            self._compiled_evaluate_actions = torch.compile(super().evaluate_actions)
        return self._compiled_evaluate_actions(obs, actions)

    def extract_features(  # type: ignore[override]
        self, obs: Any, features_extractor: BaseFeaturesExtractor | None = None
    ) -> Any:
        extractor = self.features_extractor if features_extractor is None else features_extractor
        if self.share_features_extractor and self._scales_images_itself(obs, extractor):
            return extractor(obs)
        return super().extract_features(obs, features_extractor)

    def _scales_images_itself(self, obs: Any, extractor: BaseFeaturesExtractor) -> bool:
        return (self.normalize_images and self._image_observations and isinstance(extractor, BF16NatureCNN)
                and isinstance(obs, torch.Tensor) and obs.dtype == torch.uint8)


def policy_class(policy_kwargs: Mapping[str, Any]) -> type[ActorCriticCnnPolicy] | str:
    """The PPO policy for ``policy_kwargs``: :class:`MixedPrecisionCnnPolicy` for the
    mixed-precision extractor or a compiled training step, else SB3's ``"CnnPolicy"`` (so
    stock runs stay stock)."""
    if policy_kwargs.get("compile_training"):
        return MixedPrecisionCnnPolicy
    extractor = policy_kwargs.get("features_extractor_class")
    if isinstance(extractor, type) and issubclass(extractor, BF16NatureCNN):
        return MixedPrecisionCnnPolicy
    return "CnnPolicy"


def cnn_policy_kwargs(precision: str, *, channels_last: bool = False, compile_training: bool = False) -> dict[str, Any]:
    """``policy_kwargs`` for PPO's CNN policy with the same parameter shapes as stock.

    :param precision: ``bf16`` or ``fp32`` (pass it through :func:`resolve_precision` first)
    :param channels_last: NHWC weights and batches; ``fp32`` without it (or compile) returns ``{}`` (stock SB3)
    :param compile_training: ``torch.compile`` the update's forward (see :class:`MixedPrecisionCnnPolicy`)
    """
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISION_CHOICES)}.")
    if precision == "fp32" and not channels_last and not compile_training:
        return {}
    kwargs = {"features_extractor_class": BF16NatureCNN,
              "features_extractor_kwargs": {"bf16": precision == "bf16", "channels_last": bool(channels_last)},
              "net_arch": []}  # what SB3 gives exactly-NatureCNN; see BF16NatureCNN
    if compile_training:
        kwargs["compile_training"] = True
    return kwargs


def _run_policy_kwargs(levers: Mapping[str, Any], device: str, fused_adam: bool) -> dict[str, Any]:
    kwargs = cnn_policy_kwargs(levers["precision"], channels_last=bool(levers["channels_last"]),
                               compile_training=bool(levers.get("compile", False)))
    if fused_adam and device_type(device) in FUSED_ADAM_DEVICES:
        # One fused kernel per Adam step instead of a dozen small ops per tensor; same update rule.
        # SB3 passes eps=1e-5 only when optimizer_kwargs is left out, so it is repeated here.
        kwargs["optimizer_kwargs"] = {"eps": SB3_ADAM_EPS, "fused": True}
    return kwargs


# %% Measuring the levers
def lever_label(levers: Mapping[str, Any]) -> str:
    """``"bf16 channels_last"``, ``"fp32 NCHW compiled"``, ...: one candidate, readable."""
    label = f"{levers['precision']} {'channels_last' if levers['channels_last'] else 'NCHW'}"
    return f"{label} compiled" if levers.get("compile") else label


def lever_candidates(device: str, precision: str | None = None) -> list[dict[str, Any]]:
    """The eager candidates to measure, the reference first: stock fp32 NCHW (or ``precision``
    NCHW when the precision is fixed), then channels_last, then bf16 where :func:`bf16_supported`.
    (The compiled candidate is the eager winner compiled, see :func:`fast_settings`.)"""
    if precision is not None:
        precisions = [precision]
    else:
        precisions = ["fp32", *(["bf16"] if bf16_supported(device) else [])]
    return [{"precision": p, "channels_last": layout, "compile": False} for p in precisions for layout in (False, True)]


def compile_unavailable_reason(device: str) -> str | None:
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


def compiled_step_mismatch(levers: Mapping[str, Any], device: str, batch_size: int) -> str | None:
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


def training_minibatches(timesteps: int, n_epochs: int, batch_size: int) -> int:
    """How many minibatches PPO trains on in ``timesteps`` env steps (each sample seen ``n_epochs`` times)."""
    return max(0, int(timesteps)) * max(1, int(n_epochs)) // max(1, int(batch_size))


def compile_pays(eager_seconds: float, compiled_seconds: float, compile_seconds: float, minibatches: int) -> bool:
    """True when compiling saves more over the run's ``minibatches`` than the compile costs."""
    return (eager_seconds - compiled_seconds) * minibatches > compile_seconds


def measurement_policy(levers: Mapping[str, Any], device: str) -> ActorCriticCnnPolicy:
    """A fresh PPO CNN policy with ``levers`` (and fused Adam) on ``device``, as a ``--fast`` run builds it."""
    kwargs = _run_policy_kwargs(levers, device, fused_adam=True)
    chosen = policy_class(kwargs)
    cls = ActorCriticCnnPolicy if isinstance(chosen, str) else chosen
    target = device_type(device) if device == "auto" else device
    return cls(MEASURE_OBS_SPACE, MEASURE_ACTION_SPACE, lambda _: 2.5e-4, **kwargs).to(target)


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


def time_minibatch(levers: Mapping[str, Any], device: str, batch_size: int, *,
                   warmup: int = MEASURE_WARMUP, repeats: int = MEASURE_REPEATS) -> float:
    """Seconds of one PPO training minibatch (forward, losses, backward, Adam step) with ``levers``:
    the fastest of ``repeats`` after ``warmup``. Leaves torch's random state as it was."""
    return min(minibatch_seconds(levers, device, batch_size, warmup + repeats)[warmup:])


def time_compiled_minibatch(levers: Mapping[str, Any], device: str, batch_size: int, *,
                            repeats: int = COMPILE_REPEATS) -> tuple[float, float]:
    """(seconds the compile took, seconds of one compiled minibatch) for ``levers`` with ``compile``:
    the first minibatch compiles, the fastest of the next ``repeats`` is the compiled speed."""
    seconds = minibatch_seconds({**levers, "compile": True}, device, batch_size, 1 + repeats)
    steady = min(seconds[1:])
    return max(seconds[0] - steady, 0.0), steady


def minibatch_seconds(levers: Mapping[str, Any], device: str, batch_size: int, count: int) -> list[float]:
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


def choose_levers(candidates: Sequence[Mapping[str, Any]],
                  timer: Callable[[Mapping[str, Any]], float]) -> tuple[dict[str, Any], dict[str, float]]:
    """(the fastest candidate, seconds per minibatch by :func:`lever_label`).

    The first candidate is the reference: a later one wins only by being strictly faster.
    """
    timings = {lever_label(c): float(timer(c)) for c in candidates}
    best = candidates[0]
    for candidate in candidates[1:]:
        if timings[lever_label(candidate)] < timings[lever_label(best)]:
            best = candidate
    return {"precision": best["precision"], "channels_last": bool(best["channels_last"]),
            "compile": bool(best.get("compile", False))}, timings


# %% One call for the training scripts
@dataclass(frozen=True)
class SpeedSettings:
    """What ``--fast``, ``--precision`` and ``--backend`` resolved to (see :func:`fast_settings`)."""

    backend: str = "classic"
    precision: str = "fp32"
    channels_last: bool = False
    #: the update's forward runs through torch.compile (see :class:`MixedPrecisionCnnPolicy`)
    compile: bool = False
    #: for PPO's ``policy_kwargs`` (``{}``: stock SB3)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    #: torch threads set by ``--fast``; None: torch's default left alone (stock)
    torch_threads: int | None = None
    #: for ``make_env(..., ale_threads=...)``
    ale_threads: int = DEFAULT_ALE_THREADS
    keeps_freed_memory: bool = False
    notes: tuple[str, ...] = ()
    #: seconds per training minibatch of each measured candidate; empty when nothing was measured
    timings: dict[str, float] = field(default_factory=dict)
    #: the cores seen when the threads were chosen (``cores``, ``busy_cores``, ``free_cores``)
    cores: dict[str, Any] = field(default_factory=dict)
    #: seconds the measured torch.compile took (None: compile was not measured)
    compile_seconds: float | None = None

    @property
    def policy_class(self) -> type[ActorCriticCnnPolicy] | str:
        """``"CnnPolicy"`` or :class:`MixedPrecisionCnnPolicy`, to go with :attr:`policy_kwargs`."""
        return policy_class(self.policy_kwargs)

    @property
    def levers(self) -> dict[str, Any]:
        """The measured choice, to pass back as ``fast_settings(..., levers=...)`` on resume."""
        return {"precision": self.precision, "channels_last": self.channels_last, "compile": self.compile}

    def to_config(self) -> dict[str, Any]:
        """JSON-ready, for config.json; ``fast_settings(..., levers=<this dict>)`` reuses the choice."""
        return {"backend": self.backend, **self.levers, "torch_threads": self.torch_threads,
                "ale_threads": self.ale_threads, "keeps_freed_memory": self.keeps_freed_memory,
                "notes": list(self.notes), "timings_ms": {k: round(v * 1000, 2) for k, v in self.timings.items()},
                "compile_seconds": None if self.compile_seconds is None else round(self.compile_seconds, 2),
                "cores": dict(self.cores)}


def _choose_backend(fast: bool, backend: str | None, env_id: str | None, wrapper: str,
                    env_kwargs: dict[str, Any] | None, wrapper_kwargs: dict[str, Any] | None,
                    notes: list[str]) -> str:
    if backend is not None:
        if backend not in BACKEND_CHOICES:
            raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_CHOICES)}.")
        return backend
    if not fast:
        return "classic"
    if env_id is not None:
        reason = ale_vector_unsupported_reason(env_id, env_kwargs, wrapper_kwargs, wrapper=wrapper)
    else:
        reason = None if wrapper in ALE_VECTOR_WRAPPERS else f"the ale_vector backend does not do the {wrapper!r} wrapper"
    if reason is None:
        return "ale_vector"
    notes.append(f"note: --fast keeps the classic env backend: {reason}")
    return "classic"


def fast_settings(
    fast: bool,
    precision: str | None = None,
    backend: str | None = None,
    device: str = "cpu",
    *,
    env_id: str | None = None,
    wrapper: str = "atari",
    n_envs: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    levers: Mapping[str, Any] | None = None,
    verbose: bool = True,
    timesteps: int | None = None,
    n_epochs: int = DEFAULT_N_EPOCHS,
) -> SpeedSettings:
    """Turn ``--fast``, ``--precision`` and ``--backend`` into what a training script needs.

    Without ``fast``: stock (classic backend, fp32 NCHW, threads untouched) unless
    ``precision`` / ``backend`` say otherwise. With ``fast``: ale_vector where it
    reproduces the env (else classic, with a note), threads from the free cores, the
    allocator lever, and precision x layout measured (see :func:`choose_levers`) at
    ``batch_size`` (capped at :data:`MEASURE_MAX_BATCH`) on ``device``; then, for a run of
    ``timesteps`` long enough (:data:`COMPILE_MIN_TRAINING_SECONDS`), the winner compiled
    (:func:`maybe_compile`). An explicit ``precision`` wins over the measurement; ``levers``
    (a recorded choice, e.g. ``SpeedSettings.to_config()`` from config.json) skips it.

    Usage::

        speed = fast_settings(args.fast, args.precision, args.backend, device, env_id=args.env, n_envs=args.n_envs)
        venv = make_env(args.env, args.n_envs, backend=speed.backend, ale_threads=speed.ale_threads)
        model = PPO(speed.policy_class, venv, policy_kwargs=speed.policy_kwargs, ...)

    :param verbose: print the notes, the measured candidates and the choice
    :param timesteps: env steps the run will train (None: compile is not considered)
    :param n_epochs: PPO's passes over each rollout (with ``timesteps``: the run's minibatches)
    """
    notes: list[str] = []
    backend = _choose_backend(fast, backend, env_id, wrapper, env_kwargs, wrapper_kwargs, notes)
    explicit = resolve_precision(precision, device) if precision is not None else None
    if not fast:
        chosen = {"precision": explicit or "fp32", "channels_last": False, "compile": False}
        if verbose:
            for note in notes:
                print(note, flush=True)
        return SpeedSettings(backend=backend, policy_kwargs=_run_policy_kwargs(chosen, device, fused_adam=False),
                             notes=tuple(notes), **chosen)

    threads = configure_threads(n_envs)
    keeps_memory = keep_freed_memory()
    timings: dict[str, float] = {}
    compile_seconds = None
    if levers is not None:
        unavailable = compile_unavailable_reason(device) if levers.get("compile") else None
        if unavailable:
            notes.append(f"note: the recorded choice compiled the training step; not here: {unavailable}")
        chosen = {"precision": explicit or resolve_precision(str(levers["precision"]), device),
                  "channels_last": bool(levers["channels_last"]),
                  "compile": bool(levers.get("compile", False)) and unavailable is None}
        how = "recorded choice, not measured"
    else:
        batch = max(1, min(int(batch_size), MEASURE_MAX_BATCH))
        chosen, timings = choose_levers(lever_candidates(device, explicit),
                                        lambda c: time_minibatch(c, device, batch))
        minibatches = training_minibatches(timesteps or 0, n_epochs, batch)
        chosen, compile_seconds = maybe_compile(chosen, timings, device, batch, minibatches, notes)
        how = (f"ms per training minibatch of {batch} on {device}: "
               + ", ".join(f"{label} {seconds * 1000:.0f}" for label, seconds in timings.items()))
        if compile_seconds is not None:
            how += f"; compiling took {compile_seconds:.0f} s"
    if verbose:
        for note in notes:
            print(note, flush=True)
        print(f"fast: levers {lever_label(chosen)} ({how})", flush=True)
        print(f"fast: backend={backend} torch_threads={threads['torch_threads']} ale_threads={threads['ale_threads']} "
              f"(free cores {threads['free_cores']} of {threads['cores']}, busy {threads['busy_cores']}), "
              f"allocator keeps freed memory: {keeps_memory}", flush=True)
    return SpeedSettings(backend=backend, policy_kwargs=_run_policy_kwargs(chosen, device, fused_adam=True),
                         torch_threads=threads["torch_threads"], ale_threads=threads["ale_threads"],
                         keeps_freed_memory=keeps_memory, notes=tuple(notes), timings=timings,
                         cores={k: threads[k] for k in ("cores", "busy_cores", "free_cores")},
                         compile_seconds=compile_seconds, **chosen)


def maybe_compile(chosen: Mapping[str, Any], timings: dict[str, float], device: str, batch: int, minibatches: int,
                  notes: list[str]) -> tuple[dict[str, Any], float | None]:
    """(``chosen``, with ``compile`` where it pays; the compile's seconds, None if not measured).

    The eager winner is compiled and timed (its label + `` compiled`` joins ``timings``) only
    when the run's ``minibatches`` of ``batch`` take :data:`COMPILE_MIN_TRAINING_SECONDS` at the
    eager speed and inductor can build here; it is kept when :func:`compile_pays`. First the
    compiled step is checked against the eager one (:func:`compiled_step_mismatch`): a
    mismatch, like a compile that fails, is a note, and the eager choice stays.
    """
    eager = timings[lever_label(chosen)]
    forced = compile_forced()
    if forced is None and minibatches * eager < COMPILE_MIN_TRAINING_SECONDS:
        return dict(chosen), None
    unavailable = compile_unavailable_reason(device)
    if unavailable:
        if forced is not False:
            notes.append(f"note: --fast does not try torch.compile: {unavailable}")
        return dict(chosen), None
    try:
        started = time.perf_counter()
        mismatch = compiled_step_mismatch(chosen, device, batch)
        check_seconds = time.perf_counter() - started  # the cold compile, and one step each way
        if mismatch is None and not forced:
            timed_compile_seconds, compiled = time_compiled_minibatch(chosen, device, batch)
    except Exception as exc:  # inductor's failures have many types (compiler, codegen, backend)
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        notes.append(f"note: torch.compile failed here ({type(exc).__name__}: {first_line}); the step stays eager")
        return dict(chosen), None
    if mismatch is not None:
        notes.append(f"note: torch.compile is not used here: {mismatch}; the step stays eager")
        return dict(chosen), None
    if forced:
        notes.append(f"note: {COMPILE_ENV}=1: the training step is compiled (checked against eager), not timed")
        return {**chosen, "compile": True}, check_seconds
    compile_seconds = max(check_seconds, timed_compile_seconds)  # the check's compile is the cold one
    timings[lever_label({**chosen, "compile": True})] = compiled
    keep = compile_pays(eager, compiled, compile_seconds, minibatches)
    return {**chosen, "compile": keep}, compile_seconds
