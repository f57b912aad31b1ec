"""Regenerate the learning-curve PNGs of the chapter READMEs from run folders.

Run it:  python pictures/make_plots.py --logdir runs
         python pictures/make_plots.py --logdir runs runs/flagship   # several roots
In Spyder: run it cell by cell; the defaults apply (--logdir runs).
Each chart takes every finished run folder of its scripts under each --logdir; charts whose
runs do not exist yet are skipped with a note. Nothing is drawn from invented data.
"""

# %% Imports
import argparse
from pathlib import Path

from rlbreakout.cli import parse_script_args
from rlbreakout.errors import RLBreakoutError
from rlbreakout.plots import DEFAULT_SMOOTHING, find_runs, load_curves, plot_curves

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
    ("3.3_aimbot_variants.png", ["3.3_aimbot_training"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["prediction", "frame_stack", "timesteps"]),
    ("3.3_vs_2.3_score.png", ["2.3_copying_hp_zoo", "3.3_aimbot_training"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["timesteps"]),
    ("4.1_env_comparison.png", ["4.1_PPO_env_comparison"], "rollout/ep_rew_mean", "game score (mean of last 100 games)", ["timesteps"]),
]


# %% Settings
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", nargs="+", default=["runs"], help="roots of the run folders")
    parser.add_argument("--out", default=str(PICTURES), help="folder for the PNGs")
    parser.add_argument("--smoothing", type=float, default=DEFAULT_SMOOTHING)
    return parse_script_args(parser)


args = parse_args()

# %% Draw every chart whose runs exist
written = 0
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
