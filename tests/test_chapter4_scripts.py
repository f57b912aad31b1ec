"""The chapter-4 scripts run as a learner runs them: tiny real trainings, real SQLite studies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import imageio.v2 as imageio
import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from cells import run_cells
from conftest import TINY_PPO_FLAGS, run_script, scalar_steps, summary_of
from rlbreakout.render import CAPTION_HEIGHT, GRID_GAP
from rlbreakout.runs import REQUIRED_SUMMARY_KEYS
from rlbreakout.tune.storage import default_storage_url, open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: Flags that shrink a study's trials to one rollout and one evaluation game.
TINY_TRIALS = ["--timesteps", "128", "--n-envs", "2", "--eval-episodes", "1", "--evals-per-trial", "1", "--device", "cpu"]
SCREEN_HEIGHT, SCREEN_WIDTH = 210, 160  # the Atari screen
STUDY_SUMMARY_KEYS = {"best_value", "best_params", "n_trials", "study_name", "storage"}


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def assert_best_env_and_model(ns: dict, study: optuna.Study) -> None:
    """The cell "The best trial" left the best trial's env and its trained model in the console."""
    best = max((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: (t.value, -t.number))
    env, model = ns["env"], ns["model"]
    assert isinstance(env, VecEnv) and isinstance(model, PPO) and model.num_timesteps > 0
    assert ns["best"].number == best.number and ns["model_path"] == Path(best.user_attrs["model_path"])
    assert model.get_env() is env and env.observation_space == model.observation_space
    env.close()


@pytest.mark.slow
def test_wrapper_study_end_to_end_promotes_its_top_k_into_a_longer_study(logdir: Path) -> None:
    result = run_script("4_tuning/4.0_wrapperOptuna_PPO.py", *TINY_TRIALS, "--n-trials", "3", "--top-k", "2",
                        "--promote-timesteps", "256", "--promote-eval-episodes", "1", "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert set(REQUIRED_SUMMARY_KEYS) | STUDY_SUMMARY_KEYS <= set(summary)
    url = default_storage_url(logdir)  # no --storage, no $OPTUNA_STORAGE: the SQLite file under --logdir
    assert summary["storage"] == url and Path(url.removeprefix("sqlite:///")).is_file()

    short = optuna.load_study(study_name="4.0_wrapper_study1", storage=url)
    long = optuna.load_study(study_name="4.0_wrapper_study1_promoted", storage=url)
    assert len(finished(short)) == 3
    complete = [t for t in short.trials if t.state == TrialState.COMPLETE]
    top = sorted(complete, key=lambda t: (-t.value, t.number))[:2]
    assert summary["promoted_trials"] == [t.number for t in top]
    assert [t.state for t in long.trials] == [TrialState.COMPLETE] * 2
    assert [t.params for t in long.trials] == [t.params for t in top]
    assert [t.user_attrs["promoted_from_trial"] for t in long.trials] == [t.number for t in top]
    assert all(t.user_attrs["timesteps_trained"] >= 256 and Path(t.user_attrs["model_path"]).is_file() for t in long.trials)
    assert summary["best_value"] == max(t.value for t in long.trials) and summary["n_trials"] == 2
    assert (short.user_attrs["timesteps_per_trial"], long.user_attrs["timesteps_per_trial"]) == (128, 256)
    for trial in short.trials:  # every trial logged its evaluations to TensorBoard
        label = {"Breakout-v4": "v4", "BreakoutNoFrameskip-v4": "v4NoFS", "ALE/Breakout-v5": "v5"}[trial.params["env_id"]]
        assert scalar_steps(Path(trial.user_attrs["tensorboard_dir"]), f"eval/{label}/median_reward")


@pytest.mark.slow
def test_env_comparison_scores_every_model_on_all_three_envs(logdir: Path) -> None:
    result = run_script("4_tuning/4.1_PPO_env_comparison.py", *TINY_PPO_FLAGS, "--gif-games", "1", "--gif-max-steps", "40",
                        "--eval-freq", "64", "--train-envs", "BreakoutNoFrameskip-v4", "ALE/Breakout-v5",
                        "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert set(REQUIRED_SUMMARY_KEYS) | STUDY_SUMMARY_KEYS <= set(summary) and summary["n_complete"] == 2
    table = Path(summary["table_path"]).read_text().splitlines()
    assert "| trained on \\ scored on | v4 | v4NoFS | v5 |" in table
    rows = [line for line in table if line.startswith(("| v4NoFS |", "| v5 |"))]
    assert [row.split(" |")[0] for row in rows] == ["| v4NoFS", "| v5"] and all(row.count("(") == 3 for row in rows)
    for run_dir in summary["runs"]:
        for label in ("v4", "v4NoFS", "v5"):
            assert scalar_steps(Path(run_dir), f"eval/{label}/median_reward") == [64]
    # both models playing v5 side by side: two captioned 160-pixel screens and a gap
    frame = imageio.mimread(summary["comparison_gif_path"])[0]
    assert frame.shape[:2] == (SCREEN_HEIGHT + CAPTION_HEIGHT, 2 * SCREEN_WIDTH + GRID_GAP)
    assert "trained on v4NoFS" in result.stdout and "trained on v5" in result.stdout


@pytest.mark.slow
def test_grid_visits_each_point_once_and_saves_the_analysis_plots(logdir: Path) -> None:
    result = run_script("4_tuning/4.2_PPO_tuning_grid.py", *TINY_TRIALS, "--batch-sizes", "64", "--n-epochs-grid", "1", "2",
                        "--n-steps-grid", "64", "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert summary["n_trials"] == 2 and summary["grid"] == {"batch_size": [64], "n_epochs": [1, 2], "n_steps": [64]}
    study = optuna.load_study(study_name="4.2_PPO_grid", storage=summary["storage"])
    assert sorted(t.params["n_epochs"] for t in finished(study)) == [1, 2]
    names = {Path(p).name for p in summary["plots"]}
    for plot in ("optimization_history", "intermediate_values", "param_importances", "parallel_coordinate"):
        assert {f"{plot}.html", f"{plot}.png"} <= names


def pruned_study(url: str, name: str) -> None:
    """Trials with env 'bad' were pruned; the complete ones differ only by lr."""
    study = optuna.create_study(storage=open_storage(url), study_name=name, direction="maximize")
    dists = {"env": CategoricalDistribution(("good", "bad")), "lr": FloatDistribution(0.0, 1.0)}
    for i in range(16):
        env, lr = ("bad", "good")[i % 2], (i * 5 % 16) / 16
        pruned = env == "bad"
        study.add_trial(create_trial(state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                                     value=None if pruned else 100 + 50 * lr, params={"env": env, "lr": lr},
                                     distributions=dists, intermediate_values={64: 1.0 + lr}))


@pytest.mark.slow
def test_study_explore_saves_plots_with_and_without_imputed_pruned_trials(logdir: Path) -> None:
    url = default_storage_url(logdir)
    pruned_study(url, "explored")
    result = run_script("4_tuning/4.0_study_explore.py", "--study-name", "explored", "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert summary["n_complete"] == 8 and summary["n_pruned"] == 8
    names = {Path(p).name for p in summary["plots"]}
    for plot in ("optimization_history", "param_importances", "parallel_coordinate", "pruned_as_0_param_importances",
                 "pruned_as_0_parallel_coordinate", "pruned_as_0_contour"):
        assert {f"{plot}.html", f"{plot}.png"} <= names
    assert summary["importances"]["lr"] > summary["importances"]["env"]
    assert summary["imputed_importances"]["env"] > summary["imputed_importances"]["lr"]
    assert "optuna-dashboard sqlite:///" in result.stdout


@pytest.mark.parametrize("script, flags, message", [
    ("4_tuning/4.3_PPO_tuning_schedules.py", ["--storage", "postgresql://nobody@127.0.0.1:1/optuna"],
     "error: cannot reach Optuna storage postgresql://nobody@127.0.0.1:1/optuna: connection to server"),
    ("4_tuning/4.2_PPO_tuning_grid.py", ["--n-envs", "2", "--batch-sizes", "32", "48", "--n-steps-grid", "32"],
     "error: grid point batch_size 48, n_steps 32 is invalid"),
    ("4_tuning/4.0_study_explore.py", ["--study-name", "missing"], "error: no study 'missing' in sqlite:///"),
])
def test_bad_input_is_one_line_and_exit_2(script: str, flags: list[str], message: str, logdir: Path) -> None:
    result = run_script(script, *flags, "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2 and result.stderr.startswith(message), result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1


# %% Cell by cell, as Spyder runs them: every cell runs, the study (and what it trained) stays


@pytest.fixture
def restore_torch_threads() -> Iterator[None]:
    """The scripts set torch's thread count for their process; give the other tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.usefixtures("restore_torch_threads")
@pytest.mark.parametrize("script, flags, n_finished", [
    ("4_tuning/4.3_PPO_tuning_schedules.py", ["--n-trials", "1", "--n-steps", "64", "--batch-size", "64",
                                              "--n-epochs", "1"], 1),
    ("4_tuning/4.2_PPO_tuning_grid.py", ["--batch-sizes", "64", "--n-epochs-grid", "1", "--n-steps-grid", "64"], 1),
])
def test_study_scripts_run_cell_by_cell(script: str, flags: list[str], n_finished: int, logdir: Path) -> None:
    ns = run_cells(script, *TINY_TRIALS, *flags, "--logdir", str(logdir))
    assert len(finished(ns["study"])) == n_finished and callable(ns["objective"])
    assert (ns["run"].dir / "summary.json").is_file() and ns["result"]["n_complete"] == n_finished
    assert_best_env_and_model(ns, ns["study"])
    assert ns["model"].num_timesteps == ns["best"].user_attrs["timesteps_trained"]


@pytest.mark.usefixtures("restore_torch_threads")
def test_a_study_with_every_trial_pruned_says_so_in_one_line(logdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the study already holds its --n-trials, all pruned: no trial trains, and no best trial exists
    study = optuna.create_study(storage=open_storage(default_storage_url(logdir)), study_name="4.3_PPO_schedules",
                                direction="maximize")
    study.add_trial(create_trial(state=TrialState.PRUNED))
    ns = run_cells("4_tuning/4.3_PPO_tuning_schedules.py", *TINY_TRIALS, "--n-trials", "1", "--logdir", str(logdir))
    assert ns["env"] is None and ns["model"] is None and ns["trained"] == []
    lines = [line for line in capsys.readouterr().out.splitlines() if "has no best trial" in line]
    assert len(lines) == 1 and "(1 pruned, 0 failed)" in lines[0]
    assert (ns["run"].dir / "summary.json").is_file() and ns["result"]["best_value"] is None


@pytest.mark.slow
@pytest.mark.usefixtures("restore_torch_threads")
def test_wrapper_study_runs_cell_by_cell(logdir: Path) -> None:
    ns = run_cells("4_tuning/4.0_wrapperOptuna_PPO.py", *TINY_TRIALS, "--n-trials", "2", "--top-k", "1",
                   "--promote-timesteps", "128", "--promote-eval-episodes", "1", "--logdir", str(logdir))
    assert len(finished(ns["study1"])) == 2
    (promoted,) = ns["study2"].trials
    assert promoted.state == TrialState.COMPLETE and Path(promoted.user_attrs["model_path"]).is_file()
    assert (ns["run"].dir / "summary.json").is_file()
    assert_best_env_and_model(ns, ns["study2"])
    assert ns["model"].num_timesteps == promoted.user_attrs["timesteps_trained"]


@pytest.mark.slow
@pytest.mark.usefixtures("restore_torch_threads")
def test_env_comparison_runs_cell_by_cell(logdir: Path) -> None:
    ns = run_cells("4_tuning/4.1_PPO_env_comparison.py", *TINY_PPO_FLAGS, "--gif-games", "0",
                   "--train-envs", "ALE/Breakout-v5", "--logdir", str(logdir))
    assert [t.state for t in ns["study"].trials] == [TrialState.COMPLETE]
    assert list(ns["models"]) == ["trained on v5"] and hasattr(ns["models"]["trained on v5"], "predict")
    assert "| v5 |" in ns["table"] and (ns["run"].dir / "summary.json").is_file()
    assert_best_env_and_model(ns, ns["study"])
    assert ns["model_path"].parent == Path(ns["study"].trials[0].user_attrs["run_dir"])


@pytest.mark.slow
def test_study_explore_runs_cell_by_cell(logdir: Path) -> None:
    pruned_study(default_storage_url(logdir), "explored")
    ns = run_cells("4_tuning/4.0_study_explore.py", "--study-name", "explored", "--logdir", str(logdir))
    assert ns["study"].study_name == "explored" and len(ns["imputed"].trials) == 16
    assert ns["imputed_importances"]["env"] > ns["imputed_importances"]["lr"]
    assert (ns["run"].dir / "summary.json").is_file()
