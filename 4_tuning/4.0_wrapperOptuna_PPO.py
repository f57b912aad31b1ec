"""4.0 Tune the observation wrapper with Optuna: many short trials, then the best five trained longer.

What you learn: how an Optuna study samples settings (env id, stacked frames, frameskip,
number of envs, the aimbot view's colour/crop/marker), prunes trials that fall behind,
and survives crashes (a killed worker's trial is retried). Study 1 runs short trials
(1e6 steps each in the tutorial); its 5 best settings are enqueued into study 2, which
trains each for 1e7 steps. Start the same command in several terminals (or machines,
with a shared --storage) and they share the work: --n-trials is the study's total.
The lesson of the original tutorial shows up here: trained and scored on the deterministic
BreakoutNoFrameskip-v4, the winner memorises action sequences (try --eval-env ALE/Breakout-v5).

Run it:  python 4_tuning/4.0_wrapperOptuna_PPO.py --n-trials 50
Tiny:    python 4_tuning/4.0_wrapperOptuna_PPO.py --n-trials 3 --timesteps 2048 --promote-timesteps 4096 --top-k 2 --n-envs 2 --eval-episodes 2
Explore: python 4_tuning/4.0_study_explore.py --study-name 4.0_wrapper_study1
Read:    4_tuning/README.md
"""

# %% Imports
import time
from functools import partial

from rlbreakout.cli import run_main
from rlbreakout.errors import ConfigError
from rlbreakout.runs import create_run_dir, save_run_config, script_name, seed_everything, write_summary
from rlbreakout.tuning import (
    StudyObjective,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    promote_top_trials,
    promoted_count,
    resolve_storage_url,
    run_worker,
    sample_wrapper_params,
    study_settings,
    study_summary,
    trial_config,
    tuning_parser,
    validate_tuning_args,
)

# %% Config: the tutorial's budgets (study 1: 1e6 steps, 100 games; study 2: 1e7 steps, 20 games)
SHORT_TRIAL_STEPS = 1_000_000
LONG_TRIAL_STEPS = 10_000_000
SHORT_EVAL_GAMES = 100
LONG_EVAL_GAMES = 20
N_SHORT_TRIALS = 50
TOP_K = 5
MAX_N_ENVS = 16


def parse_args():
    parser = tuning_parser(
        __doc__.splitlines()[0], study_name="4.0_wrapper_study1", n_trials=N_SHORT_TRIALS,
        timesteps=SHORT_TRIAL_STEPS, n_envs=MAX_N_ENVS, env="BreakoutNoFrameskip-v4", eval_env=None,
        eval_episodes=SHORT_EVAL_GAMES,
    )
    group = parser.add_argument_group("4.0: wrapper search and promotion")
    group.add_argument("--wrapper", choices=("aimbot", "atari"), default="aimbot",
                       help="observation wrapper of every trial (aimbot: its options are tuned too)")
    group.add_argument("--top-k", type=int, default=TOP_K, help="best trials of study 1 trained again in study 2")
    group.add_argument("--promote-study-name", default=None, help="study 2's name (default: <study-name>_promoted)")
    group.add_argument("--promote-timesteps", type=int, default=LONG_TRIAL_STEPS, help="env steps per study-2 trial")
    group.add_argument("--promote-eval-episodes", type=int, default=LONG_EVAL_GAMES, help="whole games per study-2 evaluation")
    args = parser.parse_args()
    # --n-envs is the largest number of envs a trial may sample (powers of two up to it)
    if args.n_envs & (args.n_envs - 1):
        raise ConfigError(f"--n-envs is the largest n_envs sampled and must be a power of two, got {args.n_envs}.")
    if args.promote_timesteps <= 0 or args.promote_eval_episodes < 1:
        raise ConfigError("--promote-timesteps and --promote-eval-episodes must be positive.")
    validate_tuning_args(args)
    args.promote_study_name = args.promote_study_name or f"{args.study_name}_promoted"
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    script = script_name(__file__)
    storage_url = resolve_storage_url(args.storage, args.logdir)
    storage = open_storage(storage_url)
    run_dir = create_run_dir(args.logdir, script, "wrapper-study", args.seed)
    save_run_config(run_dir, vars(args))
    print(f"run folder: {run_dir}  (tensorboard --logdir {run_dir})", flush=True)
    seed_everything(args.seed)
    sample = partial(sample_wrapper_params, max_n_envs=args.n_envs, wrapper=args.wrapper)

    # %% Study 1: short trials over the wrapper settings, pruned when they fall behind the median
    base = trial_config(args)
    study1 = open_study(
        storage, args.study_name, sampler=partial(make_sampler, args.sampler),
        pruner=make_pruner(args.pruner, timesteps=args.timesteps, eval_freq=base["eval_freq"]),
        settings=study_settings(args, script, wrapper=args.wrapper, max_n_envs=args.n_envs),
    )
    objective1 = StudyObjective(sample, base, run_dir / "study1")
    run_worker(study1, objective1, args.n_trials)
    short = study_summary(study1, storage_url)
    print(f"study 1 best: {short['best_value']} with {short['best_params']}", flush=True)

    # %% Study 2: the top-k settings of study 1, trained longer (no pruning: we want all k)
    study2 = open_study(
        storage, args.promote_study_name, sampler=partial(make_sampler, args.sampler),
        pruner=make_pruner("none", timesteps=args.promote_timesteps, eval_freq=args.promote_timesteps),
        settings={**study_settings(args, script, wrapper=args.wrapper, max_n_envs=args.n_envs),
                  "timesteps_per_trial": args.promote_timesteps, "eval_episodes": args.promote_eval_episodes},
    )
    promoted = promote_top_trials(study1, study2, args.top_k)
    print(f"promoted trials {promoted} of {args.study_name} into {args.promote_study_name}", flush=True)
    long_base = trial_config(args, timesteps=args.promote_timesteps, eval_episodes=args.promote_eval_episodes)
    objective2 = StudyObjective(sample, long_base, run_dir / "study2", save_models=True)
    run_worker(study2, objective2, promoted_count(study2))
    final = study_summary(study2, storage_url)
    print(f"study 2 best: {final['best_value']} with {final['best_params']}", flush=True)

    # %% Summary
    steps = objective1.steps_trained + objective2.steps_trained
    seconds = objective1.train_seconds + objective2.train_seconds
    write_summary(run_dir, {
        "script": script,
        "env_id": "sampled: " + ", ".join(sorted({t.params['env_id'] for t in study1.trials if 'env_id' in t.params})),
        "timesteps": args.timesteps,
        "promote_timesteps": args.promote_timesteps,
        "seed": args.seed,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "steps_per_second": round(steps / seconds, 2) if seconds > 0 else 0.0,
        **final,
        "promoted_trials": promoted,
        "study1": short,
    })


if __name__ == "__main__":
    run_main(main)
