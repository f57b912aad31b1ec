"""Run folders and summary.json conventions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rlbreakout.runs import (
    REQUIRED_SUMMARY_KEYS,
    create_run_dir,
    load_run_config,
    sanitize_env_id,
    save_run_config,
    score_stats,
    script_name,
    write_summary,
)


def test_run_dir_layout(tmp_path: Path) -> None:
    run_dir = create_run_dir(tmp_path, "2.3_copying_hp_zoo", "ALE/Breakout-v5", 7)
    assert run_dir.parent == tmp_path / "2.3_copying_hp_zoo"
    assert run_dir.name.startswith("ALE-Breakout-v5__s7__")
    assert create_run_dir(tmp_path, "2.3_copying_hp_zoo", "ALE/Breakout-v5", 7) != run_dir  # no clash


def test_names() -> None:
    assert script_name("2_baselines/2.3_copying_hp_zoo.py") == "2.3_copying_hp_zoo"
    assert sanitize_env_id("ALE/Breakout-v5") == "ALE-Breakout-v5"


def test_config_round_trip_and_command(tmp_path: Path) -> None:
    save_run_config(tmp_path, {"seed": 3, "path": Path("x"), "value": np.float32(0.5)}, argv=["s.py", "--seed", "3"])
    assert load_run_config(tmp_path) == {"seed": 3, "path": "x", "value": 0.5}
    assert (tmp_path / "command.txt").read_text().strip().endswith("s.py --seed 3")


def test_write_summary_prints_path_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = {key: 1 for key in REQUIRED_SUMMARY_KEYS}
    path = write_summary(tmp_path, {**summary, "mean_reward": np.float64(2.0)})
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(path)
    assert json.loads(path.read_text())["mean_reward"] == 2.0


def test_write_summary_refuses_missing_keys(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="steps_per_second"):
        write_summary(tmp_path, {key: 1 for key in REQUIRED_SUMMARY_KEYS if key != "steps_per_second"})


def test_score_stats() -> None:
    stats = score_stats([1, 2, 3, 10])
    assert stats["mean_reward"] == 4.0 and stats["median_reward"] == 2.5 and stats["n_games"] == 4
    assert stats["q25_reward"] == pytest.approx(1.75)
    assert np.isnan(score_stats([])["mean_reward"])
