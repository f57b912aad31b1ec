"""Regenerate the learning-curve PNGs of the READMEs: from the ledger (results/) and from run folders.

Run it:  python pictures/make_plots.py --logdir runs
         python pictures/make_plots.py --logdir runs runs/flagship   # several roots
In Spyder: run it cell by cell; the defaults apply (--logdir runs).
The results_*.png charts come from the ledger alone: each seeded setting of the campaign
(pictures/campaign.py) as the mean across its seeds with a min-max band, in env steps.
The other charts take every finished run folder of their scripts under each --logdir.
Charts whose runs do not exist yet are skipped with a note. Nothing is drawn from invented data.
"""

# %% Imports
import argparse
from pathlib import Path

from rlbreakout.cli import parse_script_args
from rlbreakout.errors import RLBreakoutError
from rlbreakout.flag_types import input_folder, number, output_folder
from rlbreakout.results.campaign import CAMPAIGN, NO_FRAMESKIP, V5
from rlbreakout.results.ledger import LEDGER_DIR, env_label, read_ledger
from rlbreakout.results.plots import DEFAULT_SMOOTHING, find_runs, load_curves, plot_bands, plot_curves, seed_band
from rlbreakout.results.tables import groups

PICTURES = Path(__file__).resolve().parent

# %% The charts: file, scripts whose runs it shows, tag, y label, config keys in the legend
CHARTS = [
    ("1.3_first_ppo_score.png", ["1.3_train"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["timesteps", "n_envs"]),
    ("2.1_vs_1.3_score.png", ["1.3_train", "2.1_envs"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["timesteps", "n_envs"]),
    ("2.2_callbacks_eval.png", ["2.2_callbacks"], "eval/eval/mean_reward", "evaluation score (whole games)", ["timesteps", "n_envs"]),
    ("2.3_zoo_ppo_score.png", ["2.3_copying_hp_zoo"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["fast", "timesteps"]),
    ("2.3_zoo_ppo_eval.png", ["2.3_copying_hp_zoo"], "eval/eval/mean_reward", "evaluation score (whole games)", ["fast", "timesteps"]),
    ("2.3_zoo_ppo_value_loss.png", ["2.3_copying_hp_zoo"], "train/value_loss", "value loss", ["fast", "timesteps"]),
    ("2.4_vs_2.3_score.png", ["2.3_copying_hp_zoo", "2.4_ppo_atari_from_scratch"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["timesteps", "backend"]),
    ("3.3_aimbot_variants.png", ["3.3_aimbot_training"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["colour", "crop", "prediction", "frame_stack", "timesteps"]),
    ("3.3_vs_2.3_score.png", ["2.3_copying_hp_zoo", "3.3_aimbot_training"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["timesteps"]),
    ("4.1_env_comparison.png", ["4.1_PPO_env_comparison"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["timesteps"]),
]

#: Ledger charts: file, the (script, train env) settings on it, curve ("eval" or "train"), y label.
SEEDED = [("3.3_aimbot_training", NO_FRAMESKIP), ("2.3_copying_hp_zoo", NO_FRAMESKIP), ("3.3_aimbot_training", V5)]
DEFAULTS = [("1.3_train", NO_FRAMESKIP), ("2.1_envs", NO_FRAMESKIP), ("2.2_callbacks", NO_FRAMESKIP)]
LEDGER_CHARTS = [
    ("results_eval_3.3_vs_2.3.png", SEEDED, "eval", "evaluation score (mean of 10 whole games)"),
    ("results_game_score_3.3_vs_2.3.png", SEEDED, "train", "training game score (whole games)"),
    ("results_default_runs.png", DEFAULTS, "train", "training game score (whole games)"),
]
#: Training games are one point each: averaged into this many bins per seed before the band.
TRAIN_CURVE_BINS = 40


# %% Settings
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=input_folder, nargs="+", default=["runs"], help="roots of the run folders")
    parser.add_argument("--out", type=output_folder, default=str(PICTURES), help="folder for the PNGs")
    parser.add_argument("--smoothing", type=number(0, 1, high_open=True), default=DEFAULT_SMOOTHING)
    parser.add_argument("--ledger", type=input_folder, default=str(LEDGER_DIR), help="the results ledger (for the results_*.png charts)")
    return parse_script_args(parser)


args = parse_args()

# %% The ledger's charts: mean across seeds with a min-max band
ledger = read_ledger(Path(args.ledger))
written = 0
for filename, settings, curve, ylabel in LEDGER_CHARTS:
    bands = []
    for runs in groups(CAMPAIGN).values():
        if (runs[0].name, runs[0].env_id) not in settings:
            continue
        entries = [ledger[plan.key] for plan in runs if plan.key in ledger]
        if curve == "eval":
            points = [([h["step"] for h in e["eval_history"]], [h["mean_reward"] for h in e["eval_history"]])
                      for e in entries if e["eval_history"]]
        else:
            points = [([p[0] for p in e["train_curve"]], [p[1] for p in e["train_curve"]]) for e in entries
                      if e["train_curve"]]
        if points:
            label = f"{runs[0].name} on {env_label(runs[0].env_id)}"
            bands.append(seed_band(label, points, bins=None if curve == "eval" else TRAIN_CURVE_BINS))
    if not bands:
        print(f"skipped {filename}: no entry in {args.ledger} yet (pictures/campaign.py makes them)")
        continue
    path = plot_bands(bands, Path(args.out) / filename, title=f"ledger: {curve} curves, mean and min-max over seeds",
                      ylabel=ylabel)
    written += 1
    print(f"wrote {path} from {sum(b.n_seeds for b in bands)} ledger entries")

# %% The run-folder charts: every finished run of their scripts
for filename, scripts, tag, ylabel, keys in CHARTS:
    runs_by_script = {script: [run for root in args.logdir for run in find_runs(root, script)] for script in scripts}
    missing = [script for script, runs in runs_by_script.items() if not runs]
    if missing:  # a comparison chart with one side missing would mislead
        print(f"skipped {filename}: no finished run of {', '.join(missing)} under {' '.join(args.logdir)}")
        continue
    runs = [run for script_runs in runs_by_script.values() for run in script_runs]
    try:
        path = plot_curves(load_curves(runs, tag, keys), Path(args.out) / filename,
                           title=f"{' vs '.join(scripts)}: {tag}", ylabel=ylabel, smoothing=args.smoothing)
    except RLBreakoutError:
        print(f"skipped {filename}: no finished run of {', '.join(scripts)} under {' '.join(args.logdir)} logged {tag}")
        continue
    written += 1
    print(f"wrote {path} from {len(runs)} run(s)")
print(f"{written} chart(s) written")
