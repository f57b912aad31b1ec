"""Runs longer than a sitting: their segments, the code they started with, and carrying them to the next machine.

A 1e7-step run takes 3 to 8 hours on a 2-core CPU; a sitting is shorter, kills what still
runs when it ends, and the next sitting starts on a new machine from a fresh clone, where
``runs/`` (git-ignored) is gone. Git is the one thing that crosses, so:

- :func:`park` copies what a resume needs (config.json, command.txt, the latest checkpoint,
  the segments, and the game and evaluation curves from TensorBoard) into
  ``results/in_progress/<key>/``, a tracked folder, to commit before the sitting ends;
- :func:`unpark` copies it back into the campaign's run folders on the next machine, the
  curves written as one TensorBoard event file, so the resumed run goes on from its checkpoint;
- :func:`code_checkout` gives a clean git worktree of the commit the run started from, so a
  resume and the final evaluation run the code that trained it, whatever main has become;
- ``segments.json`` in the run folder records every process that trained it: when, from which
  step to which, how fast, on which CPU and commit (a run may cross machines).

A segment ends at its last checkpoint: steps trained after it were lost with the process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from rlbreakout.errors import RLBreakoutError
from rlbreakout.files import disk_full_error, is_disk_full, write_text_atomic
from rlbreakout.results.plots import scalar_events_by_prefix
from rlbreakout.provenance import REPO_ROOT, cpu_model, git_commit, git_dirty
from rlbreakout.runs import COMMAND_FILE, CONFIG_FILE, SUMMARY_FILE
from rlbreakout.training import CHECKPOINT_DIR, LATEST_CHECKPOINT

#: Tracked folder of parked runs, one sub-folder per ledger key (deleted once the run is in the ledger).
IN_PROGRESS_DIR = REPO_ROOT / "results" / "in_progress"
#: Where clean worktrees of older commits go (inside the git-ignored runs/).
WORKTREES_DIR = REPO_ROOT / "runs" / "worktrees"
SEGMENTS_FILE = "segments.json"
#: The parked folder's own record: which run folder it came from, and at what step.
PARKED_FILE = "parked.json"
#: The parked curves: ``{tag: [[step, value], ...]}`` for every tag under these prefixes.
CURVES_FILE = "curves.json"
CARRIED_TAG_PREFIXES: tuple[str, ...] = ("game/", "eval/")
#: The TensorBoard folder the carried curves are written back into (SB3's first run name).
CARRIED_TB_FOLDER = "PPO_1"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def checkpoint_steps(run_dir: Path) -> int:
    """Env steps in a run folder's latest checkpoint (0 without one): SB3's zip keeps them in ``data``."""
    path = Path(run_dir) / CHECKPOINT_DIR / LATEST_CHECKPOINT
    try:
        with zipfile.ZipFile(path) as archive:
            return int(json.loads(archive.read("data")).get("num_timesteps", 0))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return 0


def _stamp(seconds: float) -> str:
    return time.strftime(TIME_FORMAT, time.localtime(seconds))


def read_segments(run_dir: Path) -> list[dict[str, Any]]:
    """The run folder's segments, oldest first (none for a folder that never recorded one)."""
    path = Path(run_dir) / SEGMENTS_FILE
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise RLBreakoutError(f"{path} is not valid JSON ({exc}); restore it from results/in_progress/ or git.") \
            from exc


def _write_segments(run_dir: Path, segments: list[dict[str, Any]]) -> None:
    write_text_atomic(Path(run_dir) / SEGMENTS_FILE, json.dumps(segments, indent=2) + "\n")


def open_segment(run_dir: Path, *, steps: int, started: float | None = None, commit: str | None = None,
                 cpu: str | None = None) -> dict[str, Any]:
    """Record that a process starts training ``run_dir`` from ``steps`` (now, on this CPU, at ``commit``)."""
    segments = close_segments(run_dir)
    started = time.time() if started is None else started
    segment = {"started_at": _stamp(started), "started_epoch": round(started, 1), "steps_at_start": int(steps),
               "cpu_model": cpu or cpu_model(), "git_commit": commit or git_commit()}
    _write_segments(run_dir, [*segments, segment])
    return segment


