"""4.3 Tune the learning-rate and clip-range schedules: constant, linear or exponential.

What you learn: a schedule is a hyperparameter too, and its shape should not depend on
the run's length. A linear schedule reaches 0 at the end of *this* run, so the learning
rate at step 500k differs between a 1e6- and a 1e7-step run, and values tuned on short
trials do not transfer. Chapter 2's exponential schedule halves every `half_life` env
steps whatever the run's length; here its half-life is sampled in env steps, so a value
found with 1e6-step trials means the same in a long run. PPO's other values default to
the zoo's; pass the winners of 4.2 with --n-steps, --batch-size and --n-epochs.

Run it:  python 4_tuning/4.3_PPO_tuning_schedules.py --n-trials 30
Tiny:    python 4_tuning/4.3_PPO_tuning_schedules.py --n-trials 2 --timesteps 2048 --n-envs 2 --n-steps 64 --batch-size 64 --eval-episodes 2
Read:    4_tuning/README.md
"""

# %% Imports
import argparse
import time
from functools import partial

from rlbreakout.cli import run_main
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.runs import create_run_dir, save_run_config, script_name, seed_everything, write_summary
from rlbreakout.training import validate_ppo_args
from rlbreakout.tuning import (
    StudyObjective,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    resolve_storage_url,
    run_worker,
    sample_schedule_params,
    save_study_plots,
    study_settings,
    study_summary,
    trial_config,
    tuning_parser,
    validate_tuning_args,
)

# %% Config: the tutorial's budget, 1e6 steps and 30 games per trial, scored on v5, no pruning
TRIAL_STEPS = 1_000_000
EVAL_GAMES = 30
N_TRIALS = 30


def parse_args():
    parser = tuning_parser(
        __doc__.splitlines()[0], study_name="4.3_PPO_schedules", n_trials=N_TRIALS, timesteps=TRIAL_STEPS,
        n_envs=ZOO_ATARI_PPO["n_envs"], env="Breakout-v4", eval_env="ALE/Breakout-v5", eval_episodes=EVAL_GAMES,
        pruner="none",
    )
    ppo = parser.add_argument_group("PPO values kept fixed (e.g. the best point of 4.2)")
    ppo.add_argument("--n-steps", type=int, default=ZOO_ATARI_PPO["n_steps"], help="env steps per env per rollout")
    ppo.add_argument("--batch-size", type=int, default=ZOO_ATARI_PPO["batch_size"], help="minibatch size")
    ppo.add_argument("--n-epochs", type=int, default=ZOO_ATARI_PPO["n_epochs"], help="passes over each rollout")
    args = parser.parse_args()
    validate_tuning_args(args)
    validate_ppo_args(argparse.Namespace(**trial_config(args)))  # e.g. a batch size that does not divide the rollout
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

    # %% The study: TPE over schedule shapes, initial values and the half-life
    base = trial_config(args)
    study = open_study(
        storage, args.study_name, sampler=partial(make_sampler, args.sampler),
        pruner=make_pruner(args.pruner, timesteps=args.timesteps, eval_freq=base["eval_freq"]),
        settings=study_settings(args, script, env_id=args.env, n_steps=args.n_steps,
                                batch_size=args.batch_size, n_epochs=args.n_epochs),
    )
    objective = StudyObjective(sample_schedule_params, base, run_dir)
    run_worker(study, objective, args.n_trials)

    # %% Analysis plots and summary
    plots = save_study_plots(study, run_dir / "plots")
    result = study_summary(study, storage_url)
    print(f"best schedules: {result['best_params']} scored {result['best_value']}", flush=True)
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
        "plots": [str(p) for p in plots],
    })


if __name__ == "__main__":
    run_main(main)
