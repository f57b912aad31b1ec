"""``--fast``: what is chosen, from what was measured, in one call for the training scripts.

Start here in the speed wing. :func:`fast_settings` turns ``--fast``, ``--precision`` and
``--backend`` into a :class:`SpeedSettings`: the env backend, the threads, the allocator, and
the network's levers, chosen from timings taken on the machine at hand. Three modules keep
three questions apart:

* :mod:`rlbreakout.speed.measure`: how long each candidate training step takes here;
* this module: which candidate the run gets, and whether compiling pays;
* :mod:`rlbreakout.speed.policies`: the bf16 / channels_last policies the choice builds (and why
  each lever helps).

How the choice is made:

* Precision and layout are **measured, not assumed**: each candidate, fp32 or bf16 (where
  supported) x NCHW or channels_last, is timed for a few training minibatches and the
  fastest is kept. fp32 NCHW is stock SB3's setting: another candidate is kept only if it
  measured faster. A resumed run passes its recorded choice back (``levers=``) and is not
  measured again.
* **torch.compile of the training step** is a fifth candidate, on top of the fastest eager
  one, and only for runs long enough to pay for it: compiling takes 10-25 s on 2 cores, so it
  is tried only when the run's training minibatches take :data:`COMPILE_MIN_TRAINING_SECONDS`
  or more, and kept only when the seconds it saves over the whole run exceed the seconds it
  took to compile (:func:`compile_pays`). The run's own compile happens in its first update,
  inside its wall time and its steps/s. ``RLBREAKOUT_COMPILE=0`` turns the candidate off,
  ``=1`` compiles whatever the run's length, without measuring (the parity runs in
  0_setup/README.md use it); a compiled step that does not match the eager one is one note.
* **threads from free cores** (:mod:`rlbreakout.speed.threads`) and **the allocator keeps freed
  memory** (:mod:`rlbreakout.speed.allocator`).
* The device is resolved once, at the top of :func:`fast_settings`
  (:func:`~rlbreakout.speed.hardware.resolve_device`), and the resolved ``torch.device`` is
  what every question below it receives.

Environment variable ``RLBREAKOUT_FORCE_NO_BF16=1``: bf16 counts as unsupported on every
device in this process (:func:`rlbreakout.speed.hardware.bf16_supported`), as on a CPU without
AVX-512-BF16: bf16 is then never a candidate and ``--precision bf16`` falls back to fp32.
Use it to run the test suite down the fp32 branch on a machine that has bf16.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy

from rlbreakout.env_ids import (
    ALE_VECTOR_WRAPPERS,
    BACKEND_CHOICES,
    BACKEND_LABELS,
    DEFAULT_ALE_THREADS,
    EVAL_BACKEND,
    ale_vector_unsupported_reason,
)
from rlbreakout.errors import ConfigError
from rlbreakout.speed.allocator import keep_freed_memory
from rlbreakout.speed.hardware import resolve_device, resolve_precision
from rlbreakout.speed.measure import (
    COMPILE_ENV,
    MEASURE_MAX_BATCH,
    compile_forced,
    compile_unavailable_reason,
    compiled_step_mismatch,
    lever_candidates,
    lever_label,
    time_compiled_minibatch,
    time_minibatch,
)
from rlbreakout.speed.policies import policy_class, run_policy_kwargs
from rlbreakout.speed.threads import configure_threads

#: Stock SB3's precision, layout and eager training step: the reference every measured candidate must beat.
STOCK_LEVERS: dict[str, Any] = {"precision": "fp32", "channels_last": False, "compile": False}
#: torch.compile is tried only for runs whose training minibatches take this many seconds at the
#: eager winner's speed. On a 2-core EPYC (minibatch of 256) it cut fp32 steps by 16-35 % and left
#: bf16 ones unchanged, and a first compile costs 3-25 s, so a gain of ~10 % needs ~250 s of
#: minibatches to repay it; shorter runs (tests, the demo, 100k-step chapters) skip the measurement.
COMPILE_MIN_TRAINING_SECONDS = 250.0
#: The zoo's Atari minibatch and passes over each rollout, when the caller does not say.
DEFAULT_BATCH_SIZE = 256
DEFAULT_N_EPOCHS = 4


def training_minibatches(timesteps: int, n_epochs: int, batch_size: int) -> int:
    """How many minibatches PPO trains on in ``timesteps`` env steps (each sample seen ``n_epochs`` times)."""
    return max(0, int(timesteps)) * max(1, int(n_epochs)) // max(1, int(batch_size))


def compile_pays(eager_seconds: float, compiled_seconds: float, compile_seconds: float, minibatches: int) -> bool:
    """True when compiling saves more over the run's ``minibatches`` than the compile costs."""
    return (eager_seconds - compiled_seconds) * minibatches > compile_seconds


