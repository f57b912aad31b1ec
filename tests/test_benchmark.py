"""rlbreakout.speed.benchmark: process-tree memory, child measurements, alternation, medians."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from rlbreakout.errors import RLBreakoutError
from rlbreakout.speed import benchmark

#: A child that allocates ~100 MB in a grandchild: its tree must weigh at least that much.
BIG_GRANDCHILD = (
    "import subprocess, sys, json; "
    "p = subprocess.Popen([sys.executable, '-c', 'b = bytearray(100 * 1024 * 1024); import time; time.sleep(1.5)']); "
    "p.wait(); print(json.dumps({'ok': 1}))"
)


def test_process_tree_rss_counts_descendants() -> None:
    child = subprocess.Popen([sys.executable, "-c", BIG_GRANDCHILD], stdout=subprocess.PIPE)
    try:
        peak = 0
        deadline = time.time() + 10
        while child.poll() is None and time.time() < deadline:
            peak = max(peak, benchmark.process_tree_rss(child.pid) or 0)
            time.sleep(0.05)
    finally:
        child.communicate()
    assert peak > 100 * benchmark.BYTES_PER_MB


def test_run_child_reports_json_and_peak_memory() -> None:
    result = benchmark.run_child([sys.executable, "-c", BIG_GRANDCHILD])
    assert result.result == {"ok": 1}
    assert result.peak_rss_mb is not None and result.peak_rss_mb > 100
    with pytest.raises(RLBreakoutError, match="exit 3"):
        benchmark.run_child([sys.executable, "-c", "import sys; print('x', file=sys.stderr); sys.exit(3)"])


def test_child_command_runs_an_env_measurement() -> None:
    spec = {"kind": "env", "setup": "ale_vector", "n_envs": 2, "steps": 40,
            "env_id": "BreakoutNoFrameskip-v4", "seed": 0}
    child = benchmark.run_child(benchmark.child_command(spec))
    assert child.result["setup"] == "ale_vector" and child.result["steps"] == 40
    assert child.result["steps_per_second"] > 0
    assert json.loads(benchmark.child_command(spec)[-1]) == spec


def test_relevant_cpu_flags() -> None:
    flags = {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "avx512vl"}
    assert benchmark.relevant_cpu_flags(flags) == ["amx_bf16", "amx_tile", "avx2", "avx512_bf16", "avx512f"]
    assert benchmark.relevant_cpu_flags(set()) == []


def test_alternating_and_median() -> None:
    assert list(benchmark.alternating(["a", "b"], 3)) == [(0, "a"), (0, "b"), (1, "b"), (1, "a"), (2, "a"), (2, "b")]
    assert benchmark.median([3.0, None, 1.0, 2.0]) == 2.0
    assert benchmark.median([None]) is None


def test_a_run_that_got_fewer_threads_is_noted() -> None:
    # the first benchmark of 3.3 --fast against 2.3 --fast on the Xeon: two aimbot runs started while
    # other work ran, took 1 torch thread, and the ratio read 0.75 instead of 0.91
    fast = [{"torch_threads": 2}, {"torch_threads": 2}, {"torch_threads": 2}]
    aimbot = [{"torch_threads": 1}, {"torch_threads": 2}, {"torch_threads": 1}]
    note = benchmark.uneven_threads_note({"stock": [{"torch_threads": 4}], "fast": fast, benchmark.AIMBOT_FAST: aimbot})
    assert note is not None and "fast 2, aimbot_fast 1/2" in note and "quiet machine" in note
    # stock keeps torch's default threads by design: it alone differing is no note
    assert benchmark.uneven_threads_note({"stock": [{"torch_threads": 4}], "fast": fast}) is None
    assert benchmark.uneven_threads_note({"fast": fast, benchmark.AIMBOT_FAST: fast}) is None
