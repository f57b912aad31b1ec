"""The campaign: the plan as data, run folders found, resumed and evaluated, the ledger written only on success."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_script
from helpers import wait_until
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.results.campaign import (
    CAMPAIGN,
    EVAL_ENVS,
    ChildRun,
    PlannedRun,
    campaign_status,
    checkpoint_steps,
    estimate,
    find_run_folder,
    in_repo,
    require_clean_tree,
    run_campaign,
    select_plans,
)
from rlbreakout.results.ledger import read_ledger

ZOO = "2_baselines/2.3_copying_hp_zoo.py"
#: A few seconds of real 2.3 training (2 envs, 64 steps a rollout).
TINY = ("--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1", "--eval-episodes", "1",
        "--eval-freq", "0", "--gif-games", "0", "--device", "cpu")


def tiny_plan(timesteps: int = 128, *extra: str) -> PlannedRun:
    return PlannedRun(ZOO, "BreakoutNoFrameskip-v4", 0, timesteps, (*TINY, *extra), eval_games=1, label="tiny")


def test_the_plan_is_the_issues_runs_in_order() -> None:
    assert len(CAMPAIGN) == 14 and len({plan.key for plan in CAMPAIGN}) == 14
    first_six = [(plan.name, plan.seed, plan.env_id, plan.timesteps, plan.fast) for plan in CAMPAIGN[:6]]
    assert first_six == [(name, seed, "BreakoutNoFrameskip-v4", 1_000_000, True)
                         for name in ("3.3_aimbot_training", "2.3_copying_hp_zoo") for seed in (0, 1, 2)]
    assert (CAMPAIGN[6].name, CAMPAIGN[6].env_id, CAMPAIGN[6].timesteps) == ("3.3_aimbot_training", "ALE/Breakout-v5",
                                                                            1_000_000)
    assert [plan.name for plan in CAMPAIGN[7:10]] == ["1.3_train", "2.1_envs", "2.2_callbacks"]
    long_runs = [(plan.name, plan.seed, plan.env_id, plan.timesteps, plan.fast) for plan in CAMPAIGN[10:]]
    assert long_runs == [("2.3_copying_hp_zoo", 0, "BreakoutNoFrameskip-v4", 10_000_000, True)] + [
        ("3.3_aimbot_training", seed, "BreakoutNoFrameskip-v4", 10_000_000, True) for seed in (0, 1, 2)]
    assert all(plan.eval_envs == EVAL_ENVS and plan.eval_games == 20 for plan in CAMPAIGN)


@pytest.mark.slow
@pytest.mark.parametrize("plan", CAMPAIGN[7:10], ids=lambda plan: plan.name)
def test_default_command_runs_use_the_script_s_own_defaults(plan: PlannedRun) -> None:
    """Spelling out --env and --timesteps must not change what the default command trains."""
    assert plan.flags == ()
    help_text = re.sub(r"\s+", " ", run_script(plan.script, "--help").stdout)  # argparse wraps lines
    default = re.search(r"--timesteps TIMESTEPS .*?\(default: (\d+)\)", help_text)
    assert default and int(default.group(1)) == plan.timesteps
    assert re.search(rf"--env ENV [^-]*\(default: {plan.env_id}\)", help_text)
    assert re.search(r"--seed SEED [^-]*\(default: 0\)", help_text) and plan.seed == 0


def test_flags_match_the_config_of_a_run_folder() -> None:
    plan = tiny_plan(128, "--fast")
    config = {"env": "BreakoutNoFrameskip-v4", "seed": 0, "timesteps": 128, "n_envs": 2, "n_steps": 32, "batch_size": 32,
              "n_epochs": 1, "eval_episodes": 1, "eval_freq": 0, "gif_games": 0, "device": "cpu", "fast": True}
    assert plan.matches(config)
    assert not plan.matches({**config, "seed": 1}) and not plan.matches({**config, "fast": False})
    assert not tiny_plan(256).matches(config)
    assert plan.key != tiny_plan(128).key and plan.group == PlannedRun(ZOO, plan.env_id, 5, 128, plan.flags).group
    default_command = PlannedRun(ZOO, "BreakoutNoFrameskip-v4", 0, 128)
    assert not default_command.matches(config) and default_command.matches({**config, "fast": False})


def test_keys_keep_flag_values_and_the_committed_names() -> None:
    marker = PlannedRun(ZOO, "BreakoutNoFrameskip-v4", 0, 128, ("--prediction", "marker"))
    none = PlannedRun(ZOO, "BreakoutNoFrameskip-v4", 0, 128, ("--prediction", "none"))
    assert marker.key != none.key and marker.key.endswith("__prediction-marker__s0")
    # ledger files already committed keep their names
    assert CAMPAIGN[0].key == "3.3_aimbot_training__BreakoutNoFrameskip-v4__1000000__fast__s0"
    assert PlannedRun(ZOO, "BreakoutNoFrameskip-v4", 0, 128, ("--gif-games", "3")).key == \
        PlannedRun(ZOO, "BreakoutNoFrameskip-v4", 0, 128).key  # a gif changes nothing trained


def test_flags_are_grouped_with_their_values() -> None:
    plan = PlannedRun(ZOO, "BreakoutNoFrameskip-v4", 0, 128, ("--fast", "--gif-games", "0", "--prediction", "none"))
    assert plan.flag_groups() == [("fast", ("--fast",)), ("gif_games", ("--gif-games", "0")),
                                  ("prediction", ("--prediction", "none"))]
    assert plan.flag_values() == {"fast": "True", "gif_games": "0", "prediction": "none"}
    assert PlannedRun(ZOO, "BreakoutNoFrameskip-v4", 0, 128).flag_groups() == []


def test_estimate_uses_the_last_measured_run_of_the_script_on_this_cpu() -> None:
    plan = CAMPAIGN[0]
    entry = {"planned": plan.as_dict(), "campaign": {"eval_seconds": 100.0, "finished_at": "2026-12-04T12:00:00"},
             "summary": {"wall_seconds": 3000.0, "train_seconds": 2500.0, "timesteps": 1_000_000,
                         "steps_per_second": 400.0, "cpu_model": "CPU A"}}
    # 1e6 steps at 400 steps/s of training, times that run's wall/train ratio, plus its evaluation
    assert estimate(plan, {"a": entry}, cpu="CPU A").seconds == pytest.approx(2500.0 * 3000.0 / 2500.0 + 100.0)
    assert "this CPU" in estimate(plan, {"a": entry}, cpu="CPU A").source
    assert "CPU A" in estimate(plan, {"a": entry}, cpu="CPU B").source
    other = CAMPAIGN[3]  # 2.3, also --fast: the aimbot's steps/s, since 2.3 has no run yet
    assert estimate(other, {"a": entry}, cpu="CPU A").seconds == pytest.approx(1_000_000 / 400.0 + 100.0)
    assert "guess" in estimate(CAMPAIGN[7], {"a": entry}, cpu="CPU A").source  # no stock run measured


def test_children_see_paths_inside_the_repository_as_relative(tmp_path: Path) -> None:
    assert in_repo(REPO_ROOT / "runs" / "campaign") == Path("runs/campaign")
    assert in_repo(tmp_path) == tmp_path  # outside: kept as given
    assert CAMPAIGN[0].train_args(in_repo(REPO_ROOT / "runs" / "campaign"))[-2:] == ["--logdir", "runs/campaign"]


def test_a_dirty_tree_is_refused_unless_allowed() -> None:
    with pytest.raises(RLBreakoutError, match="commit or stash"):
        require_clean_tree(True, allow_dirty=False)
    require_clean_tree(True, allow_dirty=True)
    require_clean_tree(False, allow_dirty=False)


@pytest.mark.slow
def test_a_failing_run_writes_nothing(tmp_path: Path) -> None:
    bad = tiny_plan(128, "--batch-size", "48")  # 48 does not divide 2 x 32: the script exits 2
    with pytest.raises(RLBreakoutError, match="exited 2; nothing written"):
        run_campaign([bad], hours=1, ledger_dir=tmp_path / "results", logdir=tmp_path / "runs", dirty=False)
    assert read_ledger(tmp_path / "results") == {}


@pytest.mark.slow
def test_campaign_trains_evaluates_both_envs_and_writes_the_ledger(tmp_path: Path) -> None:
    plans = [tiny_plan(128)]
    lines: list[str] = []
    child = ChildRun(echo=lines.append)
    written = run_campaign(plans, hours=1, ledger_dir=tmp_path / "results", logdir=tmp_path / "runs", child=child,
                           dirty=False)
    assert [p.name for p in written] == [f"{plans[0].key}.json"]
    entry = read_ledger(tmp_path / "results")[plans[0].key]
    assert entry["summary"]["timesteps"] >= 128 and entry["summary"]["seed"] == 0
    assert set(entry["evaluations"]) == set(EVAL_ENVS)
    assert all(ev["n_games"] == 1 and "--load" in ev["command"] for ev in entry["evaluations"].values())
    assert entry["planned"]["flags"] == list(plans[0].flags)
    assert any(line.startswith("$ ") for line in lines)
    # in the ledger now: a second campaign runs nothing, and the status says so
    assert run_campaign(plans, hours=1, ledger_dir=tmp_path / "results", logdir=tmp_path / "runs", dirty=False) == []
    assert campaign_status(plans, tmp_path / "results", tmp_path / "runs")[0].in_ledger
    # no time left: a missing run is skipped, not started
    other = tiny_plan(256)
    assert run_campaign([other], hours=1e-6, ledger_dir=tmp_path / "results", logdir=tmp_path / "runs",
                        dirty=False) == []


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a loaded 2-core machine took 5 minutes to reach a script's first checkpoint
def test_an_interrupted_run_is_resumed_in_its_folder(tmp_path: Path) -> None:
    plan = tiny_plan(2048, "--checkpoint-freq", "64")  # a save every rollout: SIGINT may land inside one
    logdir = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, *plan.train_args(logdir)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_until(lambda: list(logdir.rglob("checkpoints/latest.zip")), 600,
                   "checkpoint after the first rollout (--checkpoint-freq 64)", proc, poll=0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err[-2000:]
    interrupted, finished = find_run_folder(plan, logdir)
    assert interrupted is not None and not finished
    assert 0 < checkpoint_steps(interrupted) < plan.timesteps
    assert campaign_status([plan], tmp_path / "results", logdir)[0].line().strip().startswith("to resume")
    run_campaign([plan], hours=1, ledger_dir=tmp_path / "results", logdir=logdir, dirty=False)
    entry = read_ledger(tmp_path / "results")[plan.key]
    assert entry["summary"]["run_dir"] == str(interrupted) and entry["summary"]["timesteps"] >= 2048
    assert entry["summary"]["steps_per_second"] > 0


def test_only_selects_planned_runs_by_part_of_their_key() -> None:
    assert select_plans(CAMPAIGN, []) == list(CAMPAIGN) and select_plans(CAMPAIGN, [""]) == list(CAMPAIGN)
    defaults = select_plans(CAMPAIGN, ["1.3_train", "2.1_envs", "2.2_callbacks"])
    assert [plan.name for plan in defaults] == ["1.3_train", "2.1_envs", "2.2_callbacks"]
    assert [plan.seed for plan in select_plans(CAMPAIGN, ["__s2"])] == [2, 2, 2]  # 3.3, 2.3, 3.3 at 1e7: plan order kept
    with pytest.raises(ConfigError, match="--only 1.4_nothing matches no planned run"):
        select_plans(CAMPAIGN, ["1.3_train", "1.4_nothing"])


@pytest.mark.slow
def test_campaign_script_lists_the_plan(tmp_path: Path) -> None:
    result = run_script("pictures/campaign.py", "--list", "--ledger", str(tmp_path / "results"),
                        "--logdir", str(tmp_path / "runs"), "--in-progress", str(tmp_path / "in_progress"))
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"0 of {len(CAMPAIGN)} planned runs")
    assert sum("missing" in line and "min (" in line for line in lines) == len(CAMPAIGN)
    bad = run_script("pictures/campaign.py", "--hours", "0", expect_ok=False)
    assert bad.returncode == 2 and "argument --hours: 0 is out of range; give a number > 0" in bad.stderr
    part = run_script("pictures/campaign.py", "--list", "--only", "2.1_envs,2.2_callbacks", "--ledger",
                      str(tmp_path / "results"), "--logdir", str(tmp_path / "runs"))
    assert part.stdout.splitlines()[0].startswith("0 of 2 planned runs")
    typo = run_script("pictures/campaign.py", "--only", "2.9", expect_ok=False)
    assert typo.returncode == 2 and "--only 2.9 matches no planned run" in typo.stderr


def test_campaign_script_names_a_ledger_file_broken_by_a_hand_edit_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    broken = tmp_path / "results" / "2.1_envs.json"
    broken.write_text('{"key": "2.1_envs"')  # cut short
    result = run_script("pictures/campaign.py", "--list", "--ledger", str(tmp_path / "results"),
                        "--logdir", str(tmp_path / "runs"), "--in-progress", str(tmp_path / "in_progress"),
                        expect_ok=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert str(broken) in line and "not valid JSON" in line and "line 1 column" in line


#: A real campaign whose child is a stand-in that waits: it holds the lock while "training".
CAMPAIGN_HOLDER = """
import sys
from pathlib import Path
from rlbreakout.results.campaign import ChildRun, PlannedRun, run_campaign
logdir, waiter = Path(sys.argv[1]), sys.argv[2]
plan = PlannedRun("1_gym/1.3_train.py", "BreakoutNoFrameskip-v4", 0, 128, (), eval_games=1, label="tiny")
run_campaign([plan], 1.0, ledger_dir=logdir / "ledger", logdir=logdir, child=ChildRun(python=waiter), dirty=False,
             in_progress=logdir / "in_progress")
