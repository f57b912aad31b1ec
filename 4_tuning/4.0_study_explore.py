"""4.0 Explore a study: which settings mattered, seen with and without the pruned trials.

What you learn: how to read an Optuna study after (or while) it runs: the optimisation
history, the learning curves the pruner saw, parameter importances, parallel coordinates
and contour plots, each saved as interactive HTML and as PNG. Optuna leaves pruned trials
out of importances and contours; but a setting that gets trials *pruned* matters a lot.
So, as the original tutorial did, the same views are drawn again on a copy of the study in
which every pruned trial counts as COMPLETE with a score of 0 (an imputation).

Run it:  python 4_tuning/4.0_study_explore.py --study-name 4.0_wrapper_study1
Live:    optuna-dashboard sqlite:///runs/optuna/studies.db
Read:    4_tuning/README.md
"""

# %% Imports
import argparse
import time

import optuna

from rlbreakout.cli import DEFAULT_LOGDIR, run_main
from rlbreakout.errors import RLBreakoutError
from rlbreakout.runs import create_run_dir, save_run_config, script_name, write_summary
from rlbreakout.tuning import (
    PRUNED_IMPUTED_SCORE,
    impute_pruned,
    open_storage,
    param_importances,
    redact_url,
    resolve_storage_url,
    save_study_plots,
    study_summary,
)


# %% Config: which study to read
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--storage", default=None, help="study database URL (default: $OPTUNA_STORAGE, else <logdir>'s SQLite file)")
    parser.add_argument("--study-name", default="4.0_wrapper_study1", help="the study to explore")
    parser.add_argument("--logdir", default=DEFAULT_LOGDIR, help="root folder of the run folders (plots go to a new one)")
    parser.add_argument("--impute-value", type=float, default=PRUNED_IMPUTED_SCORE,
                        help="score given to pruned trials in the imputed views")
    return parser.parse_args()


def load(storage: optuna.storages.BaseStorage, name: str, url: str) -> optuna.Study:
    """The study called ``name``, or one line naming the studies that do exist."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise RLBreakoutError(
            f"no study {name!r} in {redact_url(url)}; it holds: {', '.join(names) or 'no studies'}. "
            f"Pass --study-name (and the --storage the study was run with)."
        ) from None


def show(title: str, importances: dict[str, float]) -> None:
    print(title)
    for param, value in importances.items():
        print(f"  {param:24s} {value:6.3f}")


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    script = script_name(__file__)
    url = resolve_storage_url(args.storage, args.logdir)
    study = load(open_storage(url), args.study_name, url)
    run_dir = create_run_dir(args.logdir, script, args.study_name, 0)
    save_run_config(run_dir, vars(args))

    # %% Optuna's views: history, learning curves, importances, parallel coordinates, contours
    summary = study_summary(study, url)
    print(f"study {study.study_name}: {summary['n_complete']} complete, {summary['n_pruned']} pruned, "
          f"{summary['n_failed']} failed; best {summary['best_value']} with {summary['best_params']}")
    plots = save_study_plots(study, run_dir)
    importances = param_importances(study)
    show("importance (complete trials only):", importances)

    # %% The same views with pruned trials imputed as score 0
    imputed = impute_pruned(study, args.impute_value)
    prefix = f"pruned_as_{args.impute_value:g}_"
    plots += save_study_plots(imputed, run_dir, prefix=prefix)
    imputed_importances = param_importances(imputed)
    show(f"importance (pruned trials scored {args.impute_value:g}):", imputed_importances)
    print(f"plots: {run_dir}/*.html (interactive) and *.png;  live view: optuna-dashboard {redact_url(url)}")

    # %% Summary
    write_summary(run_dir, {
        "script": script,
        "env_id": str(study.user_attrs.get("env_id", "see study")),
        "timesteps": int(study.user_attrs.get("timesteps_per_trial", 0)),
        "seed": 0,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "steps_per_second": 0.0,
        **summary,
        "importances": importances,
        "imputed_importances": imputed_importances,
        "impute_value": args.impute_value,
        "plots": [str(p) for p in plots],
    })


if __name__ == "__main__":
    run_main(main)