def choose_levers(candidates: Sequence[Mapping[str, Any]],
                  timer: Callable[[Mapping[str, Any]], float]) -> tuple[dict[str, Any], dict[str, float]]:
    """(the fastest candidate, seconds per minibatch by :func:`~rlbreakout.speed.measure.lever_label`).

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
    #: the update's forward runs through torch.compile (see :class:`~rlbreakout.speed.policies.MixedPrecisionCnnPolicy`)
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
        """``"CnnPolicy"`` or :class:`~rlbreakout.speed.policies.MixedPrecisionCnnPolicy`, to go with :attr:`policy_kwargs`."""
        return policy_class(self.policy_kwargs)

    @property
    def levers(self) -> dict[str, Any]:
        """The measured choice, to pass back as ``fast_settings(..., levers=...)`` on resume."""
        return {"precision": self.precision, "channels_last": self.channels_last, "compile": self.compile}

    def to_config(self) -> dict[str, Any]:
        """JSON-ready, for config.json; ``fast_settings(..., levers=<this dict>)`` reuses the choice."""
        return {"backend": self.backend, "eval_backend": EVAL_BACKEND, **self.levers, "torch_threads": self.torch_threads,
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
    device: str | torch.device = "cpu",
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
    ``batch_size`` (capped at :data:`~rlbreakout.speed.measure.MEASURE_MAX_BATCH`) on ``device`` (resolved once, here);
    then, for a run of ``timesteps`` long enough (:data:`COMPILE_MIN_TRAINING_SECONDS`), the winner compiled
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
    where = resolve_device(device)  # resolved once; everything below is handed the result
    notes: list[str] = []
    backend = _choose_backend(fast, backend, env_id, wrapper, env_kwargs, wrapper_kwargs, notes)
    if verbose and fast:  # first, before any measuring: what the games will run on
        print(f"fast: env backend {backend} ({BACKEND_LABELS[backend]}), recorded in config.json and summary.json; "
              f"evaluation plays on the {BACKEND_LABELS[EVAL_BACKEND]}", flush=True)
    explicit = resolve_precision(precision, where) if precision is not None else None
    if not fast:
        chosen = {"precision": explicit or "fp32", "channels_last": False, "compile": False}
        if verbose:
            for note in notes:
                print(note, flush=True)
        return SpeedSettings(backend=backend, policy_kwargs=run_policy_kwargs(chosen, where, fused_adam=False),
                             notes=tuple(notes), **chosen)

    threads = configure_threads(n_envs)
    keeps_memory = keep_freed_memory()
    timings: dict[str, float] = {}
    compile_seconds = None
    if levers is not None:
        unavailable = compile_unavailable_reason(where) if levers.get("compile") else None
        if unavailable:
            notes.append(f"note: the recorded choice compiled the training step; not here: {unavailable}")
        chosen = {"precision": explicit or resolve_precision(str(levers["precision"]), where),
                  "channels_last": bool(levers["channels_last"]),
                  "compile": bool(levers.get("compile", False)) and unavailable is None}
        how = "recorded choice, not measured"
    else:
        batch = max(1, min(int(batch_size), MEASURE_MAX_BATCH))
        chosen, timings = choose_levers(lever_candidates(where, explicit),
                                        lambda c: time_minibatch(c, where, batch))
        minibatches = training_minibatches(timesteps or 0, n_epochs, batch)
        chosen, compile_seconds = maybe_compile(chosen, timings, where, batch, minibatches, notes)
        how = (f"ms per training minibatch of {batch} on {where}: "
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
    return SpeedSettings(backend=backend, policy_kwargs=run_policy_kwargs(chosen, where, fused_adam=True),
                         torch_threads=threads["torch_threads"], ale_threads=threads["ale_threads"],
                         keeps_freed_memory=keeps_memory, notes=tuple(notes), timings=timings,
                         cores={k: threads[k] for k in ("cores", "busy_cores", "free_cores")},
                         compile_seconds=compile_seconds, **chosen)


def maybe_compile(chosen: Mapping[str, Any], timings: dict[str, float], device: torch.device | str, batch: int,
                  minibatches: int, notes: list[str]) -> tuple[dict[str, Any], float | None]:
    """(``chosen``, with ``compile`` where it pays; the compile's seconds, None if not measured).

    The eager winner is compiled and timed (its label + `` compiled`` joins ``timings``) only
    when the run's ``minibatches`` of ``batch`` take :data:`COMPILE_MIN_TRAINING_SECONDS` at the
    eager speed and inductor can build here; it is kept when :func:`compile_pays`. First the
    compiled step is checked against the eager one (:func:`~rlbreakout.speed.measure.compiled_step_mismatch`): a
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
