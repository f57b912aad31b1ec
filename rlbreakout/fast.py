"""``--fast``: bf16 / channels_last policies and thread settings for small machines.

Why each lever (measured in ``0_setup/0.2_benchmark.py``, README "Performance"):

* **bf16 autocast** inside the features extractor: on CPUs with AVX-512-BF16 or AMX
  (and on CUDA GPUs) the Nature-CNN's convolutions run about twice as fast in bf16.
  The extractor returns float32, because SB3's rollout buffer and losses reject
  bf16, and only the extractor is autocast: the small action and value heads, the
  losses and Adam stay in float32.
* **uint8 images straight to bf16** (:class:`MixedPrecisionCnnPolicy`): SB3 makes each
  uint8 minibatch float32, divides it by 255, and autocast copies it to bf16 again;
  scaling the uint8 batch into bf16 in one pass gives the same values for less work
  (SB3 ``--fast`` 8,192 steps, alternating, medians of 3 in one throw-away script:
  501 -> 599 env steps/s).
* **channels_last** conv weights, on CUDA only: cuDNN's bf16 kernels want NHWC. On the
  CPU it measured slower (converting each batch cost more than the layout saved), so
  ``--fast`` leaves it off there; ``cnn_policy_kwargs(channels_last=True)`` still turns it on.
* **threads from free cores**: on a 2-core machine 2 torch threads + 2 ALE threads is
  best when the machine is quiet, but if another process holds a core, 2 torch
  threads collapse 5-10x while 1 holds steady. So the choice is made from the cores
  that are free *now* and printed: their busy time sampled from ``/proc/stat`` over a
  fraction of a second (the 1-minute load average is not "now": it still counts a
  process that ended a minute ago, such as the benchmark's previous run), falling back
  to the load average where ``/proc/stat`` does not exist.
* **the allocator keeps freed memory** (:mod:`rlbreakout.allocator`): glibc would hand
  each minibatch's multi-MB tensors back to the kernel and fault them in again.

bf16 numerics: the extractor's outputs agree with fp32 about as closely as bf16
rounding of the weights allows; that is not proof that learning is unchanged, which
is why the benchmark's README section reports same-seed parity runs.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from typing import Any, TypedDict

import gymnasium as gym
import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN

from rlbreakout.allocator import keep_freed_memory
from rlbreakout.errors import ConfigError

PRECISION_CHOICES: tuple[str, ...] = ("bf16", "fp32")
#: /proc/cpuinfo flags of x86 CPUs with native bf16 arithmetic (AVX-512-BF16, AMX).
CPU_BF16_FLAGS: frozenset[str] = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO_PATH = "/proc/cpuinfo"
#: Batches smaller than this skip autocast (run in fp32). 1: always bf16. Measured on the
#: 2-core AMD EPYC (AVX-512-BF16) with 1 torch thread, min of 15 interleaved trials: batch-8
#: rollout inference 5.5 ms bf16 vs 6.2 ms fp32 channels_last vs 6.6 ms stock (a tie within
#: noise: the Nature-CNN at batch 8 is ~150 MFLOP, compute- not overhead-bound), training
#: minibatch of 256 182-188 ms bf16 vs 336 ms fp32 channels_last vs 452 ms stock. So bf16
#: everywhere; the knob stays for machines where small-batch bf16 is slower.
DEFAULT_AUTOCAST_MIN_BATCH = 1
#: uint8 pixel values run 0..255; images are divided by this to lie in [0, 1], as SB3 does.
PIXEL_MAX = 255.0
#: More torch threads than this rarely help a Nature-CNN at batch 256 on CPU.
MAX_TORCH_THREADS = 8

_chosen_threads: dict[str, Any] = {}


# %% Hardware checks
def _cpu_flags(path: str = CPUINFO_PATH) -> set[str]:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _device_type(device: str) -> str:
    """``"cpu"``, ``"cuda"``, ...: the kind of ``device``, ``"auto"`` meaning CUDA where there is one."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device).type


