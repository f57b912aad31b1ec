"""4.1 Train on each Breakout version, score on all three: deterministic training does not transfer.

What you learn: Breakout-v4 (random frameskip 2-4), BreakoutNoFrameskip-v4 (fully
deterministic: frameskip 4 in the wrapper, no sticky actions) and ALE/Breakout-v5
(frameskip 4, sticky actions 25 %) are different games for an agent. With settings
equalised (same PPO, same wrapper, frameskip applied once, 4 actions), one model is
trained on each and every model is evaluated on all three through MultiEnvEvalCallback
(TensorBoard tags eval/v4, eval/v4NoFS, eval/v5). The table shows the original tutorial's
finding: a model trained on NoFrameskip-v4 scores well at home and badly elsewhere.
Each training is one trial of a small Optuna study (a grid over the train env), so
several workers can share the three trainings.

Run it:  python 4_tuning/4.1_PPO_env_comparison.py
Tiny:    python 4_tuning/4.1_PPO_env_comparison.py --timesteps 4096 --eval-freq 2048 --eval-episodes 2 --gif-games 0
Read:    4_tuning/README.md
"""

# %% Imports
import argparse
import time

import optuna

from rlbreakout.cli import run_main
from rlbreakout.envs import BREAKOUT_ENV_IDS
from rlbreakout.errors import ConfigError
from rlbreakout.fast import configure_threads
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.render import record_comparison_gif
from rlbreakout.runs import create_run_dir, save_run_config, script_name, write_summary
from rlbreakout.training import EVAL_SEED_OFFSET, FINAL_MODEL_FILE, load_policy, ppo_parser, train_ppo, validate_ppo_args
from rlbreakout.tuning import (
    ENV_LABELS,
    add_study_flags,
    env_comparison_table,
    env_label,
    open_storage,
    open_study,
    resolve_storage_url,
    run_worker,
    study_summary,
    trained_run_dirs,
)

# %% Config: the tutorial's run, 1e7 steps per env, 10 evaluations of 100 games on each env
TRAIN_STEPS = 10_000_000
EVAL_EVERY_STEPS = 1_000_000
EVAL_GAMES = 100
#: Every model is scored on this env: the stochastic one, where memorised sequences break.
SCORE_ENV = "ALE/Breakout-v5"
COMPARISON_GIF = "side_by_side_on_v5.gif"


def parse_args() -> argparse.Namespace:
    parser = ppo_parser(__doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=TRAIN_STEPS,
                        eval_freq=EVAL_EVERY_STEPS, eval_episodes=EVAL_GAMES)
    add_study_flags(parser, study_name="4.1_PPO_env_comparison", n_trials=None)
    parser.add_argument("--train-envs", nargs="+", choices=BREAKOUT_ENV_IDS, default=list(BREAKOUT_ENV_IDS),
                        help="envs to train on, one model each (here they replace --env)")
    args = parser.parse_args()
    if args.resume or args.load:
        raise ConfigError("4.1 trains one fresh model per env; --resume and --load are for the single-run scripts.")
    if args.n_trials is None:
        args.n_trials = len(args.train_envs)
    elif not 1 <= args.n_trials <= len(args.train_envs):
        raise ConfigError(f"--n-trials must be between 1 and the {len(args.train_envs)} train envs, got {args.n_trials}.")
    for env_id in args.train_envs:
        validate_ppo_args(argparse.Namespace(**{**vars(args), "env": env_id}))
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    script = script_name(__file__)
    storage_url = resolve_storage_url(args.storage, args.logdir)
    storage = open_storage(storage_url)
    run_dir = create_run_dir(args.logdir, script, "all-envs", args.seed)
    save_run_config(run_dir, vars(args))
    print(f"torch threads: {configure_threads()['torch_threads']} (the cores free now; workers may share a machine)")
    trained: list[dict] = []

    # %% One trial = one full training on a train env, evaluated on v4, v4NoFS and v5
    def objective(trial: optuna.Trial) -> float:
        env_id = trial.suggest_categorical("train_env", args.train_envs)
        # every model is evaluated on all three ids, logged as eval/v4/*, eval/v4NoFS/*, eval/v5/*
        eval_envs = {label: eval_id for eval_id, label in ENV_LABELS.items()}
        result = train_ppo(argparse.Namespace(**{**vars(args), "env": env_id}), script=__file__,
                           eval_env_ids=eval_envs, headline_eval=env_label(env_id),
                           config_extra={"study_name": args.study_name})
        scores = {label: result.summary["eval_by_env"][label] for label in eval_envs}
        trial.set_user_attr("eval_scores", {label: {k: s[k] for k in ("mean_reward", "median_reward", "n_games")}
                                            for label, s in scores.items()})
        trial.set_user_attr("run_dir", str(result.run_dir))
        trained.append(result.summary)
        return scores[env_label(SCORE_ENV)]["median_reward"]

    study = open_study(
        storage, args.study_name, sampler=optuna.samplers.GridSampler({"train_env": args.train_envs}, seed=args.seed),
        pruner=optuna.pruners.NopPruner(),
        settings={"script": script, "timesteps_per_trial": args.timesteps, "eval_episodes": args.eval_episodes},
    )
    run_worker(study, objective, args.n_trials)

    # %% The table: train env x eval env (median whole-game score, mean in brackets)
    table = env_comparison_table(study)
    table_path = run_dir / "env_comparison.md"
    table_path.write_text(
        f"Scores after {args.timesteps} env steps per model, {args.eval_episodes} whole games per cell: "
        f"median (mean).\n\n{table}"
    )
    print(table, flush=True)

    # %% The picture: every model playing v5, side by side (one game each, same seed)
    comparison_gif = None
    if args.gif_games > 0:
        models = {}
        for env_id, model_dir in trained_run_dirs(study).items():
            if (model_dir / FINAL_MODEL_FILE).exists():  # a worker on another machine keeps its own
                models[f"trained on {env_label(env_id)}"] = load_policy(model_dir / FINAL_MODEL_FILE, device=args.device)
        if models:
            comparison_gif, games = record_comparison_gif(
                models, run_dir / COMPARISON_GIF, SCORE_ENV, seed=args.seed + EVAL_SEED_OFFSET,
                max_steps=args.gif_max_steps, frame_stack=args.frame_stack,
            )
            print(f"side by side on {SCORE_ENV}: " + ", ".join(f"{name} {r.scores[0]:g}" for name, r in games.items())
                  + f" -> {comparison_gif}", flush=True)
    steps = sum(s["timesteps"] for s in trained)
    seconds = sum(s["timesteps"] / s["steps_per_second"] for s in trained if s["steps_per_second"])
    write_summary(run_dir, {
        "script": script,
        "env_id": ", ".join(args.train_envs),
        "timesteps": args.timesteps,
        "seed": args.seed,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "steps_per_second": round(steps / seconds, 2) if seconds else 0.0,
        **study_summary(study, storage_url),
        "table_path": str(table_path),
        "table": table,
        "comparison_gif_path": str(comparison_gif) if comparison_gif else None,
        "runs": [s["run_dir"] for s in trained],
    })


if __name__ == "__main__":
    run_main(main)