def _first_segment(run_dir: Path) -> dict[str, Any]:
    """A run started before segments were recorded: its first process began when config.json was written."""
    config_path = Path(run_dir) / CONFIG_FILE
    config = json.loads(config_path.read_text())
    started = config_path.stat().st_mtime
    return {"started_at": _stamp(started), "started_epoch": round(started, 1), "steps_at_start": 0,
            "cpu_model": config.get("cpu_model") or cpu_model(), "git_commit": config.get("git_commit")}


def closed_segments(run_dir: Path) -> list[dict[str, Any]]:
    """Every segment, the open one closed at the run's last saved step (summary.json's, else the checkpoint's).

    A view: nothing is written. A segment is open until it has ``steps_at_end``. A folder with
    no segments file gets its first segment from config.json. With nothing saved yet, the
    open segment stays open.
    """
    run_dir = Path(run_dir)
    segments = read_segments(run_dir) or ([_first_segment(run_dir)] if (run_dir / CONFIG_FILE).is_file() else [])
    if not segments or "steps_at_end" in segments[-1]:
        return segments
    summary_path = run_dir / SUMMARY_FILE
    checkpoint = run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT
    if summary_path.is_file():
        steps, ended = int(json.loads(summary_path.read_text())["timesteps"]), summary_path.stat().st_mtime
    elif checkpoint.is_file():
        steps, ended = checkpoint_steps(run_dir), checkpoint.stat().st_mtime
    else:
        return segments
    segment = dict(segments[-1])
    wall = max(ended - float(segment["started_epoch"]), 0.0)
    trained = max(steps - int(segment["steps_at_start"]), 0)
    segment.update({"ended_at": _stamp(ended), "steps_at_end": steps, "steps": trained,
                    "wall_seconds": round(wall, 1),
                    "steps_per_second": round(trained / wall, 1) if wall > 0 else 0.0})
    return [*segments[:-1], segment]


def close_segments(run_dir: Path) -> list[dict[str, Any]]:
    """Close the open segment for good (its process has ended) and return every segment."""
    segments = closed_segments(run_dir)
    if segments:
        _write_segments(run_dir, segments)
    return segments


def carried_curves(run_dir: Path, prefixes: Iterable[str] = CARRIED_TAG_PREFIXES) -> dict[str, list[list[float]]]:
    """Every point of the tags under ``prefixes`` in the run's event files, merged across processes.

    Within a tag, a later event file replaces the earlier ones from its first step on (the
    steps after the checkpoint it resumed from were lost), the rule of ``ledger.training_curve``.
    Games of several envs ending on one step are all kept.
    """
    curves: dict[str, list[list[float]]] = {}
    for file_events in scalar_events_by_prefix(run_dir, tuple(prefixes)):
        for tag, events in file_events.items():
            if events:
                kept = [p for p in curves.get(tag, []) if p[0] < events[0][0]]
                curves[tag] = kept + [[step, value] for step, value in events]
    return {tag: sorted(points, key=lambda p: p[0]) for tag, points in sorted(curves.items())}


def write_curves(curves: Mapping[str, list[list[float]]], tb_dir: Path) -> None:
    """Write carried curves back as one TensorBoard event file in ``tb_dir``."""
    writer = SummaryWriter(log_dir=str(tb_dir))
    try:
        for tag, points in curves.items():
            for step, value in points:
                writer.add_scalar(tag, value, int(step))
    finally:
        writer.close()


def _model_file(run_dir: Path) -> Path | None:
    summary_path = run_dir / SUMMARY_FILE
    if not summary_path.is_file():
        return None
    model_path = Path(str(json.loads(summary_path.read_text()).get("model_path", "")))
    for candidate in (model_path, REPO_ROOT / model_path, run_dir / model_path.name):
        if str(model_path) and candidate.is_file() and candidate.parent.resolve() == run_dir.resolve():
            return candidate
    return None