def bf16_supported(device: str) -> bool:
    """True when ``device`` does bf16 arithmetic natively (not emulated, which is slower than fp32).

    CPU: the AVX-512-BF16 or AMX flag in /proc/cpuinfo (Linux), else torch's CPU
    capability string naming AMX. CUDA: ``torch.cuda.is_bf16_supported()``. Others: False.
    """
    kind = _device_type(device)
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind != "cpu":
        return False
    if _cpu_flags() & CPU_BF16_FLAGS:
        return True
    return "AMX" in str(torch.backends.cpu.get_cpu_capability()).upper()


def resolve_precision(precision: str, device: str) -> str:
    """``"bf16"`` or ``"fp32"``: what will really run on ``device``.

    Asking for bf16 on hardware without it prints one warning line and gives fp32,
    so a script never silently runs (slower) emulated bf16.
    """
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISION_CHOICES)}.")
    if precision == "bf16" and not bf16_supported(device):
        print(f"warning: precision bf16 needs a CPU with AVX-512-BF16/AMX or a bf16 CUDA GPU; "
              f"{device} has neither, so training runs in fp32.", file=sys.stderr, flush=True)
        return "fp32"
    return precision


# %% Mixed-precision features extractors
class MixedPrecisionMixin:
    """Wraps a features extractor's ``forward`` in bf16 autocast and channels_last, returns float32.

    Mix it in *before* the extractor class: ``class X(MixedPrecisionMixin, NatureCNN)``.
    """

    bf16: bool
    channels_last: bool
    autocast_min_batch: int

    def _setup_precision(self, *, bf16: bool, channels_last: bool, autocast_min_batch: int) -> None:
        self.bf16 = bool(bf16)
        self.channels_last = bool(channels_last)
        self.autocast_min_batch = int(autocast_min_batch)
        self._weights_channels_last = False

    def _convert_weights(self) -> None:
        """Switch conv weights to channels_last, in place (the Parameter objects, and so the
        optimizer's references to them, stay the same).

        Done at the first forward, not in ``__init__``: SB3 initialises the weights after
        building the extractor, and its orthogonal init cannot write into channels_last
        tensors. Only 4-d tensors change layout; the flattened features keep NCHW order,
        so the weights stay interchangeable with the stock extractor's.
        """
        self.to(memory_format=torch.channels_last)  # type: ignore[attr-defined]
        self._weights_channels_last = True

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """Features of ``observations`` as float32.

        uint8 images (what :class:`MixedPrecisionCnnPolicy` hands over) are scaled to [0, 1]
        here, straight into the dtype the convolutions run in: one pass over the batch
        instead of SB3's three (to float32, divide by 255, autocast's copy to bf16), with
        the same values (the tests compare the two paths).
        """
        x = observations
        use_bf16 = self.bf16 and x.shape[0] >= self.autocast_min_batch
        if x.dtype == torch.uint8:
            x = x.to(torch.bfloat16 if use_bf16 else torch.float32).div_(PIXEL_MAX)
        if self.channels_last and x.dim() == 4:
            if not self._weights_channels_last:
                self._convert_weights()
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            features = super().forward(x)  # type: ignore[misc]
        return features.float()


