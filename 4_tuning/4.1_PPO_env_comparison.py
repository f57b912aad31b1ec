"""4.1 Train on each Breakout version, score on all three: does deterministic training transfer?

What you learn: Breakout-v4 (random frameskip 2-4), BreakoutNoFrameskip-v4 (fully
deterministic: frameskip 4 in the wrapper, no sticky actions) and ALE/Breakout-v5
(frameskip 4, sticky actions 25 %) are different games for an agent. With settings
equalised (same PPO, same wrapper, frameskip applied once, 4 actions), one model is
trained on each and every model is evaluated on all three through MultiEnvEvalCallback
(TensorBoard tags eval/v4, eval/v4NoFS, eval/v5). The original tutorial found that a model
trained on NoFrameskip-v4 scores well at home and badly elsewhere; at 3e5 steps per env
(4_tuning/README.md) every model is still a beginner and the NoFrameskip model even scored a
little higher on v5 than at home: the table measures the gap at your budget.
Each training is one trial of a small Optuna study (a grid over the train env), so
several workers can share the three trainings.

Run it:    python 4_tuning/4.1_PPO_env_comparison.py
Tiny:      python 4_tuning/4.1_PPO_env_comparison.py --timesteps 4096 --eval-freq 2048 --eval-episodes 2 --gif-games 0
In Spyder: no flag reaches a cell: for the tiny run set the Settings cell's TIMESTEPS, EVAL_FREQ,
           EVAL_EPISODES and GIF_GAMES to the tiny values in their comments (the defaults train
           3 x 1e7 steps), then run it cell by cell (Ctrl+Return); `study`, `table`, `models`,
           and the best model (`model`, scored on v5) with its training `env` stay in the Variable Explorer.
Read:      4_tuning/README.md
"""

# %% Imports
import copy

import optuna

from rlbreakout.env_ids import BREAKOUT_ENV_IDS, check_env_id
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.render import record_comparison_gif
from rlbreakout.runs import Run
from rlbreakout.speed.threads import configure_threads
from rlbreakout.training import (
    EVAL_SEED_OFFSET,
    FINAL_MODEL_FILE,
    load_policy,
    load_ppo,
    parse_ppo_args,
    ppo_parser,
    train_ppo,
    validate_ppo_args,
)
from rlbreakout.tune.analysis import (
    NoBestModelError,
    best_trial_model,
    env_comparison_table,
    study_summary,
    trained_run_dirs,
)
from rlbreakout.tune.flags import add_study_flags
from rlbreakout.tune.spaces import ENV_LABELS, env_label
from rlbreakout.tune.storage import check_study_settings, open_storage, redact_url, resolve_storage_url
from rlbreakout.tune.workers import run_worker

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
# The tutorial's run: 1e7 steps per env, 10 evaluations of 100 games on each env. Tiny values in the comments.
SEED = 0  # --seed
TIMESTEPS = 10_000_000  # --timesteps: env steps per training env (tiny: 4_096)
N_ENVS = ZOO_ATARI_PPO.n_envs  # --n-envs: the zoo's 8
EVAL_FREQ = 1_000_000  # --eval-freq: env steps between evaluations on all three ids (tiny: 2_048)
EVAL_EPISODES = 100  # --eval-episodes: whole games per evaluation (tiny: 2)
GIF_GAMES = 1  # --gif-games: grid side of the side-by-side gif; 0: none (tiny: 0)
FAST = False  # --fast: the speed levers of 0_setup/0.2_benchmark.py
#: Every model is scored on this env: the stochastic one, where memorised sequences break.
SCORE_ENV = "ALE/Breakout-v5"
COMPARISON_GIF = "side_by_side_on_v5.gif"
#: Every model is evaluated on all three ids, logged as eval/v4/*, eval/v4NoFS/*, eval/v5/*.
EVAL_ENV_IDS = {label: env_id for env_id, label in ENV_LABELS.items()}
#: The best model's training env is built again with this many envs, to look at and to play with.
BEST_TRIAL_N_ENVS = 2


def parse_args():
    parser = ppo_parser(__doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=TIMESTEPS,
                        eval_freq=EVAL_FREQ, eval_episodes=EVAL_EPISODES)
    parser.set_defaults(seed=SEED, n_envs=N_ENVS, gif_games=GIF_GAMES, fast=FAST)
    add_study_flags(parser, study_name="4.1_PPO_env_comparison", n_trials=None)
    parser.add_argument("--train-envs", nargs="+", choices=BREAKOUT_ENV_IDS, default=list(BREAKOUT_ENV_IDS),
                        help="envs to train on, one model each (here they replace --env)")
    return parse_ppo_args(parser)


args = parse_args()
if args.resume or args.load:
    raise ConfigError("4.1 trains one fresh model per env; --resume and --load are for the single-run scripts.")
if args.n_trials is None:
    args.n_trials = len(args.train_envs)