"""


def test_a_second_campaign_refuses_naming_the_running_one_and_a_killed_one_leaves_no_lock(tmp_path: Path) -> None:
    logdir, started = tmp_path / "runs", tmp_path / "child_started"
    waiter = tmp_path / "waiter.sh"
    waiter.write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 600\n")
    waiter.chmod(0o755)
    flags = ["--logdir", str(logdir), "--ledger", str(tmp_path / "ledger"), "--in-progress", str(tmp_path / "ip"),
             "--only", "1.3_train"]
    # its own session, so the kill below reaches the stand-in child too (and nothing else)
    holder = subprocess.Popen([sys.executable, "-c", CAMPAIGN_HOLDER, str(logdir), str(waiter)], cwd=REPO_ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():  # an event: the campaign started its run
            assert holder.poll() is None, holder.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the holding campaign never started its run"
            time.sleep(0.05)
        # hours too short for any run: refused by the lock, or (were the lock broken) skipping, never training
        second = run_script("pictures/campaign.py", "--hours", "0.0001", *flags, expect_ok=False)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert f"another campaign is running on this repository (pid {holder.pid}, started " in line
        assert f"running {PlannedRun('1_gym/1.3_train.py', 'BreakoutNoFrameskip-v4', 0, 128, ()).key}" in line
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # our own holder and its stand-in child, as kill -9 would
        holder.wait(timeout=30)
    after = run_script("pictures/campaign.py", "--hours", "0.0001", *flags)  # no stuck lock: it runs (and skips)
    assert "skipped 1.3_train" in after.stdout
