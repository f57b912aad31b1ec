"""4.2 A grid over PPO's batch size, epochs and rollout length, with Optuna's GridSampler.

What you learn: how batch_size, n_epochs and n_steps interact. One rollout holds
n_steps * n_envs steps; PPO cuts it into minibatches of batch_size and passes over it
n_epochs times, so together they set how many gradient steps each rollout buys.
GridSampler tries every combination once (the grid must be valid: each batch size
divides each rollout), shared by as many workers as you start. Trials train on
Breakout-v4 and are scored on the sticky-action ALE/Breakout-v5 (the lesson of 4.1).
At the end the study's analysis plots are written next to summary.json.

Run it:  python 4_tuning/4.2_PPO_tuning_grid.py
Tiny:    python 4_tuning/4.2_PPO_tuning_grid.py --timesteps 2048 --n-envs 2 --eval-episodes 2 --batch-sizes 64 --n-epochs-grid 1 2 --n-steps-grid 64
Read:    4_tuning/README.md
"""

# %% Imports
import time
from functools import partial

import optuna

from rlbreakout.cli import run_main
from rlbreakout.errors import ConfigError
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.runs import create_run_dir, save_run_config, script_name, seed_everything, write_summary
from rlbreakout.tuning import (
    DEFAULT_GRID,
    StudyObjective,
    check_grid,
    make_pruner,
    open_storage,
    open_study,
    resolve_storage_url,
    run_worker,
    sample_grid_params,
    save_study_plots,
    study_settings,
    study_summary,
    trial_config,
    tuning_parser,
    validate_tuning_args,
)

# %% Config: the tutorial's budget, 1e6 steps and 100 games per trial, scored on v5
TRIAL_STEPS = 1_000_000
EVAL_GAMES = 100


def parse_args():
    parser = tuning_parser(
        __doc__.splitlines()[0], study_name="4.2_PPO_grid", n_trials=None, timesteps=TRIAL_STEPS,
        n_envs=ZOO_ATARI_PPO["n_envs"], env="Breakout-v4", eval_env="ALE/Breakout-v5", eval_episodes=EVAL_GAMES,
        sampler=None, pruner="none",
    )
    grid = parser.add_argument_group("4.2: the grid")
    grid.add_argument("--batch-sizes", type=int, nargs="+", default=list(DEFAULT_GRID["batch_size"]))
    grid.add_argument("--n-epochs-grid", type=int, nargs="+", default=list(DEFAULT_GRID["n_epochs"]))
    grid.add_argument("--n-steps-grid", type=int, nargs="+", default=list(DEFAULT_GRID["n_steps"]))
    args = parser.parse_args()
    validate_tuning_args(args)
    args.grid = {"batch_size": args.batch_sizes, "n_epochs": args.n_epochs_grid, "n_steps": args.n_steps_grid}
    size = check_grid(args.grid, args.n_envs)
    if args.n_trials is None:
        args.n_trials = size
    elif args.n_trials > size:
        raise ConfigError(f"--n-trials {args.n_trials} is more than the grid's {size} points; leave it out to run them all.")
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    script = script_name(__file__)
    storage_url = resolve_storage_url(args.storage, args.logdir)
    storage = open_storage(storage_url)
    run_dir = create_run_dir(args.logdir, script, args.env, args.seed)
    save_run_config(run_dir, vars(args))
    print(f"run folder: {run_dir}  (tensorboard --logdir {run_dir})", flush=True)
    seed_everything(args.seed)

    # %% The study: GridSampler visits each point once, across all workers
    base = trial_config(args)
    study = open_study(
        storage, args.study_name, sampler=optuna.samplers.GridSampler(args.grid, seed=args.seed),
        pruner=make_pruner(args.pruner, timesteps=args.timesteps, eval_freq=base["eval_freq"]),
        settings=study_settings(args, script, env_id=args.env, grid=args.grid),
    )
    objective = StudyObjective(partial(sample_grid_params, grid=args.grid), base, run_dir)
    run_worker(study, objective, args.n_trials)

    # %% Analysis plots: history, importances, parallel coordinates, contours (HTML and PNG)
    plots = save_study_plots(study, run_dir / "plots")
    result = study_summary(study, storage_url)
    print(f"best grid point: {result['best_params']} scored {result['best_value']}", flush=True)
    write_summary(run_dir, {
        "script": script,
        "env_id": args.env,
        "eval_env": args.eval_env,
        "timesteps": args.timesteps,
        "seed": args.seed,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "steps_per_second": round(objective.steps_trained / objective.train_seconds, 2) if objective.train_seconds else 0.0,
        **result,
        "grid": args.grid,
        "plots": [str(p) for p in plots],
    })


if __name__ == "__main__":
    run_main(main)
