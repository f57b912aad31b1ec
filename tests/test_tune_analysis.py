"""rlbreakout.tune.analysis: summaries, the env table, importances with imputed pruned trials, plots."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from rlbreakout.env_ids import BREAKOUT_ENV_IDS
from rlbreakout.tune.analysis import (
    NoBestModelError,
    best_complete_trial,
    best_trial_model,
    env_comparison_table,
    impute_pruned,
    param_importances,
    save_study_plots,
    study_summary,
    trained_run_dirs,
)
from rlbreakout.tune.workers import state_counts

optuna.logging.set_verbosity(optuna.logging.WARNING)


def study_with_pruned_trials() -> optuna.Study:
    """env 'bad' always gets pruned; among the complete trials only lr matters."""
    study = optuna.create_study(direction="maximize", study_name="imputed")
    dists = {"env": CategoricalDistribution(("good", "bad")), "lr": FloatDistribution(0.0, 1.0)}
    for i in range(24):
        env, lr = ("bad", "good")[i % 2], (i * 7 % 24) / 24
        state = TrialState.PRUNED if env == "bad" else TrialState.COMPLETE
        study.add_trial(create_trial(state=state, value=100 + 50 * lr if state == TrialState.COMPLETE else None,
                                     params={"env": env, "lr": lr}, distributions=dists,
                                     intermediate_values={100: 1.0 + lr}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"env": "good", "lr": 0.5}, distributions=dists))
    return study


def test_summary_counts_states_and_names_the_best_trial() -> None:
    study = study_with_pruned_trials()
    summary = study_summary(study, "postgresql://me:secret@db/optuna")
    best = max((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    assert (summary["n_trials"], summary["n_complete"], summary["n_pruned"], summary["n_failed"]) == (24, 12, 12, 1)
    assert summary["best_trial"] == best.number and summary["best_params"] == best.params
    assert summary["storage"] == "postgresql://me:***@db/optuna"


def test_best_trial_is_none_and_its_model_one_line_when_no_trial_completed() -> None:
    study = optuna.create_study(direction="maximize", study_name="hopeless")
    study.add_trial(create_trial(state=TrialState.PRUNED))
    study.add_trial(create_trial(state=TrialState.FAIL))
    with pytest.raises(ValueError):
        study.best_trial  # what the scripts must not call: Optuna raises when nothing completed
    assert best_complete_trial(study) is None
    with pytest.raises(NoBestModelError, match=r"'hopeless' has no best trial: .*\(1 pruned, 1 failed\)") as error:
        best_trial_model(study)
    assert "\n" not in str(error.value)


def test_best_trial_model_is_the_best_complete_trial_s_saved_file(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    for value, name in ((1.0, "a.zip"), (3.0, "b.zip"), (3.0, "c.zip"), (2.0, "d.zip")):
        study.add_trial(create_trial(value=value, user_attrs={"model_path": str(tmp_path / name)}))
    with pytest.raises(NoBestModelError, match="best trial 1 .* has no model here"):
        best_trial_model(study)  # recorded, but trained on another machine: not here
    (tmp_path / "b.zip").write_bytes(b"model")
    best, path = best_trial_model(study)
    assert best.number == 1 and path == tmp_path / "b.zip"  # the earliest of the two best
    assert best_complete_trial(study).number == study.best_trial.number == 1


def test_importance_with_pruned_trials_imputed_as_zero() -> None:
    study = study_with_pruned_trials()
    imputed = impute_pruned(study, 0.0)
    assert len(imputed.trials) == 24 and {t.state for t in imputed.trials} == {TrialState.COMPLETE}
    assert sorted(t.value for t in imputed.trials if t.params["env"] == "bad") == [0.0] * 12
    assert all(t.user_attrs.get("imputed") for t in imputed.trials if t.params["env"] == "bad")
    assert state_counts(study)[TrialState.PRUNED] == 12  # the original study is untouched
    plain, with_pruned = param_importances(study), param_importances(imputed)
    assert plain["lr"] > plain["env"]  # complete trials alone: env never varies, so it seems not to matter
    assert with_pruned["env"] > with_pruned["lr"]  # counting the pruned ones, env decides most


def test_importances_of_a_tiny_study_are_empty() -> None:
    study = optuna.create_study()
    study.add_trial(create_trial(value=1.0, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}))
    assert param_importances(study) == {}


@pytest.mark.slow
def test_study_plots_are_saved_as_html_and_png(tmp_path: Path) -> None:
    # imputed, so that both env and lr vary among the complete trials and a contour can be drawn
    written = save_study_plots(impute_pruned(study_with_pruned_trials()), tmp_path / "plots")
    names = {p.name for p in written}
    for plot in ("optimization_history", "intermediate_values", "param_importances", "parallel_coordinate", "contour"):
        assert {f"{plot}.html", f"{plot}.png"} <= names
    assert all(p.stat().st_size > 1000 for p in written)
    assert (tmp_path / "plots" / "plotly.min.js").is_file()  # HTML works offline


def test_env_comparison_table_has_a_row_per_training_env() -> None:
    study = optuna.create_study(direction="maximize")
    dist = {"train_env": CategoricalDistribution(BREAKOUT_ENV_IDS)}
    for env_id, score in (("BreakoutNoFrameskip-v4", 30.0), ("ALE/Breakout-v5", 12.0)):
        scores = {label: {"mean_reward": score + 1, "median_reward": score, "n_games": 2} for label in ("v4", "v5")}
        study.add_trial(create_trial(value=score, params={"train_env": env_id}, distributions=dist,
                                     user_attrs={"eval_scores": scores}))
    table = env_comparison_table(study).splitlines()
    assert table[0] == "| trained on \\ scored on | v4 | v4NoFS | v5 |"
    assert table[2:] == ["| v4NoFS | 30.0 (31.0) | - | 30.0 (31.0) |", "| v5 | 12.0 (13.0) | - | 12.0 (13.0) |"]


def test_trained_run_dirs_maps_each_finished_training_env_to_its_run_folder(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize")
    dist = {"train_env": CategoricalDistribution(BREAKOUT_ENV_IDS)}
    study.add_trial(create_trial(value=3.0, params={"train_env": "ALE/Breakout-v5"}, distributions=dist,
                                 user_attrs={"run_dir": str(tmp_path / "v5run")}))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"train_env": "Breakout-v4"}, distributions=dist,
                                 user_attrs={"run_dir": str(tmp_path / "failed")}))
    study.add_trial(create_trial(value=1.0, params={"train_env": "BreakoutNoFrameskip-v4"}, distributions=dist))
    assert trained_run_dirs(study) == {"ALE/Breakout-v5": tmp_path / "v5run"}  # failed and folder-less trials left out
