"""Plots from a tiny real run: read its TensorBoard events, smooth, draw a PNG."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from conftest import TINY_PPO_FLAGS, run_script
from rlbreakout.errors import RLBreakoutError
from rlbreakout.results.plots import (
    find_runs,
    load_curves,
    plot_bands,
    plot_curves,
    read_scalars,
    scalar_events_per_file,
    seed_band,
    smooth,
)


def test_smooth_matches_tensorboard_debiased_ema() -> None:
    values = np.array([1.0, 3.0])
    # step 1: 1; step 2: (0.5*0.5*1 + 0.5*3) / (1 - 0.25) = (0.25 + 1.5) / 0.75
    assert smooth(values, 0.5) == pytest.approx([1.0, 1.75 / 0.75])
    assert np.array_equal(smooth(values, 0.0), values)
    with pytest.raises(RLBreakoutError):
        smooth(values, 1.0)


def test_seed_band_of_shared_steps_is_mean_min_max() -> None:
    band = seed_band("x", [([100, 200], [10.0, 20.0]), ([100, 200, 300], [30.0, 40.0, 99.0]), ([], [])])
    assert band.n_seeds == 2 and list(band.steps) == [100, 200]  # step 300: one seed only; the empty seed is left out
    assert list(band.mean) == [20.0, 30.0] and list(band.low) == [10.0, 20.0] and list(band.high) == [30.0, 40.0]


def test_seed_band_bins_noisy_points_first() -> None:
    band = seed_band("x", [([10, 20, 60, 70], [1.0, 3.0, 5.0, 7.0]), ([15, 65], [4.0, 8.0])], bins=2)
    assert band.n_seeds == 2 and len(band.steps) == 2
    assert list(band.mean) == [3.0, 7.0] and list(band.low) == [2.0, 6.0] and list(band.high) == [4.0, 8.0]


def test_seed_band_without_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RLBreakoutError, match="no seed has data"):
        seed_band("x", [([], [])])
    with pytest.raises(RLBreakoutError, match="share no step"):
        seed_band("x", [([1], [1.0]), ([2], [2.0])])
    png = plot_bands([seed_band("x", [([1, 2], [1.0, 2.0]), ([1, 2], [3.0, 1.0])])], tmp_path / "b.png",
                     title="t", ylabel="y")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_runs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RLBreakoutError, match="no run logged"):
        plot_curves([], tmp_path / "x.png", title="t", ylabel="y")


@pytest.mark.slow
def test_a_resumed_run_is_read_file_by_file_and_merged(tmp_path: Path) -> None:
    """Two event files in one run folder, as a resume leaves them: the later file wins a shared step."""
    for age, points in ((200, [(0, 1.0), (10, 2.0), (20, 3.0)]), (100, [(20, 30.0), (30, 40.0)])):
        folder = tmp_path / f"process_{age}"
        with SummaryWriter(str(folder)) as writer:
            for step, value in points:
                writer.add_scalar("game/score", value, step)
            writer.add_scalar("other/tag", 0.0, 0)
        for event_file in folder.glob("events.out.tfevents.*"):
            os.utime(event_file, (1_000_000 - age, 1_000_000 - age))  # the older process's file first
    assert list(scalar_events_per_file(tmp_path, "game/score")) == [[(0, 1.0), (10, 2.0), (20, 3.0)],
                                                                     [(20, 30.0), (30, 40.0)]]
    steps, values = read_scalars(tmp_path, "game/score")
    assert list(steps) == [0, 10, 20, 30] and list(values) == [1.0, 2.0, 30.0, 40.0]
    assert list(scalar_events_per_file(tmp_path, "no/such/tag")) == []


def test_plot_renders_from_a_tiny_real_run(tmp_path: Path) -> None:
    logdir = tmp_path / "runs"
    run_script("2_baselines/2.3_copying_hp_zoo.py", *TINY_PPO_FLAGS, "--timesteps", "96", "--n-steps", "16",
               "--gif-games", "0", "--logdir", str(logdir))
    runs = find_runs(logdir, "2.3_copying_hp_zoo")
    assert len(runs) == 1
    steps, values = read_scalars(runs[0], "train/learning_rate")
    assert list(steps) == [64, 96] and values[0] > values[1]  # linear schedule, x in env steps
    curves = load_curves(runs, "train/learning_rate")
    png = plot_curves(curves, tmp_path / "lr.png", title="lr", ylabel="learning rate")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    result = run_script("pictures/make_plots.py", "--logdir", str(logdir), "--out", str(tmp_path / "pics"))
    assert (tmp_path / "pics" / "2.3_zoo_ppo_value_loss.png").is_file()
    assert "skipped 4.1_env_comparison.png" in result.stdout  # no such run: skipped, not invented
    assert "wrote" in result.stdout and "2.3_zoo_ppo_value_loss.png from 1 run(s)" in result.stdout
    # several roots: the same run folder copied under a second root counts once per root
    other = tmp_path / "flagship"
    shutil.copytree(logdir, other)
    both = run_script("pictures/make_plots.py", "--logdir", str(logdir), str(other), "--out", str(tmp_path / "pics"))
    assert "2.3_zoo_ppo_value_loss.png from 2 run(s)" in both.stdout
