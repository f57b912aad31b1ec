"""Export the best policy of a seeded setting in the ledger into models/, as a stock fp32 policy file.

Run it:  python pictures/export_best_policy.py --out models/ppo_aimbot_policy.pt
         python pictures/export_best_policy.py --script 2.3_copying_hp_zoo --out models/x.pt
"Best" is the highest mean over 20 whole games on --env among the setting's seeds in
results/. The run folder of that seed (runs/campaign/..., not committed) must be on this
machine: the weights come from its model.zip. The file is SB3's own CnnPolicy, weights
only (rlbreakout/results/export.py), so stable-baselines3 alone loads it. It prints the lines that
models/README.md records: the command, commit, CPU and scores. Beside the file it writes
<out>.json: the ledger key it came from and the file's sha256, from which make_tables.py
writes models/README.md's block about it (and a test checks the file is the one recorded).
"""

# %% Imports
import argparse
import hashlib
import json
from pathlib import Path

from rlbreakout.cli import parse_script_args
from rlbreakout.errors import RLBreakoutError
from rlbreakout.flag_types import input_folder, output_file
from rlbreakout.results.campaign import CAMPAIGN, NO_FRAMESKIP, REPO_ROOT, in_repo
from rlbreakout.results.export import export_stock_policy
from rlbreakout.results.ledger import LEDGER_DIR, read_ledger


# %% Settings
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script", default="3.3_aimbot_training", help="the script whose best seed to export")
    parser.add_argument("--train-env", default=NO_FRAMESKIP, help="the env it trained on")
    parser.add_argument("--env", default=NO_FRAMESKIP, help="the eval env whose mean picks the best seed")
    parser.add_argument("--ledger", type=input_folder, default=str(LEDGER_DIR), help="the ledger folder")
    parser.add_argument("--out", type=output_file, required=True, help="the policy file to write (e.g. models/ppo_aimbot_policy.pt)")
    return parse_script_args(parser)


args = parse_args()

# %% The best seed of the setting, by its mean on --env
# Only the campaign's planned setting of that script and env (its flags, steps, default view),
# the one the demo's replay and models/README.md describe.
planned_keys = {plan.key for plan in CAMPAIGN if plan.name == args.script and plan.env_id == args.train_env}
candidates = [entry for key, entry in read_ledger(Path(args.ledger)).items()
              if key in planned_keys and args.env in entry["evaluations"]]
if not candidates:
    raise RLBreakoutError(f"no ledger entry of --script {args.script} trained on --train-env {args.train_env} and "
                          f"scored on --env {args.env}; "
                          f"run the campaign first (pictures/campaign.py).")
best = max(candidates, key=lambda entry: entry["evaluations"][args.env]["mean_reward"])
summary = best["summary"]

# %% Export it, and print what models/README.md records
source = REPO_ROOT / summary["model_path"]  # recorded relative to the repository root (or absolute)
path = export_stock_policy(source, args.out)
record = {"ledger_key": best["key"], "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
          "source_model": str(in_repo(source)), "picked_by": f"highest mean on {args.env}"}
path.with_suffix(".json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
print(f"exported {best['key']} ({path.stat().st_size / 1e6:.1f} MB): {path}")
print(f"trained by: {best['command']}")
print(f"commit {summary['git_commit']} (dirty: {summary['git_dirty']}), CPU {summary['cpu_model']}, "
      f"{summary['timesteps']:,} env steps in {summary['wall_seconds']:,.0f} s, {summary['steps_per_second']} steps/s")
for env_id, evaluation in best["evaluations"].items():
    print(f"{env_id}: mean {evaluation['mean_reward']:.2f}, median {evaluation['median_reward']:.1f} over "
          f"{evaluation['n_games']} whole games ({evaluation['command']})")
