"""The results ledger: one small JSON file per finished run in ``results/``, and its figures.

Every result figure of the READMEs (tables, curves, the sentences that compare) is read
from here, never typed in by hand. A ledger file holds what its run folder said about
itself (summary.json: command, commit, dirty flag, CPU, steps, wall time, steps/s), its
periodic evaluations, its training games as a (step, score) curve read from TensorBoard,
and the whole-game evaluations made after training on each env. It holds no weights, so
a file stays far below :data:`MAX_LEDGER_BYTES` and git keeps it forever.

:func:`aggregate` turns the entries of a group of seeds into the README's figures: the
mean across seeds of each seed's mean (and median), with the seeds' min and max.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from rlbreakout.errors import RLBreakoutError
from rlbreakout.files import write_text_atomic
from rlbreakout.provenance import REPO_ROOT, machine_label
from rlbreakout.results.plots import read_scalars, scalar_events_per_file
from rlbreakout.runs import COMMAND_FILE, CONFIG_FILE, SUMMARY_FILE, sanitize_env_id

#: The ledger folder, at the repository root.
LEDGER_DIR = REPO_ROOT / "results"
#: A ledger file is results, not artefacts: keep each small enough to review in a diff.
MAX_LEDGER_BYTES = 200_000
#: Format of a ledger file; bumped when a key changes meaning.
LEDGER_VERSION = 1
#: TensorBoard tag of the real (unclipped, all lives) score of each training game.
GAME_SCORE_TAG = "game/score"
#: TensorBoard tags of the periodic whole-game evaluation during training (MultiEnvEvalCallback).
EVAL_TAGS = {"mean_reward": "eval/eval/mean_reward", "median_reward": "eval/eval/median_reward"}
#: A longer training curve is thinned to this many points (evenly by index) to stay small.
MAX_CURVE_POINTS = 4_000
#: summary.json keys too bulky or too local for the ledger (kept in the run folder).
SUMMARY_KEYS_LEFT_OUT = ("train_game_scores", "eval_history")


@dataclass(frozen=True)
class Evaluation:
    """Whole-game scores of a finished model on one env (the campaign plays 20 games)."""

    env_id: str
    scores: tuple[float, ...]
    command: str = ""

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def median(self) -> float:
        return statistics.median(self.scores)

    def as_dict(self) -> dict[str, Any]:
        return {"env_id": self.env_id, "n_games": len(self.scores), "mean_reward": self.mean,
                "median_reward": self.median, "scores": list(self.scores), "command": self.command}


def ledger_name(key: str) -> str:
    """The file name of a planned run's entry: its key, made safe for a file system."""
    return re.sub(r"[^\w.+-]", "-", key) + ".json"


def training_curve(run_dir: Path, tag: str = GAME_SCORE_TAG) -> list[list[float]]:
    """``[[step, score], ...]`` of every training game logged under ``tag`` (thinned if very long).

    Games of several envs can end on the same step, so every event is kept (not one per step,
    as :func:`rlbreakout.results.plots.read_scalars` keeps). A resumed run writes a later event file
    from its checkpoint's step on: the earlier file's games from that step on were lost with
    the interrupted process's weights, so the later file's replace them.
    """
    points: list[list[float]] = []
    for file_events in scalar_events_per_file(run_dir, tag):
        events = [[step, value] for step, value in file_events]
        if events:
            points = [p for p in points if p[0] < events[0][0]] + events
    points.sort(key=lambda p: p[0])
    if len(points) > MAX_CURVE_POINTS:
        stride = len(points) / MAX_CURVE_POINTS
        points = [points[int(i * stride)] for i in range(MAX_CURVE_POINTS - 1)] + [points[-1]]
    return points


def evaluation_history(run_dir: Path) -> list[dict[str, float]]:
    """``[{"step", "mean_reward", "median_reward"}, ...]`` of the periodic evaluations.

    Read from TensorBoard rather than summary.json, whose history holds only the evaluations
    of the last process: a resumed run logged its earlier ones into the same folder.
    """
    columns = {key: dict(zip(*read_scalars(run_dir, tag))) for key, tag in EVAL_TAGS.items()}
    steps = sorted(columns["mean_reward"])
    return [{"step": int(step), **{key: float(values[step]) for key, values in columns.items() if step in values}}
            for step in steps]


