"""4.0 Explore a study: which settings mattered, seen with and without the pruned trials.

What you learn: how to read an Optuna study after (or while) it runs: the optimisation
history, the learning curves the pruner saw, parameter importances, parallel coordinates
and contour plots, each saved as interactive HTML and as PNG. Optuna leaves pruned trials
out of importances and contours; but a setting that gets trials *pruned* matters a lot.
So, as the original tutorial did, the same views are drawn again on a copy of the study in
which every pruned trial counts as COMPLETE with a score of 0 (an imputation).

Run it:    python 4_tuning/4.0_study_explore.py --study-name 4.0_wrapper_study1
Live:      optuna-dashboard sqlite:///runs/optuna/studies.db
In Spyder: run it cell by cell (Ctrl+Return); `study`, `imputed` and the importances stay in the
           Variable Explorer (set STUDY_NAME in the Settings cell to read another study).
Read:      4_tuning/README.md
"""

# %% Imports
import argparse

import optuna

from rlbreakout.cli import DEFAULT_LOGDIR, parse_script_args
from rlbreakout.flag_types import number, output_folder
from rlbreakout.runs import Run
from rlbreakout.tune.analysis import (
    PRUNED_IMPUTED_SCORE,
    impute_pruned,
    param_importances,
    save_study_plots,
    study_summary,
)
from rlbreakout.tune.storage import open_storage, redact_url, require_study, resolve_storage_url


# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
STUDY_NAME = "4.0_wrapper_study1"  # --study-name: the study to explore (4.2_PPO_grid, 4.3_PPO_schedules, ...)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--storage", default=None,
                        help="study database URL (default: $OPTUNA_STORAGE, else <logdir>'s SQLite file)")
    parser.add_argument("--study-name", default=STUDY_NAME, help="the study to explore")
    parser.add_argument("--logdir", type=output_folder, default=DEFAULT_LOGDIR, help="root folder of the run folders (plots go to a new one)")
    parser.add_argument("--impute-value", type=number(), default=PRUNED_IMPUTED_SCORE,
                        help="score given to pruned trials in the imputed views")
    return parse_script_args(parser)


args = parse_args()
url = resolve_storage_url(args.storage, args.logdir)
storage = open_storage(url)  # an unreachable URL is one line
require_study(storage, args.study_name, url)  # a wrong name is one line naming the studies there
study = optuna.load_study(study_name=args.study_name, storage=storage)
run = Run(__file__, env_id=args.study_name, seed=0, logdir=args.logdir, config={**vars(args), "storage": redact_url(url)})

# %% Optuna's views: history, learning curves, importances, parallel coordinates, contours
summary = study_summary(study, url)
print(f"study {study.study_name}: {summary['n_complete']} complete, {summary['n_pruned']} pruned, "
      f"{summary['n_failed']} failed; best {summary['best_value']} with {summary['best_params']}")
plots = save_study_plots(study, run.dir)
importances = param_importances(study)
print("importance (complete trials only):")
for param, value in importances.items():
    print(f"  {param:24s} {value:6.3f}")

# %% The same views with pruned trials imputed as score 0
imputed = impute_pruned(study, args.impute_value)
plots += save_study_plots(imputed, run.dir, prefix=f"pruned_as_{args.impute_value:g}_")
imputed_importances = param_importances(imputed)
print(f"importance (pruned trials scored {args.impute_value:g}):")
for param, value in imputed_importances.items():
    print(f"  {param:24s} {value:6.3f}")
print(f"plots: {run.dir}/*.html (interactive) and *.png;  live view: optuna-dashboard {redact_url(url)}")

# %% Summary
run.finish(timesteps=int(study.user_attrs.get("timesteps_per_trial", 0)), **summary, importances=importances,
           imputed_importances=imputed_importances, impute_value=args.impute_value, plots=[str(p) for p in plots])
