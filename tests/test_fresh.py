"""A committed model's fresh evaluation: the figures from a real --load run, recorded beside the model."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_script, summary_of
from rlbreakout.errors import RLBreakoutError
from rlbreakout.results.fresh import FRESH_KEY, fresh_evaluation

ZOO_POLICY = REPO_ROOT / "models" / "ppo_breakout_policy.pt"


def load_summary(model: str, scores: list[float], **changes: object) -> dict:
    """What a ``--load`` evaluation's summary.json holds (the keys fresh_evaluation reads)."""
    return {"model_path": model, "timesteps": 0, "scores": scores, "seed": 100, "env_id": "BreakoutNoFrameskip-v4",
            "script": "3.3_aimbot_training", "git_commit": "abc1234def", "cpu_model": "Some CPU",
            "run_dir": "runs/x", **changes}


def test_figures_are_the_games_mean_standard_error_and_median() -> None:
    env_id, figures = fresh_evaluation(load_summary("models/m.pt", [0, 2, 4, 10]), "models/m.pt", REPO_ROOT,
                                       min_games=4)
    # by hand: mean 4; sample variance (16 + 4 + 0 + 36) / 3; median of 2 and 4
    assert env_id == "BreakoutNoFrameskip-v4"
    assert figures["mean"] == 4.0 and figures["median"] == 3.0 and figures["n_games"] == 4
    assert figures["standard_error"] == pytest.approx(math.sqrt(56 / 3) / 2)
    assert (figures["seed"], figures["git_commit"], figures["cpu_model"]) == (100, "abc1234def", "Some CPU")
    assert figures["git_dirty"] is False and (figures["min"], figures["max"]) == (0.0, 10.0)


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"timesteps": 4096}, "not a --load evaluation"),  # a training run's final evaluation
    ({"model_path": "models/other.pt"}, "not a --load evaluation"),  # another file
    ({"scores": [1.0, 2.0, 3.0]}, "played 3 whole games"),  # too few games
    ({"seed": None, "cpu_model": None}, "lacks seed, cpu_model"),  # not a chapter script's summary
    ({"scores": "1234"}, "no list of game scores"),  # a hand-edited summary
    ({"scores": [1.0, "x", 3.0, 4.0]}, "no list of game scores"),
    ({"scores": [1.0, float("nan"), 3.0, 4.0]}, "no list of game scores"),
])
def test_what_is_not_a_fresh_evaluation_of_the_file_is_refused(changes: dict, fragment: str) -> None:
    with pytest.raises(RLBreakoutError, match=fragment):
        summary = {**load_summary("models/m.pt", [1.0, 2.0, 3.0, 4.0]), **changes}
        fresh_evaluation({key: value for key, value in summary.items() if value is not None}, "models/m.pt",
                         REPO_ROOT, min_games=4)


@pytest.mark.slow
def test_a_real_load_evaluation_is_recorded_beside_the_model(tmp_path: Path) -> None:
    model = tmp_path / "models" / "zoo.pt"
    model.parent.mkdir()
    shutil.copy(ZOO_POLICY, model)
    record = model.with_suffix(".json")
    record.write_text(json.dumps({"ledger_key": "k", "sha256": "0"}))
    result = run_script("2_baselines/2.3_copying_hp_zoo.py", "--load", str(model), "--eval-episodes", "2",
                        "--gif-games", "0", "--seed", "100", "--device", "cpu", "--logdir", str(tmp_path / "runs"))
    summary_path, summary = summary_of(result)
    recorded = run_script("pictures/record_fresh_evaluation.py", "--model", str(model), "--min-games", "2",
                          str(summary_path))
    fresh = json.loads(record.read_text())[FRESH_KEY]["BreakoutNoFrameskip-v4"]
    assert fresh["n_games"] == 2 and fresh["mean"] == pytest.approx(summary["mean_reward"])
    assert fresh["seed"] == 100 and fresh["git_commit"] == summary["git_commit"]
    assert json.loads(record.read_text())["ledger_key"] == "k"  # the rest of the record is kept
    assert recorded.stdout.strip().splitlines()[-1].startswith(f"recorded in {record}")
    # a model with no record beside it is refused while parsing, naming --model
    before = record.read_text()
    unrecorded = tmp_path / "models" / "unrecorded.pt"
    shutil.copy(ZOO_POLICY, unrecorded)
    other = run_script("pictures/record_fresh_evaluation.py", "--model", str(unrecorded), "--min-games", "2",
                       str(summary_path), expect_ok=False)
    assert other.returncode == 2 and "--model" in other.stderr.strip().splitlines()[-1]
    assert "has no record unrecorded.json beside it" in other.stderr.strip().splitlines()[-1]
    # a summary of another file is one line, and neither record changes
    model_b = tmp_path / "models" / "b.pt"
    shutil.copy(ZOO_POLICY, model_b)
    model_b.with_suffix(".json").write_text("{}")
    refused = run_script("pictures/record_fresh_evaluation.py", "--model", str(model_b), "--min-games", "2",
                         str(summary_path), expect_ok=False)
    assert refused.returncode == 2 and "not a --load evaluation" in refused.stderr.strip().splitlines()[-1]
    assert model_b.with_suffix(".json").read_text() == "{}" and record.read_text() == before


@pytest.mark.slow
def test_a_damaged_record_is_one_line_and_stays_as_it_was(tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    shutil.copy(ZOO_POLICY, model)
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps(load_summary(str(model), [1.0, 2.0])))
    for damaged in ('{"fresh_evaluations": "oops"}', "[1, 2]", '{"fresh_evaluations": null'):
        model.with_suffix(".json").write_text(damaged)
        result = run_script("pictures/record_fresh_evaluation.py", "--model", str(model), "--min-games", "2",
                            str(summary), expect_ok=False)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and "Traceback" not in result.stderr and lines[-1].startswith("error: ")
        assert str(model.with_suffix(".json")) in lines[-1] and model.with_suffix(".json").read_text() == damaged
