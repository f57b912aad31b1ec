"""Record a fresh evaluation of a committed model in its record, models/<name>.json, for make_tables.py.

Run it, after evaluating the very file over 100 whole games on each env, on seeds apart from
those of the runs that picked it:

    python 3_obswrapper/3.3_aimbot_training.py --load models/ppo_aimbot_policy.pt --seed 100 \
        --eval-episodes 100 --gif-games 0 --env BreakoutNoFrameskip-v4      # and --env ALE/Breakout-v5
    python pictures/record_fresh_evaluation.py --model models/ppo_aimbot_policy.pt \
        runs/3.3_aimbot_training/<run>/summary.json runs/3.3_aimbot_training/<run>/summary.json
    python pictures/make_tables.py

It writes only the record named by --model (key ``fresh_evaluations``, one entry per env:
mean, standard error, median, games, seed, script, commit, CPU; rlbreakout/results/fresh.py
says why the ledger's figure is not the file's score) and prints what it recorded.
"""

# %% Imports
import argparse
import json
from pathlib import Path

from rlbreakout.cli import parse_script_args
from rlbreakout.errors import RLBreakoutError
from rlbreakout.files import read_json, write_text_atomic
from rlbreakout.flag_types import input_file, whole
from rlbreakout.provenance import REPO_ROOT
from rlbreakout.results.fresh import FRESH_GAMES, FRESH_KEY, fresh_evaluation


# %% Settings
def exported_model(text: str) -> str:
    """A ``type=`` for --model: an existing file with its record (<name>.json) beside it."""
    text = input_file(text)
    if not Path(text).with_suffix(".json").is_file():
        raise argparse.ArgumentTypeError(f"{text} has no record {Path(text).with_suffix('.json').name} beside it; only "
                                         f"a model exported by pictures/export_best_policy.py has one: export it first")
    return text


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=exported_model, required=True,
                        help="the committed policy file (models/<name>.pt, its record <name>.json beside it)")
    parser.add_argument("--min-games", type=whole(2, 100_000), default=FRESH_GAMES, help="whole games each evaluation must have played")
    parser.add_argument("summaries", nargs="+", type=input_file, help="summary.json of each --load evaluation")
    return parse_script_args(parser)


args = parse_args()
model = Path(args.model).resolve()
record_path = model.with_suffix(".json")

# %% Read and check every evaluation before writing anything
record = read_json(record_path, "restore it with git checkout, or export the model again.")
if not isinstance(record, dict):
    raise RLBreakoutError(f"{record_path} is not a model record (a JSON object); restore it with git checkout, or "
                          f"export the model again.")
fresh = record.get(FRESH_KEY, {})
if not isinstance(fresh, dict):
    raise RLBreakoutError(f"{record_path}'s {FRESH_KEY} is not a JSON object; restore the file with git checkout.")
fresh = dict(fresh)
for summary_path in args.summaries:
    summary = read_json(summary_path, "point at the summary.json of a finished --load evaluation.")
    if not isinstance(summary, dict):
        raise RLBreakoutError(f"{summary_path} holds no run summary; point at the summary.json of a finished "
                              f"--load evaluation.")
    env_id, figures = fresh_evaluation(summary, model, REPO_ROOT, min_games=args.min_games)
    fresh[env_id] = figures
    print(f"{env_id}: mean {figures['mean']:.2f} (standard error {figures['standard_error']:.2f}), "
          f"median {figures['median']:.1f} over {figures['n_games']} whole games, seed {figures['seed']}, "
          f"commit {str(figures['git_commit'])[:7]}, {figures['cpu_model']}")

# %% Write the record
record[FRESH_KEY] = fresh
write_text_atomic(record_path, json.dumps(record, indent=2, sort_keys=True) + "\n")
print(f"recorded in {record_path}; now run python pictures/make_tables.py")
