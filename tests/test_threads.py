"""Thread counts from the cores free now: /proc/stat sampling, the load-average fallback, explicit counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from rlbreakout.speed import threads


@pytest.fixture(autouse=True)
def restore_threads() -> Any:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_configure_threads_uses_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads, "busy_cores", lambda cpus, path: 0.2)
    quiet = threads.configure_threads(8)
    assert (quiet["torch_threads"], quiet["ale_threads"], quiet["free_cores"]) == (2, 2, 2)
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(threads, "busy_cores", lambda cpus, path: 1.3)  # another process holds a core
    busy = threads.configure_threads(8)
    assert (busy["torch_threads"], busy["ale_threads"], busy["busy_cores"]) == (1, 1, 1.3)
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(threads, "busy_cores", lambda cpus, path: 7.0)
    assert threads.configure_threads(1, apply=False)["free_cores"] == 1  # never below one
    explicit = threads.configure_threads(1, torch_threads=3, ale_threads=4, apply=False)
    assert (explicit["torch_threads"], explicit["ale_threads"]) == (3, 1)  # ALE: at most one per env


def _proc_stat(cpu0: tuple[int, int], cpu1: tuple[int, int]) -> str:
    """A /proc/stat with (busy user ticks, idle ticks) per CPU; the aggregate line must be ignored."""
    lines = ["cpu  999999 0 0 1 0 0 0 0 0 0"]
    for index, (user, idle) in enumerate((cpu0, cpu1)):
        lines.append(f"cpu{index} {user} 0 0 {idle} 0 0 0 0 0 0")
    return "\n".join(lines + ["intr 12345", "ctxt 678"]) + "\n"


def test_busy_cores_counts_only_the_sample_window(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # Since boot cpu0 was mostly busy (a load average would still say so) ...
    stat.write_text(_proc_stat((90_000, 10_000), (50_000, 50_000)))
    # ... but during the window cpu0 is fully busy and cpu1 idle: one core busy now.
    monkeypatch.setattr(threads.time, "sleep",
                        lambda seconds: stat.write_text(_proc_stat((90_025, 10_000), (50_000, 50_025))))
    assert threads.busy_cores({0, 1}, path=str(stat)) == pytest.approx(1.0)
    stat.write_text(_proc_stat((90_000, 10_000), (50_000, 50_000)))
    assert threads.busy_cores({1}, path=str(stat)) == pytest.approx(0.0)  # only the CPUs we may use count


def test_free_cores_falls_back_to_the_load_average(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(threads, "PROC_STAT_PATH", str(tmp_path / "missing"))
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.3, 0.0, 0.0))
    assert threads.free_cores() == (2, 1.3, 1)


def test_busy_cores_on_this_machine_is_within_its_cores() -> None:
    cpus = threads._affinity()
    busy = threads.busy_cores(cpus, sample_seconds=0.05)
    if Path(threads.PROC_STAT_PATH).exists():
        assert busy is not None and 0.0 <= busy <= len(cpus)
    else:
        assert busy is None
