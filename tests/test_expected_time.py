"""The expected-time line printed before training: measured speeds first, this CPU first, honest when none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlbreakout.expected_time import duration_text, expected_time_line, measured_speed, wall_steps_per_second


def write_run(logdir: Path, name: str, *, steps_per_second: float, cpu: str, fast: bool, age: float = 0) -> Path:
    run_dir = logdir / "2.3_copying_hp_zoo" / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"fast": fast}))
    summary = run_dir / "summary.json"
    summary.write_text(json.dumps({"steps_per_second": steps_per_second, "train_seconds": 100.0,
                                   "wall_seconds": 110.0, "cpu_model": cpu, "timesteps": 1000}))
    return summary


def write_ledger(ledger: Path, *, steps_per_second: float, cpu: str, fast: bool) -> None:
    ledger.mkdir(exist_ok=True)
    flags = ["--fast"] if fast else []
    entry = {"planned": {"flags": flags}, "summary": {"script": "2.3_copying_hp_zoo", "cpu_model": cpu,
                                                       "steps_per_second": steps_per_second,
                                                       "train_seconds": 100.0, "wall_seconds": 100.0}}
    (ledger / f"entry_{cpu}_{fast}.json").write_text(json.dumps(entry))


def test_the_last_run_on_this_cpu_with_the_same_fast_flag_wins(tmp_path: Path) -> None:
    write_run(tmp_path / "runs", "a", steps_per_second=500.0, cpu="CPU A", fast=True)
    write_run(tmp_path / "runs", "b", steps_per_second=900.0, cpu="CPU B", fast=True)  # other CPU
    write_run(tmp_path / "runs", "c", steps_per_second=100.0, cpu="CPU A", fast=False)  # stock
    write_ledger(tmp_path / "results", steps_per_second=300.0, cpu="CPU A", fast=True)
    speed = measured_speed("2.3_copying_hp_zoo", True, tmp_path / "runs", cpu="CPU A", ledger_dir=tmp_path / "results")
    assert speed is not None and speed.steps_per_second == pytest.approx(500.0 * 100 / 110)
    assert "your last run" in speed.source
    stock = measured_speed("2.3_copying_hp_zoo", False, tmp_path / "runs", cpu="CPU A",
                           ledger_dir=tmp_path / "results")
    assert stock is not None and stock.steps_per_second == pytest.approx(100.0 * 100 / 110)


def test_the_ledger_speaks_when_no_run_here_did_and_names_another_cpu(tmp_path: Path) -> None:
    write_ledger(tmp_path / "results", steps_per_second=300.0, cpu="CPU B", fast=True)
    speed = measured_speed("2.3_copying_hp_zoo", True, tmp_path / "runs", cpu="CPU A", ledger_dir=tmp_path / "results")
    assert speed is not None and speed.steps_per_second == 300.0 and "another CPU (CPU B)" in speed.source
    write_ledger(tmp_path / "results", steps_per_second=600.0, cpu="CPU A", fast=True)
    speed = measured_speed("2.3_copying_hp_zoo", True, tmp_path / "runs", cpu="CPU A", ledger_dir=tmp_path / "results")
    assert speed is not None and speed.steps_per_second == 600.0 and "this CPU" in speed.source


def test_the_other_fast_setting_speaks_only_when_this_one_has_no_figure_and_says_so(tmp_path: Path) -> None:
    write_ledger(tmp_path / "results", steps_per_second=300.0, cpu="CPU B", fast=True)
    stock = measured_speed("2.3_copying_hp_zoo", False, tmp_path / "runs", cpu="CPU A", ledger_dir=tmp_path / "results")
    assert stock is not None and stock.steps_per_second == 300.0
    assert stock.source.endswith("on another CPU (CPU B) with --fast (this run: the other way)")
    write_run(tmp_path / "runs", "fast-here", steps_per_second=500.0, cpu="CPU A", fast=True)
    stock = measured_speed("2.3_copying_hp_zoo", False, tmp_path / "runs", cpu="CPU A", ledger_dir=tmp_path / "results")
    assert stock is not None
    assert stock.source == "your last run of 2.3_copying_hp_zoo on this CPU with --fast (this run: the other way)"
    write_ledger(tmp_path / "results", steps_per_second=100.0, cpu="CPU B", fast=False)
    stock = measured_speed("2.3_copying_hp_zoo", False, tmp_path / "runs", cpu="CPU A", ledger_dir=tmp_path / "results")
    assert stock is not None and stock.steps_per_second == 100.0 and "--fast" not in stock.source
    fast = measured_speed("2.3_copying_hp_zoo", True, tmp_path / "runs", cpu="CPU A", ledger_dir=tmp_path / "results")
    assert fast is not None and "this run: the other way" not in fast.source


def test_the_line_says_steps_time_and_how_to_stop_and_resume(tmp_path: Path) -> None:
    speed = measured_speed("2.3_copying_hp_zoo", True, tmp_path, cpu="x", ledger_dir=tmp_path)
    assert speed is None
    line = expected_time_line(10_000_000, None, tmp_path / "run")
    assert line.startswith("10,000,000 steps to train") and "no run of this script measured" in line
    write_ledger(tmp_path / "results", steps_per_second=300.0, cpu="CPU B", fast=True)
    speed = measured_speed("2.3_copying_hp_zoo", True, tmp_path / "runs", cpu="x", ledger_dir=tmp_path / "results")
    line = expected_time_line(10_000_000, speed, tmp_path / "run")
    assert "about 9.3 h here" in line and f"--resume {tmp_path / 'run'}" in line and "Ctrl-C" in line


def test_durations_read_as_a_person_says_them() -> None:
    assert duration_text(42) == "42 s" and duration_text(17 * 60) == "17 min" and duration_text(9.1 * 3600) == "9.1 h"


def test_wall_speed_counts_periodic_evaluation_but_not_a_tiny_run_s_final_one() -> None:
    assert wall_steps_per_second({"steps_per_second": 100, "train_seconds": 90, "wall_seconds": 100}) == 90
    assert wall_steps_per_second({"steps_per_second": 100, "train_seconds": 10, "wall_seconds": 100}) == 100
    assert wall_steps_per_second({"steps_per_second": 0}) is None