elif not 1 <= args.n_trials <= len(args.train_envs):
    raise ConfigError(f"--n-trials must be between 1 and the {len(args.train_envs)} train envs, got {args.n_trials}.")
check_env_id(args.env)  # not trained on here (--train-envs is), but a typo still says so
trial_args = {}  # train env -> the flags of its training, checked now (one line, nothing created)
for env_id in args.train_envs:
    trial_args[env_id] = copy.copy(args)
    trial_args[env_id].env = env_id
    validate_ppo_args(trial_args[env_id])
storage_url = resolve_storage_url(args.storage, args.logdir)
storage = open_storage(storage_url)  # heartbeats on; an unreachable URL is one line
threads = configure_threads()  # several workers often share a machine: torch takes only the free cores
print(f"torch threads: {threads['torch_threads']} (the cores free now; workers may share a machine)")
run = Run(__file__, env_id="all-envs", seed=args.seed, logdir=args.logdir,
          config={**vars(args), "storage": redact_url(storage_url)})
trained = []  # the summary.json of each training this worker ran


# %% The objective: one trial = one full training on a train env, evaluated on v4, v4NoFS and v5
def objective(trial: optuna.Trial) -> float:
    env_id = trial.suggest_categorical("train_env", args.train_envs)
    # chapter 2's whole run (2.3's cells in one call): its own run folder, TensorBoard and summary.json
    result = train_ppo(trial_args[env_id], script=__file__, eval_env_ids=EVAL_ENV_IDS,
                       headline_eval=env_label(env_id), config_extra={"study_name": args.study_name})
    run.trained_steps += result.summary["timesteps"]
    run.train_seconds += result.summary["train_seconds"]
    scores = {label: result.summary["eval_by_env"][label] for label in EVAL_ENV_IDS}
    trial.set_user_attr("eval_scores", {label: {k: s[k] for k in ("mean_reward", "median_reward", "n_games")}
                                        for label, s in scores.items()})
    trial.set_user_attr("run_dir", str(result.run_dir))
    trial.set_user_attr("model_path", result.summary["model_path"])  # train_ppo saved it in the run folder
    trained.append(result.summary)
    return scores[env_label(SCORE_ENV)]["median_reward"]


# %% The study: a grid over the train envs, each trained once over all workers
study = optuna.create_study(storage=storage, study_name=args.study_name, direction="maximize",
                            sampler=optuna.samplers.GridSampler({"train_env": args.train_envs}, seed=args.seed),
                            pruner=optuna.pruners.NopPruner(), load_if_exists=True)
check_study_settings(study, {"script": run.name, "timesteps_per_trial": args.timesteps,
                             "eval_episodes": args.eval_episodes})
run_worker(study, objective, args.n_trials)  # study.optimize made crash-safe, shared by all workers

# %% The best model (the headline: scored on v5) and the env it trained on, left in the console
env = model = None
try:
    best, model_path = best_trial_model(study)  # the best COMPLETE trial and the model.zip it saved
except NoBestModelError as exc:  # every training failed (study.best_trial would raise ValueError)
    print(exc, flush=True)
else:
    env = make_env(best.params["train_env"], BEST_TRIAL_N_ENVS, seed=args.seed, frame_stack=args.frame_stack)
    model = load_ppo(model_path, env=env, device=args.device)
    print(f"best model: trained on {best.params['train_env']} for {model.num_timesteps} env steps, "
          f"median {best.value:g} on {SCORE_ENV} ({model_path})", flush=True)

# %% The table: train env x eval env (median whole-game score, mean in brackets)
table = env_comparison_table(study)
table_path = run.dir / "env_comparison.md"
table_path.write_text(f"Scores after {args.timesteps} env steps per model, {args.eval_episodes} whole games per cell: "
                      f"median (mean).\n\n{table}")
print(table, flush=True)

# %% The picture: every model playing v5, side by side (one game each, same seed)
models = {}
for env_id, model_dir in trained_run_dirs(study).items():
    if (model_dir / FINAL_MODEL_FILE).exists():  # a worker on another machine keeps its own
        models[f"trained on {env_label(env_id)}"] = load_policy(model_dir / FINAL_MODEL_FILE, device=args.device)
comparison_gif = None
if args.gif_games > 0 and models:
    comparison_gif, games = record_comparison_gif(models, run.dir / COMPARISON_GIF, SCORE_ENV,
                                                  seed=args.seed + EVAL_SEED_OFFSET, max_steps=args.gif_max_steps,
                                                  frame_stack=args.frame_stack)
    print(f"side by side on {SCORE_ENV}: " + ", ".join(f"{name} {r.scores[0]:g}" for name, r in games.items())
          + f" -> {comparison_gif}", flush=True)

# %% Summary
run.finish(timesteps=args.timesteps, **study_summary(study, storage_url), train_envs=args.train_envs,
           table_path=str(table_path), table=table,
           comparison_gif_path=str(comparison_gif) if comparison_gif else None, runs=[s["run_dir"] for s in trained])
