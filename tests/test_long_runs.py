"""Runs longer than a sitting: segments, parking in results/in_progress, the code a run started with."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from rlbreakout.results.campaign import CAMPAIGN, PlannedRun, campaign_status, run_campaign
from rlbreakout.errors import RLBreakoutError
from rlbreakout.results.ledger import read_ledger, training_curve
from rlbreakout.results.long_runs import (
    CURVES_FILE,
    SEGMENTS_FILE,
    checkpoint_steps,
    close_segments,
    closed_segments,
    code_checkout,
    open_segment,
    park,
    parked,
    read_segments,
    unpark,
)
from rlbreakout.runs import CONFIG_FILE

KEY = "2.3_copying_hp_zoo__BreakoutNoFrameskip-v4__4096__s0"


def write_checkpoint(run_dir: Path, steps: int) -> Path:
    """A zip laid out as SB3 saves one (``data`` holds ``num_timesteps``): what checkpoint_steps reads."""
    path = run_dir / "checkpoints" / "latest.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", json.dumps({"num_timesteps": steps}))
        archive.writestr("policy.pth", os.urandom(2048))
    return path


def make_run_folder(root: Path, steps: int = 0, scores: tuple[tuple[int, float], ...] = ()) -> Path:
    run_dir = root / "2.3_copying_hp_zoo" / "BreakoutNoFrameskip-v4__s0__20261207-010000"
    run_dir.mkdir(parents=True)
    (run_dir / CONFIG_FILE).write_text(json.dumps({"git_commit": "abc123", "cpu_model": "Test CPU", "seed": 0}))
    (run_dir / "command.txt").write_text("python 2_baselines/2.3_copying_hp_zoo.py\n")
    if steps:
        write_checkpoint(run_dir, steps)
    if scores:
        writer = SummaryWriter(log_dir=str(run_dir / "PPO_1"))
        for step, score in scores:
            writer.add_scalar("game/score", score, step)
            writer.add_scalar("train/loss", 0.5, step)  # not carried: only game/ and eval/ tags are
        writer.close()
    return run_dir


def test_a_run_without_segments_gets_its_first_from_config_json(tmp_path: Path) -> None:
    run_dir = make_run_folder(tmp_path)
    (only,) = closed_segments(run_dir)
    assert only["steps_at_start"] == 0 and only["cpu_model"] == "Test CPU" and only["git_commit"] == "abc123"
    assert "steps_at_end" not in only  # nothing saved yet: still open
    write_checkpoint(run_dir, 4096)
    (only,) = closed_segments(run_dir)
    assert only["steps_at_end"] == 4096 and only["steps"] == 4096 and only["wall_seconds"] >= 0
    assert not (run_dir / SEGMENTS_FILE).exists()  # a view writes nothing


def test_a_segment_ends_at_the_last_checkpoint_and_a_closed_one_stays(tmp_path: Path) -> None:
    run_dir = make_run_folder(tmp_path, steps=1000)
    close_segments(run_dir)
    open_segment(run_dir, steps=checkpoint_steps(run_dir), commit="def456", cpu="Other CPU")
    checkpoint = write_checkpoint(run_dir, 3000)
    os.utime(checkpoint, (checkpoint.stat().st_mtime + 100, checkpoint.stat().st_mtime + 100))
    first, second = close_segments(run_dir)
    assert (first["steps_at_start"], first["steps_at_end"]) == (0, 1000)
    assert (second["steps_at_start"], second["steps_at_end"], second["steps"]) == (1000, 3000, 2000)
    assert second["cpu_model"] == "Other CPU" and second["git_commit"] == "def456"
    assert 99 <= second["wall_seconds"] <= 200 and second["steps_per_second"] == pytest.approx(
        2000 / second["wall_seconds"], rel=0.01)
    write_checkpoint(run_dir, 5000)  # a later checkpoint does not change a closed segment
    assert read_segments(run_dir)[-1]["steps_at_end"] == 3000 == close_segments(run_dir)[-1]["steps_at_end"]


def test_park_and_unpark_give_the_run_back_with_its_curves(tmp_path: Path) -> None:
    scores = ((100, 1.0), (100, 3.0), (250, 7.0), (900, 11.0))  # two games ending on one step: both kept
    run_dir = make_run_folder(tmp_path / "old_machine", steps=900, scores=scores)
    parked_dir = park(KEY, run_dir, tmp_path / "in_progress")
    assert parked(KEY, tmp_path / "in_progress")["checkpoint_steps"] == 900
    assert not (run_dir / SEGMENTS_FILE).exists()  # the process may still run: its folder is untouched
    assert set(json.loads((parked_dir / CURVES_FILE).read_text())) == {"game/score"}
    new_logdir = tmp_path / "new_machine"
    back = unpark(KEY, "2.3_copying_hp_zoo", new_logdir, tmp_path / "in_progress")
    assert back == new_logdir / "2.3_copying_hp_zoo" / run_dir.name
    assert (back / "checkpoints" / "latest.zip").read_bytes() == (run_dir / "checkpoints" / "latest.zip").read_bytes()
    assert (back / CONFIG_FILE).read_text() == (run_dir / CONFIG_FILE).read_text()
    assert training_curve(back) == training_curve(run_dir) == [[s, v] for s, v in scores]
    assert read_segments(back)[0]["steps_at_end"] == 900
    assert unpark(KEY, "2.3_copying_hp_zoo", new_logdir, tmp_path / "in_progress") == back  # there already: kept


def test_a_new_park_replaces_the_old_one_whole(tmp_path: Path) -> None:
    run_dir = make_run_folder(tmp_path / "runs", steps=100)
    park(KEY, run_dir, tmp_path / "in_progress")
    write_checkpoint(run_dir, 700)
    park(KEY, run_dir, tmp_path / "in_progress")
    assert parked(KEY, tmp_path / "in_progress")["checkpoint_steps"] == 700
    assert sorted(p.name for p in (tmp_path / "in_progress").iterdir()) == [KEY]  # no staging folder left
    with pytest.raises(RLBreakoutError, match="nothing to park"):
        park(KEY, make_run_folder(tmp_path / "other"), tmp_path / "in_progress")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_resume_gets_a_clean_worktree_of_the_commit_the_run_started_from(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "code.py").write_text("VERSION = 1\n")
    git(repo, "add", "code.py")
    git(repo, "commit", "-qm", "one")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "code.py").write_text("VERSION = 2\n")
    git(repo, "commit", "-qam", "two")
    assert code_checkout(git(repo, "rev-parse", "HEAD"), repo, tmp_path / "worktrees") == repo
    old = code_checkout(first, repo, tmp_path / "worktrees")
    assert old != repo and (old / "code.py").read_text() == "VERSION = 1\n"
    assert code_checkout(first, repo, tmp_path / "worktrees") == old  # made once, reused
    (old / "code.py").write_text("VERSION = 3\n")
    with pytest.raises(RLBreakoutError, match="not a clean checkout"):
        code_checkout(first, repo, tmp_path / "worktrees")
    with pytest.raises(RLBreakoutError, match="cannot check out 0000000000ab"):
        code_checkout("0000000000ab" * 3 + "0000", repo, tmp_path / "worktrees")
    with pytest.raises(RLBreakoutError, match="names no git commit"):
        code_checkout(None, repo, tmp_path / "worktrees")


def test_the_long_runs_span_sittings_and_the_others_do_not() -> None:
    assert [plan.timesteps for plan in CAMPAIGN if plan.spans_sittings] == [10_000_000] * 4
    assert all(plan.timesteps <= 1_000_000 for plan in CAMPAIGN if not plan.spans_sittings)


@pytest.mark.slow
def test_a_long_run_stops_at_the_hours_parks_and_resumes_on_a_new_machine(tmp_path: Path) -> None:
    """The real thing, with a tiny 2.3: stopped past the deadline at a checkpoint, parked, its run folder
    deleted (a new machine), then copied back, resumed to the end, evaluated, in the ledger with two segments."""
    tiny = ("--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1", "--eval-episodes", "1",
            "--eval-freq", "0", "--gif-games", "0", "--device", "cpu", "--checkpoint-freq", "64")
    plan = PlannedRun("2_baselines/2.3_copying_hp_zoo.py", "BreakoutNoFrameskip-v4", 0, 512, tiny, eval_games=1,
                      label="tiny", spans_sittings=True)
    ledger, logdir, in_progress = tmp_path / "results", tmp_path / "runs", tmp_path / "in_progress"
    assert run_campaign([plan], hours=1e-6, ledger_dir=ledger, logdir=logdir, dirty=False,
                        in_progress=in_progress) == []
    record = parked(plan.key, in_progress)
    assert record is not None and 0 < record["checkpoint_steps"] < plan.timesteps
    (status,) = campaign_status([plan], ledger, logdir, in_progress)
    assert status.steps_done == record["checkpoint_steps"] and "to resume" in status.line()
    shutil.rmtree(logdir)  # the next sitting's machine has no runs/
    (status,) = campaign_status([plan], ledger, logdir, in_progress)
    assert status.is_parked and status.run_dir is None and "parked in results/in_progress" in status.line()
    written = run_campaign([plan], hours=1, ledger_dir=ledger, logdir=logdir, dirty=False, in_progress=in_progress)
    assert len(written) == 1 and not (in_progress / plan.key).exists()
    entry = read_ledger(ledger)[plan.key]
    first, second = entry["segments"]
    assert first["steps_at_end"] == record["checkpoint_steps"] == second["steps_at_start"]
    assert second["steps_at_end"] == entry["summary"]["timesteps"] >= plan.timesteps
    assert all(s["steps_per_second"] > 0 and s["cpu_model"] for s in (first, second))
