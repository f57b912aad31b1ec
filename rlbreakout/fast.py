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
#: Stock SB3's precision and layout: the reference every measured candidate must beat.
STOCK_LEVERS: dict[str, Any] = {"precision": "fp32", "channels_last": False}
#: The lever measurement: minibatch of the run, capped so four candidates take ~2 s on 2 cores.
MEASURE_MAX_BATCH = 128
MEASURE_WARMUP = 1
MEASURE_REPEATS = 2
#: Observations of the measured policy: 4 stacked 84x84 grey frames, Breakout's 4 actions.
MEASURE_OBS_SPACE = gym.spaces.Box(0, 255, (4, DEFAULT_SCREEN_SIZE, DEFAULT_SCREEN_SIZE), np.uint8)
MEASURE_ACTION_SPACE = gym.spaces.Discrete(4)
#: The zoo's Atari minibatch, measured when the caller does not say.
DEFAULT_BATCH_SIZE = 256


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
            if not self._weights_channels_last:
                self._convert_weights()
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
    """

    def extract_features(  # type: ignore[override]
        self, obs: Any, features_extractor: BaseFeaturesExtractor | None = None
    ) -> Any:
        extractor = self.features_extractor if features_extractor is None else features_extractor
        if self.share_features_extractor and self._scales_images_itself(obs, extractor):
            return extractor(obs)
        return super().extract_features(obs, features_extractor)

    def _scales_images_itself(self, obs: Any, extractor: BaseFeaturesExtractor) -> bool:
        return (self.normalize_images and isinstance(extractor, BF16NatureCNN)
                and isinstance(obs, torch.Tensor) and obs.dtype == torch.uint8
                and isinstance(self.observation_space, gym.spaces.Box) and is_image_space(self.observation_space))


def policy_class(policy_kwargs: Mapping[str, Any]) -> type[ActorCriticCnnPolicy] | str:
    """The PPO policy for ``policy_kwargs``: :class:`MixedPrecisionCnnPolicy` for the
    mixed-precision extractor, else SB3's ``"CnnPolicy"`` (so stock runs stay stock)."""
    extractor = policy_kwargs.get("features_extractor_class")
    if isinstance(extractor, type) and issubclass(extractor, BF16NatureCNN):
        return MixedPrecisionCnnPolicy
    return "CnnPolicy"


def cnn_policy_kwargs(precision: str, *, channels_last: bool = False) -> dict[str, Any]:
    """``policy_kwargs`` for PPO's CNN policy with the same parameter shapes as stock.

    :param precision: ``bf16`` or ``fp32`` (pass it through :func:`resolve_precision` first)
    :param channels_last: NHWC weights and batches; ``fp32`` without it returns ``{}`` (stock SB3)
    """
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISION_CHOICES)}.")
    if precision == "fp32" and not channels_last:
        return {}
    return {"features_extractor_class": BF16NatureCNN,
            "features_extractor_kwargs": {"bf16": precision == "bf16", "channels_last": bool(channels_last)},
            "net_arch": []}  # what SB3 gives exactly-NatureCNN; see BF16NatureCNN


def _run_policy_kwargs(levers: Mapping[str, Any], device: str, fused_adam: bool) -> dict[str, Any]:
    kwargs = cnn_policy_kwargs(levers["precision"], channels_last=bool(levers["channels_last"]))
    if fused_adam and device_type(device) in FUSED_ADAM_DEVICES:
        # One fused kernel per Adam step instead of a dozen small ops per tensor; same update rule.
        # SB3 passes eps=1e-5 only when optimizer_kwargs is left out, so it is repeated here.
        kwargs["optimizer_kwargs"] = {"eps": SB3_ADAM_EPS, "fused": True}
    return kwargs


# %% Measuring the levers
def lever_label(levers: Mapping[str, Any]) -> str:
    """``"bf16 channels_last"``, ``"fp32 NCHW"``, ...: one candidate, readable."""
    return f"{levers['precision']} {'channels_last' if levers['channels_last'] else 'NCHW'}"


def lever_candidates(device: str, precision: str | None = None) -> list[dict[str, Any]]:
    """The candidates to measure, the reference first: stock fp32 NCHW (or ``precision`` NCHW
    when the precision is fixed), then channels_last, then bf16 where :func:`bf16_supported`."""
    if precision is not None:
        precisions = [precision]
    else:
        precisions = ["fp32", *(["bf16"] if bf16_supported(device) else [])]
    return [{"precision": p, "channels_last": layout} for p in precisions for layout in (False, True)]


