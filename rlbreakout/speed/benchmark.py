"""Measurements for ``0_setup/0.2_benchmark.py``: env stepping, PPO training, the ceiling, memory.

Why child processes: each measurement runs in a fresh Python process, so memory
is that of one setup alone (a SubprocVecEnv's workers included), torch's thread
settings of one side cannot leak into the other, and a crash in one does not end
the benchmark. The parent samples the child's whole process tree from ``/proc``
(Linux; elsewhere RSS is reported as ``None``).

Child entry point (used by the benchmark, not meant for people)::

    python -m rlbreakout.speed.benchmark '{"kind": "env", "backend": "dummy", "n_envs": 8, ...}'

prints one JSON line with its result.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from rlbreakout.env_ids import DEFAULT_ALE_THREADS
from rlbreakout.envs import make_env
from rlbreakout.errors import RLBreakoutError
from rlbreakout.speed.fast import SpeedSettings, fast_settings
from rlbreakout.speed.flops import PEAK_MATRIX_SIZE, matmul_peak, policy_flops
from rlbreakout.speed.hardware import bf16_supported, cpu_flags, device_type
from rlbreakout.speed.measure import measurement_policy, time_minibatch
from rlbreakout.speed.step_breakdown import timed_training_parts
from rlbreakout.speed.threads import configure_threads

#: Env setups of the env-stepping table: label -> (make_env backend, vec_env).
ENV_SETUPS: dict[str, tuple[str, str]] = {
    "DummyVecEnv": ("classic", "dummy"),
    "SubprocVecEnv": ("classic", "subproc"),
    "ale_vector": ("ale_vector", "dummy"),
}
PPO_SIDES: tuple[str, ...] = ("stock", "fast")
#: Optional third side: stock SB3 with torch threads chosen from the free cores as --fast does,
#: which separates the thread lever from the others on a busy machine.
STOCK_MATCHED = "stock_threads"
#: 3.3's training: --fast on the aimbot view (the batched aimbot on ale_vector), measured against 2.3's --fast.
AIMBOT_FAST = "aimbot_fast"
#: The observation wrapper each side trains on (2.3's Atari stack unless named here).
SIDE_WRAPPER = {AIMBOT_FAST: "aimbot"}
#: rl-baselines3-zoo's Atari PPO (atari.yml), as constants; schedules do not change speed.
ZOO_PPO: dict[str, Any] = {"n_steps": 128, "batch_size": 256, "n_epochs": 4, "learning_rate": 2.5e-4,
                           "clip_range": 0.1, "ent_coef": 0.01, "vf_coef": 0.5}
#: The run length ``--fast`` decides for in the benchmark (torch.compile is tried only for long
#: runs): the 1e6 steps of the chapters' headline runs. Tiny mode decides for a short run.
DECIDE_FOR_TIMESTEPS = 1_000_000
#: Tiny mode (tests): a few updates only, same code path.
TINY_PPO: dict[str, Any] = {**ZOO_PPO, "n_steps": 16, "batch_size": 32, "n_epochs": 1}
#: How often the parent samples the child's memory.
RSS_SAMPLE_SECONDS = 0.05
WARMUP_STEPS = 10
#: Timed training minibatches and batch-``n_envs`` forward passes of the ceiling measurement.
CEILING_REPEATS = 3
CEILING_INFERENCE_REPEATS = 50
#: CPU flags that decide which kernels torch can use: AVX2, AVX-512, bf16 and AMX.
RELEVANT_CPU_FLAGS: tuple[str, ...] = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16")
BYTES_PER_MB = 1024 * 1024
#: Tiny mode's peak matrices: milliseconds, same code path.
TINY_PEAK_SIZE = 256


# %% Memory of a process tree (/proc)
def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: ppid is the 2nd field after the last ')'
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0  # the process ended between listing and reading


def process_tree_rss(pid: int) -> int | None:
    """Resident memory of ``pid`` and all its descendants, in bytes (``None`` without /proc)."""
    if not os.path.isdir("/proc"):
        return None
    children = _children_map()
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += _rss_bytes(current)
        stack.extend(children.get(current, []))
    return total


@dataclass
class ChildResult:
    """One child measurement: its JSON result, its tree's peak RSS and its wall time."""

    result: dict[str, Any]
    peak_rss_mb: float | None
    wall_seconds: float


