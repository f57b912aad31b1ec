"""The ledger: entries from real run folders, compact files, and the figures the READMEs print."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from conftest import TINY_PPO_FLAGS, run_script
from rlbreakout.errors import RLBreakoutError
from rlbreakout.provenance import REPO_ROOT
from rlbreakout.results.campaign import CAMPAIGN, EVAL_GAMES
from rlbreakout.results.ledger import (
    EVAL_TAGS,
    GAME_SCORE_TAG,
    LEDGER_DIR,
    LEDGER_VERSION,
    MAX_CURVE_POINTS,
    MAX_LEDGER_BYTES,
    Evaluation,
    aggregate,
    build_entry,
    dumps,
    env_label,
    ledger_name,
    read_ledger,
    run_speed,
    spread,
    evaluation_history,
    start_provenance,
    training_curve,
    write_entry,
)
from rlbreakout.runs import CONFIG_FILE, SUMMARY_FILE


def fake_entry(seed: int, means: dict[str, float], medians: dict[str, float], *, sps: float = 300.0) -> dict:
    """A ledger entry with known figures (the keys aggregate reads)."""
    return {
        "key": f"g__s{seed}",
        "summary": {"seed": seed, "steps_per_second": sps, "wall_seconds": 1000.0 + seed, "git_commit": "abcdef123",
                    "git_dirty": False, "cpu_model": "Test CPU"},
        "evaluations": {env: {"mean_reward": means[env], "median_reward": medians[env]} for env in means},
    }


def test_aggregate_is_the_mean_of_per_seed_figures_with_their_range() -> None:
    entries = [fake_entry(0, {"A": 10.0, "B": 4.0}, {"A": 8.0, "B": 3.0}, sps=300.0),
               fake_entry(2, {"A": 20.0}, {"A": 12.0}, sps=360.0),
               fake_entry(1, {"A": 60.0, "B": 6.0}, {"A": 40.0, "B": 5.0}, sps=330.0)]
    figures = aggregate(entries, ["A", "B", "C"])
    assert figures.seeds == (0, 1, 2)
    assert figures.means["A"].mean == pytest.approx(30.0)
    assert (figures.means["A"].low, figures.means["A"].high, figures.means["A"].n) == (10.0, 60.0, 3)
    assert figures.medians["A"].mean == pytest.approx(20.0)
    assert figures.means["B"].n == 2 and figures.means["B"].mean == pytest.approx(5.0)
    assert "C" not in figures.means  # no seed evaluated there: no figure, not a zero
    assert figures.steps_per_second is not None and figures.steps_per_second.mean == pytest.approx(330.0)
    assert figures.commits == ("abcdef1",) and figures.cpus == ("Test CPU",) and not figures.dirty
    assert figures.means["A"].text() == "30.0 (10.0–60.0)"
    assert spread([]) is None and spread([5.0]).text() == "5.0"  # type: ignore[union-attr]
    on_gpu = fake_entry(3, {"A": 1.0}, {"A": 1.0})
    on_gpu["summary"]["gpu_model"] = "NVIDIA H200"
    assert aggregate([entries[0], on_gpu], ["A"]).cpus == ("Test CPU", "Test CPU + NVIDIA H200")


def test_dumps_keeps_number_lists_on_one_line_and_round_trips() -> None:
    entry = {"key": "k", "train_curve": [[8, 1.0], [16, 2.5]], "scores": [1.0, -2.0, 3e-05], "names": ["a", "b"]}
    text = dumps(entry)
    assert "[8, 1.0]" in text and "[1.0, -2.0, 3e-05]" in text
    assert json.loads(text) == entry


def test_env_labels() -> None:
    assert env_label("BreakoutNoFrameskip-v4") == "NoFrameskip-v4"
    assert env_label("ALE/Breakout-v5") == "v5"


def test_provenance_is_the_start_s_and_a_change_during_the_run_marks_it_dirty(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"git_commit": "aaa", "git_dirty": False}))
    same = start_provenance(tmp_path, {"git_commit": "aaa", "git_dirty": False})
    assert same == {"git_commit": "aaa", "git_commit_at_finish": "aaa", "git_dirty": False}
    moved = start_provenance(tmp_path, {"git_commit": "bbb", "git_dirty": False})
    assert moved["git_commit"] == "aaa" and moved["git_dirty"] is True


def test_unfinished_run_has_no_entry(tmp_path: Path) -> None:
    with pytest.raises(RLBreakoutError, match="did not finish"):
        build_entry("k", {}, tmp_path, [])


def test_oversized_entry_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    entry = {"key": "big", "train_curve": [[i, float(i)] for i in range(MAX_LEDGER_BYTES // 8)]}
    with pytest.raises(RLBreakoutError, match="over"):
        write_entry(entry, tmp_path)
    assert not list(tmp_path.iterdir())


def test_corrupt_ledger_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(RLBreakoutError, match="restore it with git"):
        read_ledger(tmp_path)


@pytest.mark.slow
def test_entry_from_a_tiny_real_run(tmp_path: Path) -> None:
    logdir = tmp_path / "runs"
    result = run_script("2_baselines/2.3_copying_hp_zoo.py", *TINY_PPO_FLAGS, "--timesteps", "1024",
                        "--gif-games", "0", "--logdir", str(logdir))
    run_dir = Path(result.stdout.strip().splitlines()[-1]).parent
    evaluation = Evaluation("ALE/Breakout-v5", (2.0, 4.0, 9.0), "python x.py")
    path = write_entry(build_entry("tiny__s0", {"script": "x"}, run_dir, [evaluation]), tmp_path / "results")
    entry = read_ledger(tmp_path / "results")["tiny__s0"]
    assert path.stat().st_size < MAX_LEDGER_BYTES
    assert entry["summary"]["timesteps"] >= 1024 and "git_commit" in entry["summary"]
    assert "2.3_copying_hp_zoo.py" in entry["command"]
    assert entry["evaluations"]["ALE/Breakout-v5"]["mean_reward"] == pytest.approx(5.0)
    assert entry["evaluations"]["ALE/Breakout-v5"]["median_reward"] == 4.0
    # every training game the run logged, as (step, score), steps rising within the run
    curve = entry["train_curve"]
    assert curve and all(0 < step <= 1024 for step, _ in curve)
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    logged = 0
    for events in run_dir.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={SCALARS: 0})
        accumulator.Reload()
        logged += len(accumulator.Scalars("game/score")) if "game/score" in accumulator.Tags()["scalars"] else 0
    assert len(curve) == logged  # every game, also games of two envs ending on one step
    assert [step for step, _ in curve] == sorted(step for step, _ in curve)
    assert not list((tmp_path / "results").glob("*.partial"))


def test_the_ledger_is_the_repositorys_results_folder() -> None:
    """Resolved against the repository (not the module's folder, which moved into results/)."""
    assert LEDGER_DIR == REPO_ROOT / "results" and any(LEDGER_DIR.glob("*.json"))
    assert (REPO_ROOT / "README.md").is_file() and (REPO_ROOT / "rlbreakout" / "__init__.py").is_file()


def test_the_committed_entries_hold_what_the_tables_are_made_of() -> None:
    """Each entry in results/: the planned number of whole games per eval env, the figures equal
    to its own scores' mean and median, and a clean commit of this repository's history."""
    plans = {plan.key: plan for plan in CAMPAIGN}
    entries = read_ledger()
    assert entries
    for key, entry in entries.items():
        assert (LEDGER_DIR / ledger_name(key)).is_file()
        plan = plans[key]  # every entry is a run of the campaign's plan
        assert entry["planned"]["eval_games"] == plan.eval_games == EVAL_GAMES == 20, key
        assert set(entry["evaluations"]) == set(entry["planned"]["eval_envs"]) == set(plan.eval_envs), key
        for env_id, evaluation in entry["evaluations"].items():
            scores = evaluation["scores"]
            assert evaluation["env_id"] == env_id and evaluation["n_games"] == len(scores) == 20, (key, env_id)
            assert evaluation["mean_reward"] == pytest.approx(statistics.fmean(scores), abs=1e-9), (key, env_id)
            assert evaluation["median_reward"] == pytest.approx(statistics.median(scores), abs=1e-9), (key, env_id)
        summary = entry["summary"]
        assert summary["git_dirty"] is False and re.fullmatch(r"[0-9a-f]{40}", summary["git_commit"]), key
        assert summary["git_commit_at_finish"] == summary["git_commit"], key
        known = subprocess.run(["git", "cat-file", "-e", f"{summary['git_commit']}^{{commit}}"], cwd=REPO_ROOT,
                               capture_output=True)
        assert known.returncode == 0 or shallow_clone(), f"{key}: commit {summary['git_commit']} not in this history"


def shallow_clone() -> bool:
    """True in a shallow clone (or without git), where old commits may be missing."""
    result = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    return result.returncode != 0 or result.stdout.strip() != "false"


def test_a_run_across_sittings_reports_all_its_segments_speed() -> None:
    # the 1e7 zoo run: its summary.json speaks for the last process only (918 steps/s of training)
    entry = fake_entry(0, {"A": 1.0}, {"A": 1.0}, sps=918.0)
    entry["segments"] = [{"steps": 3_000_000, "wall_seconds": 10_000.0}, {"steps": 3_000_000, "wall_seconds": 5_000.0},
                         {"steps": 4_000_000, "wall_seconds": 5_000.0}]
    figures = aggregate([entry], ["A"])
    assert figures.steps_per_second.mean == pytest.approx(10_000_000 / 20_000.0)  # type: ignore[union-attr]
    assert figures.wall_seconds.mean == pytest.approx(20_000.0)  # type: ignore[union-attr]
    entry["segments"] = entry["segments"][:1]  # one sitting: the summary's own figures
    assert aggregate([entry], ["A"]).steps_per_second.mean == pytest.approx(918.0)  # type: ignore[union-attr]


def test_two_segments_are_a_run_across_sittings_and_a_zero_wall_time_is_no_speed() -> None:
    entry = fake_entry(0, {"A": 1.0}, {"A": 1.0}, sps=918.0)
    entry["segments"] = [{"steps": 300, "wall_seconds": 0.5}, {"steps": 100, "wall_seconds": 0.25}]
    assert run_speed(entry) == (pytest.approx(400 / 0.75), pytest.approx(0.75))  # under a second: still a speed
    entry["segments"] = [{"steps": 0, "wall_seconds": 0.0}, {"steps": 0, "wall_seconds": 0.0}]
    assert run_speed(entry) == (0.0, 0.0)


def test_an_entry_not_yet_evaluated_counts_for_speed_but_gives_no_score() -> None:
    evaluated, unevaluated = fake_entry(0, {"A": 10.0}, {"A": 8.0}), fake_entry(1, {}, {})
    del unevaluated["evaluations"]
    figures = aggregate([evaluated, unevaluated], ["A"])
    assert figures.seeds == (0, 1) and figures.means["A"].n == 1 and figures.steps_per_second.n == 2  # type: ignore[union-attr]


def test_a_group_is_dirty_if_any_run_was_and_a_missing_commit_says_unknown() -> None:
    clean, dirty = fake_entry(0, {"A": 1.0}, {"A": 1.0}), fake_entry(1, {"A": 1.0}, {"A": 1.0})
    dirty["summary"]["git_dirty"] = True
    del dirty["summary"]["git_commit"]
    figures = aggregate([clean, dirty], ["A"])
    assert figures.dirty and figures.commits == ("abcdef1", "unknown")
    assert not aggregate([clean], ["A"]).dirty


def test_an_evaluation_as_a_ledger_record() -> None:
    evaluation = Evaluation("ALE/Breakout-v5", [3.0, 5.0, 10.0], "python 3.3.py --load m.zip")
    assert evaluation.as_dict() == {"env_id": "ALE/Breakout-v5", "n_games": 3, "mean_reward": 6.0,
                                    "median_reward": 5.0, "scores": [3.0, 5.0, 10.0],
                                    "command": "python 3.3.py --load m.zip"}


def test_an_env_label_keeps_a_game_name_that_starts_with_x() -> None:
    assert env_label("ALE/Xevious-v5") == "Xevious-v5"


# %% Entries read from TensorBoard's own files (written with the SummaryWriter SB3 uses)


def write_events(folder: Path, points: dict[str, list[tuple[int, float]]], *, age: int = 0) -> None:
    """One event file in ``folder`` with ``points`` per tag, ``age`` seconds older than the newest."""
    with SummaryWriter(str(folder)) as writer:
        for tag, tag_points in points.items():
            for step, value in tag_points:
                writer.add_scalar(tag, value, step)
    for event_file in folder.glob("events.out.tfevents.*"):
        os.utime(event_file, (1_000_000 - age, 1_000_000 - age))


def test_a_resumed_runs_later_games_replace_the_lost_ones_from_its_first_step(tmp_path: Path) -> None:
    """The interrupted process logged games up to step 300; the resumed one restarted at 200."""
    write_events(tmp_path / "PPO_1", {GAME_SCORE_TAG: [(100, 1.0), (200, 2.0), (300, 3.0)]}, age=100)
    write_events(tmp_path / "PPO_2", {GAME_SCORE_TAG: [(200, 20.0), (250, 25.0)]})
    assert training_curve(tmp_path) == [[100, 1.0], [200, 20.0], [250, 25.0]]


def test_games_ending_on_one_step_are_all_kept_in_the_order_logged(tmp_path: Path) -> None:
    write_events(tmp_path, {GAME_SCORE_TAG: [(8, 5.0), (8, 1.0), (16, 3.0)]})
    assert training_curve(tmp_path) == [[8, 5.0], [8, 1.0], [16, 3.0]]


def test_a_long_curve_is_thinned_to_evenly_spaced_games_and_keeps_the_last(tmp_path: Path) -> None:
    games = 2 * MAX_CURVE_POINTS
    write_events(tmp_path, {GAME_SCORE_TAG: [(step, float(step)) for step in range(games)]})
    curve = training_curve(tmp_path)
    assert [step for step, _ in curve] == [*range(0, games - 2, 2), games - 1]  # every other game, then the last
    assert len(curve) == MAX_CURVE_POINTS


def test_the_evaluation_history_has_each_evaluations_step_and_figures(tmp_path: Path) -> None:
    write_events(tmp_path, {EVAL_TAGS["mean_reward"]: [(100, 2.5), (200, 7.0)],
                            EVAL_TAGS["median_reward"]: [(100, 2.0)]})
    assert evaluation_history(tmp_path) == [{"step": 100, "mean_reward": 2.5, "median_reward": 2.0},
                                            {"step": 200, "mean_reward": 7.0}]


def test_a_dirty_start_or_a_dirty_finish_marks_the_run_dirty(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"git_commit": "aaa", "git_dirty": True}))
    assert start_provenance(tmp_path, {"git_commit": "aaa", "git_dirty": False})["git_dirty"] is True
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"git_commit": "aaa", "git_dirty": False}))
    assert start_provenance(tmp_path, {"git_commit": "aaa", "git_dirty": True})["git_dirty"] is True