class BF16NatureCNN(MixedPrecisionMixin, NatureCNN):
    """SB3's Nature-CNN under bf16 autocast with channels_last weights; same parameters as NatureCNN.

    Use it through :func:`cnn_policy_kwargs`, which also passes ``net_arch=[]``: SB3
    gives the plain Nature-CNN policy (no hidden MLP) only when the extractor class is
    *exactly* ``NatureCNN``; a subclass would silently get two 64-64 tanh heads.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        features_dim: int = 512,
        normalized_image: bool = False,
        *,
        bf16: bool = True,
        channels_last: bool = True,
        autocast_min_batch: int = DEFAULT_AUTOCAST_MIN_BATCH,
    ) -> None:
        super().__init__(observation_space, features_dim, normalized_image)
        self._setup_precision(bf16=bf16, channels_last=channels_last, autocast_min_batch=autocast_min_batch)


class MixedPrecisionCnnPolicy(ActorCriticCnnPolicy):
    """SB3's ``CnnPolicy`` that lets a mixed-precision extractor scale uint8 images itself.

    Stock SB3 turns each uint8 batch into float32 / 255 before the extractor, and autocast
    then copies it to bf16 again: three passes over every 256 x 4 x 84 x 84 minibatch, about
    a tenth of each ``--fast`` iteration here (0.21 of 2.0 s under cProfile). This policy hands the uint8 images over
    unscaled and :class:`MixedPrecisionMixin` scales them into bf16 in one pass. Same
    parameters, same outputs (see the tests); any other case takes SB3's own path.
    """

    def extract_features(  # type: ignore[override]
        self, obs: Any, features_extractor: BaseFeaturesExtractor | None = None
    ) -> Any:
        extractor = self.features_extractor if features_extractor is None else features_extractor
        if self.share_features_extractor and self._scales_images_itself(obs, extractor):
            return extractor(obs)
        return super().extract_features(obs, features_extractor)

    def _scales_images_itself(self, obs: Any, extractor: BaseFeaturesExtractor) -> bool:
        return (self.normalize_images and isinstance(extractor, MixedPrecisionMixin)
                and isinstance(obs, torch.Tensor) and obs.dtype == torch.uint8
                and isinstance(self.observation_space, gym.spaces.Box) and is_image_space(self.observation_space))


def policy_class(policy_kwargs: dict[str, Any]) -> type[ActorCriticCnnPolicy] | str:
    """The PPO policy for ``policy_kwargs``: :class:`MixedPrecisionCnnPolicy` for a mixed-precision
    extractor, else SB3's ``"CnnPolicy"`` (so stock runs stay stock)."""
    extractor = policy_kwargs.get("features_extractor_class")
    if isinstance(extractor, type) and issubclass(extractor, MixedPrecisionMixin):
        return MixedPrecisionCnnPolicy
    return "CnnPolicy"


@functools.cache
def mixed_precision_extractor(base: type[BaseFeaturesExtractor]) -> type[BaseFeaturesExtractor]:
    """The mixed-precision twin of any features extractor class (e.g. chapter 3's aimbot extractor).

    The twin takes the base's arguments plus ``bf16``, ``channels_last`` and
    ``autocast_min_batch`` (keyword-only).
    """
    if base is NatureCNN:
        return BF16NatureCNN

    def __init__(self: Any, *args: Any, bf16: bool = True, channels_last: bool = True,
                 autocast_min_batch: int = DEFAULT_AUTOCAST_MIN_BATCH, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        self._setup_precision(bf16=bf16, channels_last=channels_last, autocast_min_batch=autocast_min_batch)

    return type(f"BF16{base.__name__}", (MixedPrecisionMixin, base), {"__init__": __init__, "__module__": __name__})


def cnn_policy_kwargs(
    precision: str,
    *,
    channels_last: bool | None = None,
    features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
    features_extractor_kwargs: dict[str, Any] | None = None,
    autocast_min_batch: int = DEFAULT_AUTOCAST_MIN_BATCH,
) -> dict[str, Any]:
    """``policy_kwargs`` for ``PPO("CnnPolicy", ...)`` with the same parameter shapes as stock.

    :param precision: ``bf16`` or ``fp32`` (pass it through :func:`resolve_precision` first)
    :param channels_last: default: on for bf16; ``fp32`` without it returns ``{}`` (stock SB3)
    :param features_extractor_class: the extractor to make mixed-precision (default Nature-CNN)
    """
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISION_CHOICES)}.")
    channels_last = precision == "bf16" if channels_last is None else channels_last
    extractor_kwargs = dict(features_extractor_kwargs or {})
    if precision == "fp32" and not channels_last:
        if features_extractor_class is NatureCNN and not extractor_kwargs:
            return {}
        return {"features_extractor_class": features_extractor_class, "features_extractor_kwargs": extractor_kwargs}
    kwargs: dict[str, Any] = {
        "features_extractor_class": mixed_precision_extractor(features_extractor_class),
        "features_extractor_kwargs": {**extractor_kwargs, "bf16": precision == "bf16",
                                      "channels_last": channels_last, "autocast_min_batch": autocast_min_batch},
    }
    if features_extractor_class is NatureCNN:
        kwargs["net_arch"] = []  # what SB3 gives exactly-NatureCNN; see BF16NatureCNN
    return kwargs