def run_child(command: Sequence[str], *, timeout: float | None = None, cwd: str | None = None) -> ChildResult:
    """Run ``command``, sample its process tree's RSS until it exits, parse its last stdout line as JSON."""
    started = time.perf_counter()
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    peak: int | None = None
    while proc.poll() is None:
        rss = process_tree_rss(proc.pid)
        if rss is not None:
            peak = max(peak or 0, rss)
        if timeout is not None and time.perf_counter() - started > timeout:
            proc.kill()
            break
        time.sleep(RSS_SAMPLE_SECONDS)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    lines = [line for line in stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = (stderr.strip().splitlines() or ["no output"])[-1]
        raise RLBreakoutError(f"benchmark child failed (exit {proc.returncode}): {tail}")
    return ChildResult(json.loads(lines[-1]), None if peak is None else round(peak / BYTES_PER_MB, 1), wall)


def child_command(spec: dict[str, Any]) -> list[str]:
    """The command line that runs one measurement ``spec`` in a fresh Python."""
    return [sys.executable, "-m", "rlbreakout.speed.benchmark", json.dumps(spec)]


# %% What the children measure
def measure_env_steps(setup: str, n_envs: int, steps: int, env_id: str, seed: int) -> dict[str, Any]:
    """Env steps per second (summed over envs) of random play on one env setup."""
    backend, vec_env = ENV_SETUPS[setup]
    threads = configure_threads(n_envs) if backend == "ale_vector" else {}
    venv = make_env(env_id, n_envs, seed=seed, backend=backend, vec_env=vec_env,
                    ale_threads=threads.get("ale_threads", DEFAULT_ALE_THREADS))
    rng = np.random.default_rng(seed)
    iterations = max(1, steps // n_envs)
    actions = rng.integers(0, venv.action_space.n, (iterations + WARMUP_STEPS, n_envs))
    venv.reset()
    for a in actions[:WARMUP_STEPS]:
        venv.step(a)
    start = time.perf_counter()
    for a in actions[WARMUP_STEPS:]:
        venv.step(a)
    seconds = time.perf_counter() - start
    venv.close()
    return {"setup": setup, "n_envs": n_envs, "steps": iterations * n_envs, "seconds": seconds,
            "steps_per_second": iterations * n_envs / seconds, "threads": threads}


class IterationClock(BaseCallback):
    """Times of each rollout's start and end (to drop the first, warm-up iteration)."""

    def __init__(self) -> None:
        super().__init__()
        self.rollout_starts: list[float] = []
        self.rollout_ends: list[float] = []

    def _on_rollout_start(self) -> None:
        self.rollout_starts.append(time.perf_counter())

    def _on_rollout_end(self) -> None:
        self.rollout_ends.append(time.perf_counter())

    def _on_step(self) -> bool:
        return True


def _build_ppo(side: str, n_envs: int, env_id: str, seed: int, *, tiny: bool, stock_torch_threads: int,
               device: str) -> tuple[PPO, SpeedSettings, dict[str, Any]]:
    """The PPO of one side of the benchmark: ``stock`` (classic, fp32), ``fast``, :data:`STOCK_MATCHED`,
    or :data:`AIMBOT_FAST` (``fast`` on 3.3's aimbot view)."""
    hyper = TINY_PPO if tiny else ZOO_PPO
    wrapper = SIDE_WRAPPER.get(side, "atari")
    if side == STOCK_MATCHED:
        threads = configure_threads(n_envs)
        settings = SpeedSettings(torch_threads=threads["torch_threads"], ale_threads=threads["ale_threads"])
    elif side == "stock":
        if stock_torch_threads:
            torch.set_num_threads(stock_torch_threads)
        settings = SpeedSettings()
    else:
        settings = fast_settings(True, device=device, env_id=env_id, wrapper=wrapper, n_envs=n_envs,
                                 batch_size=hyper["batch_size"], verbose=False,
                                 timesteps=None if tiny else DECIDE_FOR_TIMESTEPS, n_epochs=hyper["n_epochs"])
    venv = make_env(env_id, n_envs, seed=seed, wrapper=wrapper, backend=settings.backend,
                    ale_threads=settings.ale_threads)
    model = PPO(settings.policy_class, venv, seed=seed, device=device, verbose=0,
                policy_kwargs=settings.policy_kwargs or None, **hyper)
    return model, settings, hyper


def measure_ppo(side: str, train_steps: int, n_envs: int, env_id: str, seed: int, *, tiny: bool = False,
                stock_torch_threads: int = 0, device: str = "cpu") -> dict[str, Any]:
    """SB3 PPO ``CnnPolicy`` training steps per second: ``stock`` (classic, fp32), ``fast``,
    or :data:`STOCK_MATCHED`.

    The first iteration (allocation, first-call costs, a compile) is not counted when there are more.
    """
    model, settings, hyper = _build_ppo(side, n_envs, env_id, seed, tiny=tiny,
                                        stock_torch_threads=stock_torch_threads, device=device)
    clock = IterationClock()
    start = time.perf_counter()
    model.learn(train_steps, callback=clock)
    end = time.perf_counter()
    model.get_env().close()
    per_iteration = hyper["n_steps"] * n_envs
    starts, ends = clock.rollout_starts, clock.rollout_ends
    if len(starts) >= 2:
        counted_steps, seconds = model.num_timesteps - per_iteration, end - starts[1]
        rollout = sum(e - s for s, e in zip(starts[1:], ends[1:]))
    else:
        counted_steps, seconds = model.num_timesteps, end - start
        rollout = sum(e - s for s, e in zip(starts, ends))
    return {"side": side, "backend": settings.backend, "precision": settings.precision,
            "channels_last": settings.channels_last, "compile": settings.compile,
            "compile_seconds": settings.compile_seconds, "torch_threads": torch.get_num_threads(),
            "threads": {**settings.cores, "torch_threads": settings.torch_threads, "ale_threads": settings.ale_threads},
            "timings_ms": settings.to_config()["timings_ms"],
            "steps": counted_steps, "seconds": seconds, "steps_per_second": counted_steps / seconds,
            "rollout_fraction": rollout / seconds}


def measure_peak(n_envs: int, tiny: bool = False, device: str = "cpu") -> dict[str, Any]:
    """This machine's matrix-multiply peak, FLOP/s, in fp32 and (where supported) bf16, with the
    torch threads ``--fast`` takes for ``n_envs`` envs (those of the training it is compared with)."""
    if device_type(device) == "cpu":
        configure_threads(n_envs)
    size = TINY_PEAK_SIZE if tiny else PEAK_MATRIX_SIZE
    precisions = ["fp32", *(["bf16"] if bf16_supported(device) else [])]
    return {"matrix_size": size, "torch_threads": torch.get_num_threads(),
            "peak_flops": {p: matmul_peak(p, size=size, device=device) for p in precisions}}


def measure_breakdown(side: str, train_steps: int, n_envs: int, env_id: str, seed: int, *, tiny: bool = False,
                      device: str = "cpu") -> dict[str, Any]:
    """SB3 PPO's training step, split into forward, backward, optimiser and the rest, per minibatch.

    With the FLOPs torch counts for one minibatch (forward and backward) and one rollout
    inference at batch ``n_envs``, so the parent can turn times into FLOP/s.
    """
    model, settings, hyper = _build_ppo(side, n_envs, env_id, seed, tiny=tiny, stock_torch_threads=0, device=device)
    counted = policy_flops(model.policy, hyper["batch_size"])
    # FLOPs grow with the batch exactly (one network per sample): the rollout's batch of n_envs from the same count
    flops = {"training_minibatch": counted["training"],
             "inference_batch": counted["inference"] // hyper["batch_size"] * n_envs}
    with timed_training_parts(model) as parts:
        model.learn(train_steps)
    model.get_env().close()
    return {"side": side, "precision": settings.precision, "channels_last": settings.channels_last,
            "torch_threads": torch.get_num_threads(), "batch_size": hyper["batch_size"], "n_envs": n_envs,
            "n_epochs": hyper["n_epochs"], "train_calls": len(parts.calls), "flops": flops,
            "per_minibatch_ms": parts.per_minibatch_ms()}


def measure_ceiling(n_envs: int, env_id: str, seed: int, *, tiny: bool = False, device: str = "cpu",
                    env_steps: int = 2000) -> dict[str, Any]:
    """The parts of one ``--fast`` PPO iteration, each timed alone, per env step.

    At the zoo settings (``n_envs`` envs, n_steps 128, batch 256, 4 epochs) with the levers and
    threads ``--fast`` chooses here: training (n_epochs minibatches of ``batch_size`` per
    ``batch_size`` env steps), rollout inference at batch ``n_envs``, and ale_vector stepping.
    Their sum is the time per env step if the parts ran back to back with nothing in between:
    ``ceiling_steps_per_second`` is what a PPO loop on this machine cannot beat.
    """
    hyper = TINY_PPO if tiny else ZOO_PPO
    settings = fast_settings(True, device=device, env_id=env_id, n_envs=n_envs, batch_size=hyper["batch_size"],
                             verbose=False, timesteps=None if tiny else DECIDE_FOR_TIMESTEPS, n_epochs=hyper["n_epochs"])
    train = time_minibatch(settings.levers, device, hyper["batch_size"], repeats=CEILING_REPEATS)
    train_per_step = hyper["n_epochs"] * train / hyper["batch_size"]

    policy = measurement_policy(settings.levers, device)
    obs = torch.randint(0, 256, (n_envs, *policy.observation_space.shape), dtype=torch.uint8, device=policy.device)
    inference = []
    with torch.no_grad():
        for index in range(WARMUP_STEPS + CEILING_INFERENCE_REPEATS):
            start = time.perf_counter()
            policy(obs)  # actions, values, log-probs: what SB3's collect_rollouts asks for each step
            if policy.device.type == "cuda":
                torch.cuda.synchronize(policy.device)
            if index >= WARMUP_STEPS:
                inference.append(time.perf_counter() - start)
    inference_per_step = statistics.median(inference) / n_envs

    env = measure_env_steps("ale_vector", n_envs, env_steps, env_id, seed)
    env_per_step = 1.0 / env["steps_per_second"]
    total = train_per_step + inference_per_step + env_per_step
    return {"n_envs": n_envs, "batch_size": hyper["batch_size"], "n_epochs": hyper["n_epochs"],
            "levers": settings.levers, "timings_ms": settings.to_config()["timings_ms"],
            "torch_threads": settings.torch_threads, "ale_threads": settings.ale_threads,
            "train_minibatch_ms": train * 1000, "per_step_ms": {
                "train": train_per_step * 1000, "inference": inference_per_step * 1000, "env": env_per_step * 1000},
            "seconds_per_step": total, "ceiling_steps_per_second": 1.0 / total}


# %% Orchestration helpers
def alternating(sides: Sequence[str], repeats: int) -> Iterator[tuple[int, str]]:
    """(repeat, side) pairs, the order reversed every other repeat: A B, B A, A B, ...

    Alternating spreads slow drifts of a shared machine (another job starting) over both sides.
    """
    for repeat in range(repeats):
        order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
        for side in order:
            yield repeat, side


def uneven_threads_note(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """A note when the runs that choose their threads (every side but stock) did not all get the same count.

    Why: ``--fast`` takes its torch threads from the cores free at its start (rlbreakout.speed.threads),
    so a process that was busy for that quarter second gives one run 1 thread where the others
    got 2, and a ratio of two sides then measures the moment's load, not the code.
    """
    counts = {side: sorted({run["torch_threads"] for run in side_runs if run.get("torch_threads")})
              for side, side_runs in runs.items() if side != "stock"}
    if len({count for side_counts in counts.values() for count in side_counts}) <= 1:
        return None
    seen = ", ".join(f"{side} {'/'.join(map(str, side_counts))}" for side, side_counts in counts.items())
    return (f"note: the runs chose different torch threads ({seen}): another process was busy when some "
            f"started, so the ratios mix code and load; run the benchmark again on a quiet machine.")


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(statistics.median(present)) if present else None


def load_average() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def relevant_cpu_flags(flags: set[str] | None = None) -> list[str]:
    """Which of :data:`RELEVANT_CPU_FLAGS` and the ``amx_*`` flags this CPU has, sorted."""
    flags = cpu_flags() if flags is None else flags
    return sorted(f for f in flags if f in RELEVANT_CPU_FLAGS or f.startswith("amx_"))


def _child_main(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    kind = spec.pop("kind")
    if kind == "env":
        result = measure_env_steps(**spec)
    elif kind == "ppo":
        result = measure_ppo(**spec)
    elif kind == "ceiling":
        result = measure_ceiling(**spec)
    elif kind == "peak":
        result = measure_peak(**spec)
    elif kind == "breakdown":
        result = measure_breakdown(**spec)
    else:
        raise RLBreakoutError(f"unknown benchmark kind {kind!r}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