def park(key: str, run_dir: Path, in_progress: Path = IN_PROGRESS_DIR) -> Path:
    """Copy what resuming ``run_dir`` needs into ``in_progress/<key>/`` (replacing an older park); its path.

    Written beside, then swapped in, so a park killed half-way, or stopped by a full disk
    (one line naming the folder and the space left), leaves the previous one whole.
    """
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT).is_file():
        raise RLBreakoutError(f"{run_dir} has no {CHECKPOINT_DIR}/{LATEST_CHECKPOINT} yet: nothing to park; "
                              f"wait for its first checkpoint (--checkpoint-freq).")
    segments = closed_segments(run_dir)  # the process may still run: its segment stays open in run_dir
    target = Path(in_progress) / key
    staging = target.with_name(f".{key}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _stage(key, run_dir, staging, segments)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if is_disk_full(exc, staging):
            raise disk_full_error(target) from exc
        raise
    if target.exists():
        old = target.with_name(f".{key}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old)
    else:
        staging.rename(target)
    return target


def _stage(key: str, run_dir: Path, staging: Path, segments: list[dict[str, Any]]) -> None:
    (staging / CHECKPOINT_DIR).mkdir(parents=True)
    for name in (CONFIG_FILE, COMMAND_FILE, SUMMARY_FILE):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, staging / name)
    shutil.copy2(run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT, staging / CHECKPOINT_DIR / LATEST_CHECKPOINT)
    model = _model_file(run_dir)
    if model is not None:
        shutil.copy2(model, staging / model.name)
    (staging / SEGMENTS_FILE).write_text(json.dumps(segments, indent=2) + "\n")
    (staging / CURVES_FILE).write_text(json.dumps(carried_curves(run_dir), separators=(",", ":")) + "\n")
    (staging / PARKED_FILE).write_text(json.dumps({
        "key": key, "run_folder": run_dir.name, "checkpoint_steps": checkpoint_steps(run_dir),
        "finished": (run_dir / SUMMARY_FILE).is_file(), "parked_at": _stamp(time.time())}, indent=2) + "\n")


def parked(key: str, in_progress: Path = IN_PROGRESS_DIR) -> dict[str, Any] | None:
    """The parked record of ``key`` (None when it is not parked)."""
    path = Path(in_progress) / key / PARKED_FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise RLBreakoutError(f"{path} is not valid JSON ({exc}); restore it with git.") from exc


def unpark(key: str, script: str, logdir: Path, in_progress: Path = IN_PROGRESS_DIR) -> Path | None:
    """Copy a parked run back to ``logdir/<script>/<its folder>`` unless that folder exists; its path.

    None when ``key`` is not parked. The curves become one event file, older than anything
    the resumed process writes, so its later points replace them from its checkpoint on.
    """
    record = parked(key, in_progress)
    if record is None:
        return None
    source = Path(in_progress) / key
    run_dir = Path(logdir) / script / str(record["run_folder"])
    if run_dir.exists():
        return run_dir
    staging = run_dir.with_name(f".{run_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(PARKED_FILE, CURVES_FILE))
    curves = json.loads((source / CURVES_FILE).read_text()) if (source / CURVES_FILE).is_file() else {}
    if curves:
        write_curves(curves, staging / CARRIED_TB_FOLDER)
    staging.rename(run_dir)
    return run_dir


def unpark_done(key: str, in_progress: Path = IN_PROGRESS_DIR) -> None:
    """Forget the park of a run that reached the ledger (commit the deletion with the entry)."""
    shutil.rmtree(Path(in_progress) / key, ignore_errors=True)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)


def code_checkout(commit: str | None, repo: Path = REPO_ROOT, worktrees: Path = WORKTREES_DIR) -> Path:
    """A checkout of ``commit``: ``repo`` itself when it is at that commit, else a clean worktree of it.

    The worktree is made once (``git worktree add --detach``) and reused; one that was edited
    is refused, since the run must go on with the code it started with.
    """
    if not commit or commit == "unknown":
        raise RLBreakoutError("the run's config.json names no git commit, so the code it started with is unknown; "
                              "resume it by hand with the script's --resume.")
    if git_commit(repo) == commit:  # the campaign refuses a dirty tree unless told (--allow-dirty)
        return Path(repo)
    path = Path(worktrees) / commit[:12]
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = _git(Path(repo), "worktree", "add", "--detach", str(path), commit)
        if made.returncode != 0:
            raise RLBreakoutError(f"cannot check out {commit[:12]}, the commit the run started from: "
                                  f"{made.stderr.strip().splitlines()[-1] if made.stderr.strip() else 'git failed'}; "
                                  f"fetch it (git fetch origin) and try again.")
    if git_commit(path) != commit or git_dirty(path) is not False:
        raise RLBreakoutError(f"{path} is not a clean checkout of {commit[:12]}; remove it "
                              f"(git worktree remove --force {path}) and try again.")
    return path