# %% Threads
PROC_STAT_PATH = "/proc/stat"
#: How long :func:`busy_cores` watches the cores: long enough for a few scheduler ticks
#: (10 ms each), short enough not to delay a script's start.
BUSY_SAMPLE_SECONDS = 0.25
#: /proc/stat columns that are not work: idle and iowait.
IDLE_COLUMNS = (3, 4)


def _cpu_jiffies(cpus: set[int], path: str = PROC_STAT_PATH) -> tuple[int, int] | None:
    """(idle, total) scheduler ticks of the given CPUs since boot, or None without /proc/stat."""
    try:
        with open(path, encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    idle = total = 0
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        ticks = [int(value) for value in fields[:8]]  # guest time is already inside user time
        idle += sum(ticks[column] for column in IDLE_COLUMNS)
        total += sum(ticks)
    return (idle, total) if total else None


def busy_cores(cpus: set[int] | None = None, sample_seconds: float = BUSY_SAMPLE_SECONDS,
               path: str = PROC_STAT_PATH) -> float | None:
    """How many of ``cpus`` (default: this process's) other work keeps busy now; None if unknown.

    Two /proc/stat readings ``sample_seconds`` apart; this process sleeps in between,
    so its own work is not counted.
    """
    cpus = cpus if cpus is not None else _affinity()
    before = _cpu_jiffies(cpus, path)
    time.sleep(sample_seconds)
    after = _cpu_jiffies(cpus, path)
    if before is None or after is None or after[1] <= before[1]:
        return None
    idle_share = (after[0] - before[0]) / (after[1] - before[1])
    return max(0.0, min(1.0, 1.0 - idle_share)) * len(cpus)


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def free_cores() -> tuple[int, float, int]:
    """(cores this process may use, cores busy with other work, cores free now; at least 1).

    "Busy" is sampled from /proc/stat (see :func:`busy_cores`); where that is not
    available it is the 1-minute load average.
    """
    cpus = _affinity()
    busy = busy_cores(cpus, path=PROC_STAT_PATH)
    if busy is None:
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    cores = len(cpus)
    return cores, float(busy), max(1, min(cores, cores - math.floor(busy + 0.5)))


def configure_threads(
    n_envs: int | None = None,
    *,
    torch_threads: int | None = None,
    ale_threads: int | None = None,
    apply: bool = True,
) -> dict[str, Any]:
    """Pick torch and ALE thread counts from the cores free now, apply torch's, return the choice.

    PPO alternates env stepping and training, so torch and ALE threads take turns on
    the same cores: both get the free cores (ALE at most one per env). Explicit
    counts win. ``make_ale_vector_env`` picks up the ALE count chosen here.
    """
    cores, busy, free = free_cores()
    chosen_torch = int(torch_threads) if torch_threads else min(free, MAX_TORCH_THREADS)
    chosen_ale = int(ale_threads) if ale_threads else free
    if n_envs:
        chosen_ale = min(chosen_ale, int(n_envs))
    if chosen_torch < 1 or chosen_ale < 1:
        raise ConfigError(f"thread counts must be >= 1, got torch {chosen_torch}, ALE {chosen_ale}.")
    if apply:
        torch.set_num_threads(chosen_torch)
    choice = {"cores": cores, "busy_cores": round(busy, 2), "free_cores": free,
              "torch_threads": chosen_torch, "ale_threads": chosen_ale}
    _chosen_threads.clear()
    _chosen_threads.update(choice)
    return choice


def chosen_ale_threads(n_envs: int) -> int:
    """ALE threads for a new vector env: the last :func:`configure_threads` choice, else the free cores."""
    threads = _chosen_threads.get("ale_threads") or free_cores()[2]
    return max(1, min(int(threads), int(n_envs)))


# %% One call for the training scripts
#: Devices with a fused Adam kernel in torch >= 2.4.
FUSED_ADAM_DEVICES = ("cpu", "cuda")
#: The Adam epsilon SB3's policies use for Atari PPO (torch's default is 1e-8).
SB3_ADAM_EPS = 1e-5


class FastSettings(TypedDict):
    """What ``--fast`` / ``--precision`` / ``--backend`` resolve to (see :func:`fast_settings`)."""

    backend: str
    precision: str
    policy: type[ActorCriticCnnPolicy] | str
    policy_kwargs: dict[str, Any]
    threads: dict[str, Any]
    keeps_freed_memory: bool
    notes: list[str]


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
    features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
    verbose: bool = True,
) -> FastSettings:
    """Turn ``--fast``, ``--precision`` and ``--backend`` into what a training script needs.

    ``precision`` / ``backend`` left ``None`` follow ``fast`` (bf16 + ale_vector when
    fast, fp32 + classic otherwise); explicit values win. With ``fast`` the ale_vector
    backend is used only where it reproduces the env (the "atari" wrapper, a fixed
    frameskip); otherwise the classic backend is kept and a note says why. Threads are
    configured only when fast, so stock runs stay stock.

    Usage::

        fs = fast_settings(args.fast, args.precision, args.backend, device, env_id=args.env, n_envs=args.n_envs)
        venv = make_env(args.env, args.n_envs, backend=fs["backend"], ...)
        model = PPO(fs["policy"], venv, policy_kwargs={**fs["policy_kwargs"], **other}, ...)

    :param verbose: print the notes and one line with the choice
    """
    from rlbreakout.envs import BACKEND_CHOICES

    notes: list[str] = []
    resolved_precision = resolve_precision(precision or ("bf16" if fast else "fp32"), device)
    if backend is None:
        backend = "classic"
        if fast:
            reason = ("the ale_vector backend only does the 'atari' wrapper" if wrapper != "atari" else None)
            if reason is None and env_id is not None:
                from rlbreakout.ale_vector import ale_vector_unsupported_reason

                reason = ale_vector_unsupported_reason(env_id, env_kwargs, wrapper_kwargs)
            if reason is None:
                backend = "ale_vector"
            else:
                notes.append(f"note: --fast keeps the classic env backend: {reason}")
    elif backend not in BACKEND_CHOICES:
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_CHOICES)}.")
    # channels_last only on CUDA: on this project's CPU (oneDNN, AVX-512-BF16) converting every
    # batch to NHWC cost more than the layout saved: SB3 --fast 8,192 steps, 2 torch threads,
    # alternating: 444 and 473 env steps/s without it, 384 and 429 with it.
    policy_kwargs = cnn_policy_kwargs(resolved_precision, channels_last=str(device).startswith("cuda"),
                                      features_extractor_class=features_extractor_class)
    if fast and _device_type(device) in FUSED_ADAM_DEVICES:
        # One fused kernel per Adam step instead of a dozen small ops per tensor; same update rule.
        # SB3 passes eps=1e-5 only when optimizer_kwargs is left out, so it is repeated here.
        policy_kwargs = {**policy_kwargs, "optimizer_kwargs": {"eps": SB3_ADAM_EPS, "fused": True}}
    threads = configure_threads(n_envs) if fast else {}
    keeps_memory = keep_freed_memory() if fast else False
    if verbose:
        for note in notes:
            print(note, flush=True)
        if fast:
            print(f"fast: backend={backend} precision={resolved_precision} torch_threads={threads['torch_threads']} "
                  f"ale_threads={threads['ale_threads']} (free cores {threads['free_cores']} of {threads['cores']}, "
                  f"busy {threads['busy_cores']}), allocator keeps freed memory: {keeps_memory}", flush=True)
    return {"backend": backend, "precision": resolved_precision, "policy": policy_class(policy_kwargs),
            "policy_kwargs": policy_kwargs,
            "threads": threads, "keeps_freed_memory": keeps_memory, "notes": notes}