def test_a_start_without_a_commit_names_the_finish_s(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text(json.dumps({"git_dirty": False}))
    assert start_provenance(tmp_path, {"git_commit": "bbb"}) == {"git_commit": "bbb", "git_commit_at_finish": "bbb",
                                                                 "git_dirty": False}


def test_an_entry_names_its_version_plan_and_evaluation_history_and_a_missing_command_is_empty(
        tmp_path: Path) -> None:
    (tmp_path / SUMMARY_FILE).write_text(json.dumps({"seed": 0, "git_commit": "aaa", "eval_history": [1]}))
    write_events(tmp_path, {EVAL_TAGS["mean_reward"]: [(64, 3.0)], EVAL_TAGS["median_reward"]: [(64, 2.0)]})
    entry = build_entry("k__s0", {"script": "x.py"}, tmp_path, [])
    assert entry["ledger_version"] == LEDGER_VERSION and entry["key"] == "k__s0"
    assert entry["planned"] == {"script": "x.py"} and entry["command"] == ""
    assert entry["eval_history"] == [{"step": 64, "mean_reward": 3.0, "median_reward": 2.0}]
    assert "eval_history" not in entry["summary"] and entry["summary"]["seed"] == 0


def test_dumps_indents_by_two_sorts_keys_and_keeps_special_numbers_on_one_line() -> None:
    text = dumps({"b": {"d": 1, "c": [1.0, float("nan"), float("-inf"), 1e+20]}, "a": "x"})
    assert text == '{\n  "a": "x",\n  "b": {\n    "c": [1.0, NaN, -Infinity, 1e+20],\n    "d": 1\n  }\n}\n'


def test_an_entry_file_is_named_after_its_key_made_safe(tmp_path: Path) -> None:
    assert ledger_name("2.3 zoo/Breakout:v4__s0") == "2.3-zoo-Breakout-v4__s0.json"
    assert ledger_name("a+b.c-d_e") == "a+b.c-d_e.json"
    path = write_entry({"key": "x/y"}, tmp_path)
    assert path == tmp_path / "x-y.json" and json.loads(path.read_text()) == {"key": "x/y"}


def test_entries_go_into_a_new_nested_folder_and_an_existing_one(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "results"
    write_entry({"key": "one"}, folder)
    write_entry({"key": "two"}, folder)
    assert sorted(path.name for path in folder.iterdir()) == ["one.json", "two.json"]


def test_an_entry_of_exactly_the_size_limit_is_written(tmp_path: Path) -> None:
    padding = MAX_LEDGER_BYTES - len(dumps({"key": "k", "pad": ""}).encode())
    entry = {"key": "k", "pad": "x" * padding}
    assert len(dumps(entry).encode()) == MAX_LEDGER_BYTES
    assert write_entry(entry, tmp_path).stat().st_size == MAX_LEDGER_BYTES
