"""Learning curves from TensorBoard event files, as PNGs for the chapter READMEs.

Reads with tensorboard's own ``EventAccumulator`` (a maintained reader, no hand
parsing), smooths like TensorBoard's slider (an exponential moving average with debias),
and draws several runs on one chart with the x axis in environment steps.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

from rlbreakout.errors import RLBreakoutError

#: TensorBoard's default smoothing slider.
DEFAULT_SMOOTHING = 0.6
FIGURE_SIZE = (7.0, 4.0)
FIGURE_DPI = 110


@dataclass(frozen=True)
class Curve:
    """One tag of one run: x in env steps, raw values, and a label for the legend."""

    label: str
    steps: np.ndarray
    values: np.ndarray


def scalar_events_by_prefix(run_dir: str | os.PathLike[str],
                            prefixes: tuple[str, ...]) -> Iterator[dict[str, list[tuple[int, float]]]]:
    """``{tag: [(step, value), ...]}`` of the tags starting with one of ``prefixes``, one dict per
    event file under ``run_dir``, oldest file first (a resumed run writes its later points into
    another file). Each file is read once, whatever the number of tags."""
    for path in sorted(Path(run_dir).rglob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        accumulator = EventAccumulator(str(path), size_guidance={SCALARS: 0})
        accumulator.Reload()
        tags = [tag for tag in accumulator.Tags().get("scalars", []) if tag.startswith(prefixes)]
        yield {tag: [(int(event.step), float(event.value)) for event in accumulator.Scalars(tag)] for tag in tags}


def scalar_events_per_file(run_dir: str | os.PathLike[str], tag: str) -> Iterator[list[tuple[int, float]]]:
    """``[(step, value), ...]`` of ``tag`` in each event file under ``run_dir`` that logged it,
    oldest file first (a resumed run writes its later points into another file)."""
    for file_events in scalar_events_by_prefix(run_dir, (tag,)):
        if tag in file_events:
            yield file_events[tag]


def read_scalars(run_dir: str | os.PathLike[str], tag: str) -> tuple[np.ndarray, np.ndarray]:
    """All points of ``tag`` in every event file under ``run_dir``, sorted by step.

    A resumed run writes its later points into the same folder (sometimes another
    event file), so the files are merged; a step written twice keeps its last value.
    """
    points: dict[int, float] = {}
    for events in scalar_events_per_file(run_dir, tag):
        points.update(events)
    steps = np.array(sorted(points), dtype=np.int64)
    return steps, np.array([points[s] for s in steps], dtype=float)


def smooth(values: np.ndarray, weight: float = DEFAULT_SMOOTHING) -> np.ndarray:
    """TensorBoard's smoothing: a debiased exponential moving average (weight 0 = raw)."""
    if not 0.0 <= weight < 1.0:
        raise RLBreakoutError(f"smoothing weight must be in [0, 1), got {weight}.")
    smoothed, last, debias = np.empty(len(values)), 0.0, 0.0
    for i, value in enumerate(values):
        last = last * weight + (1 - weight) * value
        debias = debias * weight + (1 - weight)
        smoothed[i] = last / debias
    return smoothed


def run_label(run_dir: Path, keys: Sequence[str] = ()) -> str:
    """``<script> <env> s<seed>`` plus chosen config values (e.g. ``prediction=none``)."""
    label = f"{run_dir.parent.name} {run_dir.name.split('__')[0]} s{run_dir.name.split('__s')[-1].split('__')[0]}"
    config_path = run_dir / "config.json"
    if keys and config_path.is_file():
        config = json.loads(config_path.read_text())
        label += " " + " ".join(f"{k}={config.get(k)}" for k in keys)
    return label


def load_curves(run_dirs: Sequence[Path], tag: str, label_keys: Sequence[str] = ()) -> list[Curve]:
    """The curves of ``tag`` for each run that logged it (runs without it are left out)."""
    curves = []
    for run_dir in run_dirs:
        steps, values = read_scalars(run_dir, tag)
        if len(steps):
            curves.append(Curve(run_label(Path(run_dir), label_keys), steps, values))
    return curves


