"""Reading a study: its summary, its best trial's model, 4.1's comparison table, importances and plots.

Optuna's importance and contour views ignore pruned trials, so a parameter that gets
trials *pruned* looks unimportant; :func:`impute_pruned` makes the copy the original
tutorial used, with every pruned trial scored 0, so those failures count too.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import optuna
from optuna import visualization as plotly_vis
from optuna.trial import FrozenTrial, TrialState
from optuna.visualization import matplotlib as mpl_vis

from rlbreakout.errors import RLBreakoutError
from rlbreakout.tune.spaces import ENV_LABELS, env_label
from rlbreakout.tune.storage import redact_url
from rlbreakout.tune.workers import FINISHED_STATES, state_counts

#: Score given to pruned trials when they are imputed for the importance view.
PRUNED_IMPUTED_SCORE = 0.0
#: Importance = how much a parameter decides whether a trial lands in this best fraction
#: (PED-ANOVA). Optuna's default, the best 10 %, is only 2-5 trials in a tutorial-sized study.
IMPORTANCE_TARGET_QUANTILE = 0.5
#: Contour plots show the pairs among this many most important parameters.
CONTOUR_MAX_PARAMS = 3
PLOTLY_JS = "directory"  # the HTML plots share one plotly.min.js next to them: small and offline


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


class NoBestModelError(RLBreakoutError):
    """A study has no best model here: no trial completed, or the best one saved its model elsewhere."""


def best_complete_trial(study: optuna.Study) -> FrozenTrial | None:
    """The COMPLETE trial with the highest score (the earliest of equals); ``None`` when none completed.

    ``study.best_trial`` raises ``ValueError`` when every trial was pruned or failed; this does not.
    """
    complete = complete_trials(study)
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def best_trial_model(study: optuna.Study) -> tuple[FrozenTrial, Path]:
    """The best COMPLETE trial and the model file it saved (its ``model_path`` user attribute).

    :raises NoBestModelError: one line when no trial completed (all pruned or failed), or when
        the best trial's model is not on this machine (another worker trained it)
    """
    best = best_complete_trial(study)
    if best is None:
        counts = state_counts(study)
        raise NoBestModelError(
            f"study {study.study_name!r} has no best trial: none of its {len(study.trials)} trials completed "
            f"({counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed), so no env or model to show."
        )
    path = best.user_attrs.get("model_path")
    if path is None or not Path(path).is_file():
        raise NoBestModelError(
            f"best trial {best.number} of study {study.study_name!r} (score {best.value:g}) has no model here "
            f"({path or 'no model_path recorded'}); the worker that trained it keeps it on its own machine."
        )
    return best, Path(path)


def study_summary(study: optuna.Study, storage_url: str) -> dict[str, Any]:
    """Best value and params, trial counts by state, study name and (password-free) storage URL."""
    counts = state_counts(study)
    best = best_complete_trial(study)
    return {
        "study_name": study.study_name,
        "storage": redact_url(storage_url),
        "n_trials": sum(counts[state] for state in FINISHED_STATES),
        "n_complete": counts[TrialState.COMPLETE],
        "n_pruned": counts[TrialState.PRUNED],
        "n_failed": counts[TrialState.FAIL],
        "best_value": best.value if best else None,
        "best_params": best.params if best else None,
        "best_user_attrs": best.user_attrs if best else None,
        "best_trial": best.number if best else None,
    }


def env_comparison_table(study: optuna.Study) -> str:
    """Markdown table of 4.1: one row per training env, one column per eval env (median, mean in brackets).

    Read from the trials' ``eval_scores`` user attribute, so rows trained by other workers appear too.
    """
    rows = {t.params["train_env"]: t.user_attrs["eval_scores"] for t in complete_trials(study)
            if "eval_scores" in t.user_attrs}
    columns = list(ENV_LABELS.values())
    lines = ["| trained on \\ scored on | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for env_id, scores in sorted(rows.items(), key=lambda row: columns.index(env_label(row[0]))):
        cells = [f"{scores[c]['median_reward']:.1f} ({scores[c]['mean_reward']:.1f})" if c in scores else "-"
                 for c in columns]
        lines.append(f"| {env_label(env_id)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def trained_run_dirs(study: optuna.Study) -> dict[str, Path]:
    """4.1: train env id -> run folder of its finished training (from the trials' ``run_dir`` attribute).

    A run folder made by a worker on another machine is listed too; callers check it exists here.
    """
    return {t.params["train_env"]: Path(t.user_attrs["run_dir"]) for t in complete_trials(study)
            if "run_dir" in t.user_attrs and "train_env" in t.params}


def impute_pruned(study: optuna.Study, value: float = PRUNED_IMPUTED_SCORE) -> optuna.Study:
    """An in-memory copy of ``study`` where each PRUNED trial is COMPLETE with score ``value``.

    FAIL trials are left out; the stored study is not changed.
    """
    copy = optuna.create_study(direction=study.direction, study_name=f"{study.study_name}_pruned_as_{value:g}")
    trials: list[FrozenTrial] = []
    for trial in study.get_trials(deepcopy=False, states=FINISHED_STATES):
        if trial.state == TrialState.PRUNED:
            trial = optuna.trial.create_trial(
                state=TrialState.COMPLETE, value=value, params=trial.params, distributions=trial.distributions,
                user_attrs={**trial.user_attrs, "imputed": True}, system_attrs=trial.system_attrs,
                intermediate_values=trial.intermediate_values,
            )
        trials.append(trial)
    copy.add_trials(trials)
    return copy


def importance_evaluator() -> optuna.importance.PedAnovaImportanceEvaluator:
    """PED-ANOVA (Optuna's default) asking: which parameters put a trial in the better half?"""
    return optuna.importance.PedAnovaImportanceEvaluator(target_quantile=IMPORTANCE_TARGET_QUANTILE)


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Parameter importances (normalised to sum 1); ``{}`` when the study is too small to tell."""
    if len(complete_trials(study)) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(study, evaluator=importance_evaluator())
    except (ValueError, RuntimeError):  # e.g. no parameter shared by all trials
        return {}


def _plots(params: list[str]) -> dict[str, tuple[Callable[..., Any], Callable[..., Any], dict[str, Any]]]:
    """Plot name -> (plotly function, matplotlib function, keyword arguments)."""
    plots: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict[str, Any]]] = {
        "optimization_history": (plotly_vis.plot_optimization_history, mpl_vis.plot_optimization_history, {}),
        "intermediate_values": (plotly_vis.plot_intermediate_values, mpl_vis.plot_intermediate_values, {}),
    }
    if params:
        plots["param_importances"] = (plotly_vis.plot_param_importances, mpl_vis.plot_param_importances,
                                      {"evaluator": importance_evaluator()})
        plots["parallel_coordinate"] = (plotly_vis.plot_parallel_coordinate, mpl_vis.plot_parallel_coordinate,
                                        {"params": params})
    if len(params) >= 2:
        plots["contour"] = (plotly_vis.plot_contour, mpl_vis.plot_contour, {"params": params[:CONTOUR_MAX_PARAMS]})
    return plots


def save_study_plots(study: optuna.Study, out_dir: str | os.PathLike[str], *, prefix: str = "") -> list[Path]:
    """Write the analysis plots of ``study`` as interactive HTML (plotly) and PNG (matplotlib).

    Optimisation history, intermediate values (the learning curves the pruner saw), parameter
    importances, parallel coordinates, and contours of the most important parameter pairs.
    Plots that need more trials than the study has are skipped with a note.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    complete = complete_trials(study)
    # most important first; a parameter that never varied has nothing to show
    params = [p for p in param_importances(study) if len({t.params.get(p) for t in complete}) > 1]
    written: list[Path] = []
    for name, (plotly_plot, mpl_plot, kwargs) in _plots(params).items():
        stem = out / f"{prefix}{name}"
        try:
            plotly_plot(study, **kwargs).write_html(stem.with_suffix(".html"), include_plotlyjs=PLOTLY_JS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                # a study with no complete trial draws an empty history, and matplotlib says so
                warnings.filterwarnings("ignore", message="No artists with labels found", category=UserWarning)
                axes = mpl_plot(study, **kwargs)
        except (ValueError, RuntimeError) as exc:
            print(f"skipped plot {prefix}{name}: {exc}", flush=True)
            continue
        figure = (axes.flat[0] if isinstance(axes, np.ndarray) else axes).figure
        figure.savefig(stem.with_suffix(".png"), bbox_inches="tight")
        plt.close(figure)
        written += [stem.with_suffix(".html"), stem.with_suffix(".png")]
    return written