def start_provenance(run_dir: Path, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The commit a run started from (config.json), dirty if the code changed before it finished.

    summary.json records the checkout as it was at the end; a 50-minute run can end on a later
    commit than it trained with, so the ledger names the start and marks any difference.
    """
    config_path = run_dir / CONFIG_FILE
    if not config_path.is_file():
        return {}
    config = json.loads(config_path.read_text())
    started, finished = config.get("git_commit"), summary.get("git_commit")
    changed = started is not None and finished is not None and started != finished
    return {"git_commit": started if started is not None else finished, "git_commit_at_finish": finished,
            "git_dirty": bool(config.get("git_dirty") or summary.get("git_dirty") or changed)}


def build_entry(key: str, planned: Mapping[str, Any], run_dir: Path, evaluations: Sequence[Evaluation]) -> dict[str, Any]:
    """The ledger entry of a finished run folder (its summary.json must exist)."""
    summary_path = Path(run_dir) / SUMMARY_FILE
    if not summary_path.is_file():
        raise RLBreakoutError(f"{run_dir} has no {SUMMARY_FILE}: the run did not finish, so it has no ledger entry.")
    summary = json.loads(summary_path.read_text())
    summary.update(start_provenance(Path(run_dir), summary))
    command_path = Path(run_dir) / COMMAND_FILE
    return {
        "ledger_version": LEDGER_VERSION,
        "key": key,
        "planned": dict(planned),
        "command": command_path.read_text().strip() if command_path.is_file() else "",
        "summary": {k: v for k, v in summary.items() if k not in SUMMARY_KEYS_LEFT_OUT},
        "eval_history": evaluation_history(Path(run_dir)),
        "train_curve": training_curve(Path(run_dir)),
        "evaluations": {e.env_id: e.as_dict() for e in evaluations},
    }


def dumps(entry: Mapping[str, Any]) -> str:
    """JSON with two-space indents, but each list of plain numbers on one line (short diffs)."""
    text = json.dumps(entry, indent=2, sort_keys=True)
    number = r"(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|NaN|-?Infinity)"
    number_list = re.compile(rf"\[\s*{number}(?:\s*,\s*{number})*\s*\]")
    return number_list.sub(lambda m: re.sub(r"\s+", " ", m.group(0)).replace("[ ", "[").replace(" ]", "]"),
                           text) + "\n"


def write_entry(entry: Mapping[str, Any], ledger_dir: Path = LEDGER_DIR) -> Path:
    """Write the entry atomically (a killed process or a full disk leaves no half file); refuse an oversized one."""
    text = dumps(entry)
    if len(text.encode()) > MAX_LEDGER_BYTES:
        raise RLBreakoutError(f"ledger entry {entry['key']} is {len(text.encode())} bytes, over {MAX_LEDGER_BYTES}; "
                              f"thin its curves (MAX_CURVE_POINTS).")
    ledger_dir.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(ledger_dir / ledger_name(str(entry["key"])), text)


def read_ledger(ledger_dir: Path = LEDGER_DIR) -> dict[str, dict[str, Any]]:
    """Every entry of the ledger, by key (an empty or missing folder is an empty ledger)."""
    entries: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(ledger_dir).glob("*.json")):
        try:
            entry = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise RLBreakoutError(f"ledger file {path} is not valid JSON ({exc}); restore it with git.") from exc
        entries[str(entry["key"])] = entry
    return entries


@dataclass(frozen=True)
class Spread:
    """The mean across seeds of one per-seed figure, with the seeds' min and max."""

    mean: float
    low: float
    high: float
    n: int

    def text(self, digits: int = 1) -> str:
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def spread(values: Iterable[float]) -> Spread | None:
    """:class:`Spread` of per-seed values (None for no seeds)."""
    values = list(values)
    if not values:
        return None
    return Spread(statistics.fmean(values), min(values), max(values), len(values))


@dataclass(frozen=True)
class GroupFigures:
    """What a README table row says of the seeds of one planned group, on each eval env."""

    seeds: tuple[int, ...]
    means: dict[str, Spread]
    medians: dict[str, Spread]
    steps_per_second: Spread | None
    wall_seconds: Spread | None
    commits: tuple[str, ...]
    cpus: tuple[str, ...]
    dirty: bool


def run_speed(entry: Mapping[str, Any]) -> tuple[float, float]:
    """(env steps/s, wall seconds) of one ledger entry.

    A run that spanned sittings has several segments; its summary.json speaks only for the
    last process, so its speed is all segments' steps over all their wall time.
    """
    segments = entry.get("segments") or []
    if len(segments) > 1:
        wall = sum(float(segment["wall_seconds"]) for segment in segments)
        steps = sum(int(segment["steps"]) for segment in segments)
        return (steps / wall if wall > 0 else 0.0), wall
    summary = entry["summary"]
    return float(summary["steps_per_second"]), float(summary["wall_seconds"])


def aggregate(entries: Sequence[Mapping[str, Any]], eval_envs: Sequence[str]) -> GroupFigures:
    """Figures of a group of seeds: per env, mean over seeds of per-seed means (and medians)."""
    means: dict[str, Spread] = {}
    medians: dict[str, Spread] = {}
    for env_id in eval_envs:
        evaluations = [e["evaluations"][env_id] for e in entries if env_id in e.get("evaluations", {})]
        mean_spread = spread(ev["mean_reward"] for ev in evaluations)
        median_spread = spread(ev["median_reward"] for ev in evaluations)
        if mean_spread is not None and median_spread is not None:
            means[env_id], medians[env_id] = mean_spread, median_spread
    summaries = [e["summary"] for e in entries]
    return GroupFigures(
        seeds=tuple(sorted(int(s["seed"]) for s in summaries)),
        means=means,
        medians=medians,
        steps_per_second=spread(run_speed(e)[0] for e in entries),
        wall_seconds=spread(run_speed(e)[1] for e in entries),
        commits=tuple(sorted({str(s.get("git_commit", "unknown"))[:7] for s in summaries})),
        cpus=tuple(sorted({machine_label(s) for s in summaries})),
        dirty=any(bool(s.get("git_dirty")) for s in summaries),
    )


def env_label(env_id: str) -> str:
    """A short column label: ``BreakoutNoFrameskip-v4`` -> ``NoFrameskip-v4``."""
    return sanitize_env_id(env_id).replace("ALE-", "").replace("Breakout", "").lstrip("-") or env_id
