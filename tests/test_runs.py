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


def test_run_lifecycle_writes_config_times_training_and_finishes_with_the_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from rlbreakout.runs import PROVENANCE_KEYS, Run

    class Counter:
        num_timesteps = 10

    run = Run("1_gym/1.1_gym.py", env_id="ALE/Breakout-v5", seed=4, logdir=tmp_path, config={"games": 2}, argv=["x.py"])
    config = load_run_config(run.dir)
    assert config["games"] == 2 and all(key in config for key in PROVENANCE_KEYS)
    assert run.dir.parent == tmp_path / "1.1_gym" and (run.dir / "command.txt").is_file()
    first_draw = np.random.rand()
    model = Counter()
    with run.training(model):
        time.sleep(0.05)
        model.num_timesteps = 110  # 100 env steps trained in the block
    run.exclude(run.train_seconds / 2)  # half of it was evaluation
    assert run.trained_steps == 100
    assert run.steps_per_second == pytest.approx(100 / run.train_seconds, rel=1e-3)
    path = run.finish(timesteps=110, scores=[1.0, 3.0, 8.0], model_path=tmp_path / "m.zip", extra_key="x")
    summary = json.loads(path.read_text())
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(path)
    assert all(key in summary for key in (*REQUIRED_SUMMARY_KEYS, *PROVENANCE_KEYS, "model_path"))
    assert (summary["mean_reward"], summary["median_reward"], summary["timesteps"]) == (4.0, 3.0, 110)
    assert summary["extra_key"] == "x" and summary["steps_per_second"] > 0
    # the run seeded numpy: a second run with the same seed draws the same number
    Run("s.py", env_id="e", seed=4, logdir=tmp_path, config={})
    assert np.random.rand() == first_draw


def test_run_training_saves_a_checkpoint_on_ctrl_c(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rlbreakout.runs import Run

    run = Run("s.py", env_id="e", seed=0, logdir=tmp_path, config={})
    saved: list[Path] = []
    with pytest.raises(KeyboardInterrupt):
        with run.training(on_interrupt=lambda: saved.append(tmp_path / "latest.zip") or saved[-1]):
            raise KeyboardInterrupt
    assert saved and f"--resume {run.dir}" in capsys.readouterr().err


def test_resuming_a_folder_without_config_is_a_clear_error(tmp_path: Path) -> None:
    from rlbreakout.errors import RLBreakoutError
    from rlbreakout.runs import Run

    with pytest.raises(RLBreakoutError, match="cannot resume"):
        Run("s.py", env_id="e", seed=0, logdir=tmp_path, config={}, resume_dir=tmp_path)


def test_summary_names_the_gpu_only_when_the_run_used_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from rlbreakout.runs import Run

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # forced, as on a GPU machine
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA H200")
    on_gpu = Run("s.py", env_id="e", seed=0, logdir=tmp_path, config={"device": "auto"}).summary(timesteps=1)
    on_cpu = Run("s.py", env_id="e", seed=1, logdir=tmp_path, config={"device": "cpu"}).summary(timesteps=1)
    assert on_gpu["gpu_model"] == "NVIDIA H200" and "gpu_model" not in on_cpu