def _save_chart(fig: Figure, ax: Any, path: str | os.PathLike[str], *, title: str, ylabel: str) -> Path:
    """Label the axes (x in env steps), add grid and legend, and save the PNG."""
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_curves(
    curves: Sequence[Curve],
    path: str | os.PathLike[str],
    *,
    title: str,
    ylabel: str,
    smoothing: float = DEFAULT_SMOOTHING,
) -> Path:
    """Draw the curves on one chart (raw faint, smoothed solid) and save a PNG."""
    if not curves:
        raise RLBreakoutError(f"no run logged the data for {title!r}; train first (see the chapter README).")
    # A Figure of its own (no pyplot): no GUI backend, no global state, nothing to close.
    fig = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
    ax = fig.subplots()
    for curve in curves:
        (line,) = ax.plot(curve.steps, smooth(curve.values, smoothing), label=curve.label, linewidth=1.6)
        ax.plot(curve.steps, curve.values, color=line.get_color(), alpha=0.2, linewidth=0.8)
    return _save_chart(fig, ax, path, title=title, ylabel=ylabel)


def find_runs(logdir: str | os.PathLike[str], script: str, *, completed_only: bool = True) -> list[Path]:
    """Run folders of ``script`` under ``logdir``, oldest first (only finished ones by default)."""
    root = Path(logdir) / script
    if not root.is_dir():
        return []
    runs = [p for p in sorted(root.iterdir()) if p.is_dir()]
    return [p for p in runs if (p / "summary.json").is_file()] if completed_only else runs


@dataclass(frozen=True)
class SeedBand:
    """One setting over several seeds: the mean across seeds and the seeds' min and max, per step."""

    label: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_seeds: int


def binned(steps: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of the values whose step falls in each bin ``[edges[i], edges[i+1])`` (NaN where none)."""
    index = np.digitize(steps, edges) - 1
    out = np.full(len(edges) - 1, np.nan)
    for i in range(len(out)):
        inside = values[index == i]
        if inside.size:
            out[i] = inside.mean()
    return out


def seed_band(label: str, curves: Sequence[tuple[Sequence[float], Sequence[float]]], *,
              bins: int | None = None) -> SeedBand:
    """Put each seed's (steps, values) on one step axis, then take mean, min and max across seeds.

    ``bins=None`` keeps the steps the seeds share (periodic evaluations happen at the same
    steps); a number averages each seed's noisy points (one per training game) into that many
    equal bins first, drawn at the bin centres. A step some seed lacks is left out.
    """
    arrays = [(np.asarray(s, dtype=float), np.asarray(v, dtype=float)) for s, v in curves if len(s)]
    if not arrays:
        raise RLBreakoutError(f"no seed has data for {label!r}; run the campaign first (pictures/campaign.py).")
    if bins is None:
        shared = sorted(set.intersection(*(set(s.tolist()) for s, _ in arrays)))
        grid = np.array(shared, dtype=float)
        rows = np.array([[dict(zip(s.tolist(), v.tolist()))[x] for x in shared] for s, v in arrays]).reshape(len(arrays), -1)
    else:
        last = max(s.max() for s, _ in arrays if s.size)
        edges = np.linspace(0.0, last + 1, bins + 1)
        grid = (edges[:-1] + edges[1:]) / 2
        rows = np.array([binned(s, v, edges) for s, v in arrays])
        keep = ~np.isnan(rows).any(axis=0)
        grid, rows = grid[keep], rows[:, keep]
    if not len(grid):
        raise RLBreakoutError(f"the seeds of {label!r} share no step to average over.")
    return SeedBand(label, grid, rows.mean(axis=0), rows.min(axis=0), rows.max(axis=0), len(arrays))


def plot_bands(bands: Sequence[SeedBand], path: str | os.PathLike[str], *, title: str, ylabel: str) -> Path:
    """Draw each setting's mean across seeds as a line and its min–max as a shaded band; save a PNG."""
    if not bands:
        raise RLBreakoutError(f"no run logged the data for {title!r}; run the campaign first (pictures/campaign.py).")
    fig = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI)
    ax = fig.subplots()
    for band in bands:
        seeds = f"{band.n_seeds} seed{'s' if band.n_seeds > 1 else ''}"
        (line,) = ax.plot(band.steps, band.mean, label=f"{band.label} ({seeds})", linewidth=1.6, marker=".")
        if band.n_seeds > 1:
            ax.fill_between(band.steps, band.low, band.high, color=line.get_color(), alpha=0.2, linewidth=0)
    return _save_chart(fig, ax, path, title=title, ylabel=ylabel)