def measurement_policy(levers: Mapping[str, Any], device: str) -> ActorCriticCnnPolicy:
    """A fresh PPO CNN policy with ``levers`` (and fused Adam) on ``device``, as a ``--fast`` run builds it."""
    kwargs = _run_policy_kwargs(levers, device, fused_adam=True)
    chosen = policy_class(kwargs)
    cls = ActorCriticCnnPolicy if isinstance(chosen, str) else chosen
    target = device_type(device) if device == "auto" else device
    return cls(MEASURE_OBS_SPACE, MEASURE_ACTION_SPACE, lambda _: 2.5e-4, **kwargs).to(target)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_minibatch(levers: Mapping[str, Any], device: str, batch_size: int, *,
                   warmup: int = MEASURE_WARMUP, repeats: int = MEASURE_REPEATS) -> float:
    """Seconds of one PPO training minibatch (forward, losses, backward, Adam step) with ``levers``:
    the fastest of ``repeats`` after ``warmup``. Leaves torch's random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        policy = measurement_policy(levers, device)
        where = policy.device
        obs = torch.randint(0, 256, (batch_size, *MEASURE_OBS_SPACE.shape), dtype=torch.uint8, device=where)
        actions = torch.randint(0, int(MEASURE_ACTION_SPACE.n), (batch_size,), device=where)
        seconds = []
        for index in range(warmup + repeats):
            _synchronize(where)
            start = time.perf_counter()
            values, log_prob, entropy = policy.evaluate_actions(obs, actions)
            loss = -log_prob.mean() + 0.5 * values.pow(2).mean() - 0.01 * entropy.mean()
            policy.optimizer.zero_grad()
            loss.backward()
            policy.optimizer.step()
            _synchronize(where)
            if index >= warmup:
                seconds.append(time.perf_counter() - start)
    return min(seconds)


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
    return {"precision": best["precision"], "channels_last": bool(best["channels_last"])}, timings


# %% One call for the training scripts
@dataclass(frozen=True)
class SpeedSettings:
    """What ``--fast``, ``--precision`` and ``--backend`` resolved to (see :func:`fast_settings`)."""

    backend: str = "classic"
    precision: str = "fp32"
    channels_last: bool = False
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

    @property
    def policy_class(self) -> type[ActorCriticCnnPolicy] | str:
        """``"CnnPolicy"`` or :class:`MixedPrecisionCnnPolicy`, to go with :attr:`policy_kwargs`."""
        return policy_class(self.policy_kwargs)

    @property
    def levers(self) -> dict[str, Any]:
        """The measured choice, to pass back as ``fast_settings(..., levers=...)`` on resume."""
        return {"precision": self.precision, "channels_last": self.channels_last}

    def to_config(self) -> dict[str, Any]:
        """JSON-ready, for config.json; ``fast_settings(..., levers=<this dict>)`` reuses the choice."""
        return {"backend": self.backend, **self.levers, "torch_threads": self.torch_threads,
                "ale_threads": self.ale_threads, "keeps_freed_memory": self.keeps_freed_memory,
                "notes": list(self.notes), "timings_ms": {k: round(v * 1000, 2) for k, v in self.timings.items()},
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
    reason = "the ale_vector backend only does the 'atari' wrapper" if wrapper != "atari" else None
    if reason is None and env_id is not None:
        reason = ale_vector_unsupported_reason(env_id, env_kwargs, wrapper_kwargs)
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
) -> SpeedSettings:
    """Turn ``--fast``, ``--precision`` and ``--backend`` into what a training script needs.

    Without ``fast``: stock (classic backend, fp32 NCHW, threads untouched) unless
    ``precision`` / ``backend`` say otherwise. With ``fast``: ale_vector where it
    reproduces the env (else classic, with a note), threads from the free cores, the
    allocator lever, and precision x layout measured (see :func:`choose_levers`) at
    ``batch_size`` (capped at :data:`MEASURE_MAX_BATCH`) on ``device``. An explicit
    ``precision`` wins over the measurement; ``levers`` (a recorded choice, e.g.
    ``SpeedSettings.to_config()`` from config.json) skips it.

    Usage::

        speed = fast_settings(args.fast, args.precision, args.backend, device, env_id=args.env, n_envs=args.n_envs)
        venv = make_env(args.env, args.n_envs, backend=speed.backend, ale_threads=speed.ale_threads)
        model = PPO(speed.policy_class, venv, policy_kwargs=speed.policy_kwargs, ...)

    :param verbose: print the notes, the measured candidates and the choice
    """
    notes: list[str] = []
    backend = _choose_backend(fast, backend, env_id, wrapper, env_kwargs, wrapper_kwargs, notes)
    explicit = resolve_precision(precision, device) if precision is not None else None
    if not fast:
        chosen = {"precision": explicit or "fp32", "channels_last": False}
        if verbose:
            for note in notes:
                print(note, flush=True)
        return SpeedSettings(backend=backend, policy_kwargs=_run_policy_kwargs(chosen, device, fused_adam=False),
                             notes=tuple(notes), **chosen)

    threads = configure_threads(n_envs)
    keeps_memory = keep_freed_memory()
    timings: dict[str, float] = {}
    if levers is not None:
        chosen = {"precision": explicit or resolve_precision(str(levers["precision"]), device),
                  "channels_last": bool(levers["channels_last"])}
        how = "recorded choice, not measured"
    else:
        batch = max(1, min(int(batch_size), MEASURE_MAX_BATCH))
        chosen, timings = choose_levers(lever_candidates(device, explicit),
                                        lambda c: time_minibatch(c, device, batch))
        how = (f"ms per training minibatch of {batch} on {device}: "
               + ", ".join(f"{label} {seconds * 1000:.0f}" for label, seconds in timings.items()))
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
                         cores={k: threads[k] for k in ("cores", "busy_cores", "free_cores")}, **chosen)
