"""Torch and ALE thread counts from the cores that are free now.

Why: on a 2-core machine 2 torch threads + 2 ALE threads is best when the machine is
quiet, but if another process holds a core, 2 torch threads collapse 5-10x while 1
holds steady. So the choice is made from the cores that are free *now*: their busy
time sampled from ``/proc/stat`` over a fraction of a second (the 1-minute load
average is not "now": it still counts a process that ended a minute ago, such as the
benchmark's previous run), or the load average where ``/proc/stat`` does not exist.

The counts are returned, never stored: the caller passes ``ale_threads`` on to
``make_env(..., ale_threads=...)``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import torch

from rlbreakout.errors import ConfigError

#: More torch threads than this rarely help a Nature-CNN at batch 256 on CPU.
MAX_TORCH_THREADS = 8
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
    counts win. Pass ``ale_threads`` of the result to ``make_env(..., ale_threads=...)``.

    :return: ``cores``, ``busy_cores``, ``free_cores``, ``torch_threads``, ``ale_threads``
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
    return {"cores": cores, "busy_cores": round(busy, 2), "free_cores": free,
            "torch_threads": chosen_torch, "ale_threads": chosen_ale}
