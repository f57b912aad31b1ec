"""4.0 Tune the observation wrapper with Optuna: many short trials, then the best five trained longer.

What you learn: how an Optuna study samples settings (env id, stacked frames, frameskip,
number of envs, the aimbot view's colour/crop/marker), prunes trials that fall behind,
and survives crashes (a killed worker's trial is retried). Study 1 runs short trials
(1e6 steps each in the tutorial); its 5 best settings are enqueued into study 2, which
trains each for 1e7 steps. Start the same command in several terminals (or machines,
with a shared --storage) and they share the work: --n-trials is the study's total.
The lesson of the original tutorial shows up here: trained and scored on the deterministic
BreakoutNoFrameskip-v4, the winner memorises action sequences (try --eval-env ALE/Breakout-v5).

Run it:    python 4_tuning/4.0_wrapperOptuna_PPO.py --n-trials 50
Tiny:      python 4_tuning/4.0_wrapperOptuna_PPO.py --n-trials 3 --timesteps 2048 --promote-timesteps 4096 --top-k 2 --n-envs 2 --eval-episodes 2
In Spyder: no flag reaches a cell: for the tiny studies set the Settings cell's N_TRIALS, TIMESTEPS,
           PROMOTE_TIMESTEPS, TOP_K, N_ENVS and EVAL_EPISODES to the tiny values in their comments (the
           defaults are days of training), then run it cell by cell (Ctrl+Return); `study1`, `study2`,
           `objective`, and study 2's best `env` and `model` stay in the Variable Explorer.
Explore:   python 4_tuning/4.0_study_explore.py --study-name 4.0_wrapper_study1
Read:      4_tuning/README.md
"""

# %% Imports
import math
from contextlib import closing
from functools import partial

import optuna

from rlbreakout.aimbot import COLOUR_CHOICES, CROP_CHOICES, PREDICTION_CHOICES
from rlbreakout.callbacks import GameScoreCallback
from rlbreakout.cli import parse_script_args
from rlbreakout.env_ids import BREAKOUT_ENV_IDS, EVAL_BACKEND
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_COUNT, whole
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.runs import Run
from rlbreakout.speed.threads import configure_threads
from rlbreakout.training import EVAL_SEED_OFFSET, MAX_EVAL_ENVS, build_ppo, load_ppo
from rlbreakout.tune.analysis import NoBestModelError, best_trial_model, study_summary
from rlbreakout.tune.flags import study_settings, tuning_parser, validate_tuning_args
from rlbreakout.tune.objective import TrialEvalCallback, trial_eval_freq, trial_training
from rlbreakout.tune.spaces import emulator_skips_frames, env_label, frames_per_action, largest_batch_size
from rlbreakout.tune.storage import check_study_settings, open_storage, redact_url, resolve_storage_url, worker_seed
from rlbreakout.tune.workers import promote_top_trials, promoted_count, run_worker

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
# The tutorial's budgets: study 1, 1e6 steps and 100 games; study 2, 1e7 steps and 20 games.
# Tiny values in the comments.
ENV_ID = "BreakoutNoFrameskip-v4"  # --env
SEED = 0  # --seed
N_TRIALS = 50  # --n-trials: study 1's finished trials (tiny: 3)
TIMESTEPS = 1_000_000  # --timesteps: env steps per study-1 trial (tiny: 2_048)
EVAL_EPISODES = 100  # --eval-episodes: whole games per study-1 evaluation (tiny: 2)
TOP_K = 5  # --top-k: best trials of study 1 trained again in study 2 (tiny: 2)
PROMOTE_TIMESTEPS = 10_000_000  # --promote-timesteps: env steps per study-2 trial (tiny: 4_096)
PROMOTE_EVAL_EPISODES = 20  # --promote-eval-episodes: whole games per study-2 evaluation
N_ENVS = 16  # --n-envs: the most envs a trial may use (tiny: 2)
#: The best trial's env is built again with this many envs, to look at and to play with.
BEST_TRIAL_N_ENVS = 2


def parse_args():
    parser = tuning_parser(
        __doc__.splitlines()[0], study_name="4.0_wrapper_study1", n_trials=N_TRIALS,
        timesteps=TIMESTEPS, n_envs=N_ENVS, env=ENV_ID, eval_env=None, eval_episodes=EVAL_EPISODES,
    )
    parser.set_defaults(seed=SEED)
    group = parser.add_argument_group("4.0: wrapper search and promotion")
    group.add_argument("--wrapper", choices=("aimbot", "atari"), default="aimbot",
                       help="observation wrapper of every trial (aimbot: its options are tuned too)")
    group.add_argument("--top-k", type=whole(1, MAX_COUNT), default=TOP_K, help="best trials of study 1 trained again in study 2")
    group.add_argument("--promote-study-name", default=None, help="study 2's name (default: <study-name>_promoted)")
    group.add_argument("--promote-timesteps", type=whole(1), default=PROMOTE_TIMESTEPS, help="env steps per study-2 trial")
    group.add_argument("--promote-eval-episodes", type=whole(1, MAX_COUNT), default=PROMOTE_EVAL_EPISODES,
                       help="whole games per study-2 evaluation")
    return parse_script_args(parser)


args = parse_args()
# --n-envs is the largest number of envs a trial may sample (powers of two up to it)
if args.n_envs & (args.n_envs - 1):
    raise ConfigError(f"--n-envs is the largest n_envs sampled and must be a power of two, got {args.n_envs}.")
if args.promote_timesteps <= 0 or args.promote_eval_episodes < 1:
    raise ConfigError("--promote-timesteps and --promote-eval-episodes must be positive.")
if args.top_k < 1:
    raise ConfigError(f"--top-k must be >= 1, got {args.top_k}.")
validate_tuning_args(args)
args.promote_study_name = args.promote_study_name or f"{args.study_name}_promoted"
storage_url = resolve_storage_url(args.storage, args.logdir)
storage = open_storage(storage_url)  # heartbeats on; an unreachable URL is one line
threads = configure_threads()  # several workers often share a machine: torch takes only the free cores
run = Run(__file__, env_id="wrapper-study", seed=args.seed, logdir=args.logdir,
          config={**vars(args), "storage": redact_url(storage_url), "torch_threads": threads["torch_threads"]})


# %% The objective: Optuna's suggest calls for the observation, one PPO training, the median score
def objective(trial: optuna.Trial, *, timesteps: int = args.timesteps, eval_episodes: int = args.eval_episodes,
              study_dir=run.dir / "study1", save_model: bool = False) -> float:
    env_id = trial.suggest_categorical("env_id", BREAKOUT_ENV_IDS)
    frame_stack = trial.suggest_int("frame_stack", 1, 8)
    # a power of two up to --n-envs: Optuna samples the exponent, the readable value is a user attribute
    n_envs = 2 ** trial.suggest_int("log2_n_envs", 0, int(math.log2(args.n_envs)))
    trial.set_user_attr("n_envs", n_envs)
    wrapper_kwargs = {}
    if not emulator_skips_frames(env_id):  # NoFrameskip only: a second skip on v4/v5 would multiply theirs
        wrapper_kwargs["frame_skip"] = trial.suggest_int("frame_skip", 2, 6)
    trial.set_user_attr("frames_per_action", frames_per_action(env_id, wrapper_kwargs.get("frame_skip")))
    if args.wrapper == "aimbot":  # chapter 3's view: colours, what is cropped, the landing-point marker
        wrapper_kwargs["colour"] = trial.suggest_categorical("colour", COLOUR_CHOICES)
        wrapper_kwargs["crop"] = trial.suggest_categorical("crop", CROP_CHOICES)
        wrapper_kwargs["prediction"] = trial.suggest_categorical("prediction", PREDICTION_CHOICES)
    # PPO keeps the zoo's values; the batch is the zoo's 256, or the rollout's largest divisor below it
    batch_size = largest_batch_size(ZOO_ATARI_PPO.batch_size, ZOO_ATARI_PPO.n_steps * n_envs)
    trial.set_user_attr("batch_size", batch_size)
    config = ZOO_ATARI_PPO.replace(n_envs=n_envs, frame_stack=frame_stack, batch_size=batch_size)
    eval_id = args.eval_env or env_id
    trial.set_user_attr("eval_env", eval_id)
    env_options = dict(frame_stack=frame_stack, wrapper=args.wrapper, wrapper_kwargs=wrapper_kwargs or None)
    trial.set_user_attr("env_options", env_options)  # make_env's settings, to build this trial's env again
    with (closing(make_env(env_id, n_envs, seed=args.seed, **env_options)) as env,
          closing(make_env(eval_id, min(eval_episodes, MAX_EVAL_ENVS), seed=args.seed + EVAL_SEED_OFFSET,
                           **env_options)) as eval_env):
        model = build_ppo(config, env, timesteps=timesteps, tensorboard_log=study_dir, seed=args.seed,
                          device=args.device)
        # chapter 2's whole-game evaluation, reporting each median score to the trial (the pruner reads it)
        evaluator = TrialEvalCallback(trial, {env_label(eval_id): eval_env},
                                      trial_eval_freq(timesteps, args.evals_per_trial), eval_episodes)
        with trial_training(trial, model, run, evaluator):  # timed; NaN weights make the trial FAIL
            # the evaluation, and game/score of every training game as in chapter 2
            model.learn(total_timesteps=timesteps, callback=[evaluator, GameScoreCallback()],
                        tb_log_name=f"trial_{trial.number}")
    if save_model:
        model.save(study_dir / f"trial_{trial.number}.zip")
        trial.set_user_attr("model_path", str(study_dir / f"trial_{trial.number}.zip"))
    return evaluator.score()  # the last median score, or optuna.TrialPruned


# %% Study 1: short trials over the wrapper settings, pruned when they fall behind the median
seed = worker_seed(storage, args.study_name, args.seed)  # a worker joining later draws new values
sampler = {"tpe": optuna.samplers.TPESampler(n_startup_trials=10, seed=seed),  # random for 10, then models
           "random": optuna.samplers.RandomSampler(seed=seed)}[args.sampler]
pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=args.timesteps // 3),
          "halving": optuna.pruners.SuccessiveHalvingPruner(
              min_resource=trial_eval_freq(args.timesteps, args.evals_per_trial), reduction_factor=3),
          "none": optuna.pruners.NopPruner()}[args.pruner]
study1 = optuna.create_study(storage=storage, study_name=args.study_name, direction="maximize", sampler=sampler,
                             pruner=pruner, load_if_exists=True)
settings = study_settings(args, run.name, wrapper=args.wrapper, max_n_envs=args.n_envs)
check_study_settings(study1, settings)  # all workers must train the same budget
run_worker(study1, objective, args.n_trials)  # study.optimize made crash-safe, shared by all workers
short = study_summary(study1, storage_url)
print(f"study 1 best: {short['best_value']} with {short['best_params']}", flush=True)

# %% Study 2: the top-k settings of study 1, trained longer (no pruning: we want all k)
study2 = optuna.create_study(storage=storage, study_name=args.promote_study_name, direction="maximize",
                             pruner=optuna.pruners.NopPruner(), load_if_exists=True)
check_study_settings(study2, {**settings, "timesteps_per_trial": args.promote_timesteps,
                              "eval_episodes": args.promote_eval_episodes})
promoted = promote_top_trials(study1, study2, args.top_k)  # enqueue_trial: their params are tried first
print(f"promoted trials {promoted} of {args.study_name} into {args.promote_study_name}", flush=True)
long_objective = partial(objective, timesteps=args.promote_timesteps, eval_episodes=args.promote_eval_episodes,
                         study_dir=run.dir / "study2", save_model=True)
run_worker(study2, long_objective, promoted_count(study2))
final = study_summary(study2, storage_url)
print(f"study 2 best: {final['best_value']} with {final['best_params']}", flush=True)

# %% The best trial of study 2: its env and its model, left in the console (Spyder's Variable Explorer)
env = model = None
try:
    best, model_path = best_trial_model(study2)  # the best COMPLETE trial and the model.zip it saved
except NoBestModelError as exc:  # every trial failed (study.best_trial would raise ValueError)
    print(exc, flush=True)
else:
    env = make_env(best.params["env_id"], BEST_TRIAL_N_ENVS, seed=args.seed, **best.user_attrs["env_options"])
    model = load_ppo(model_path, env=env, device=args.device)
    print(f"best trial {best.number}: {best.params} scored {best.value:g}; its model trained "
          f"{model.num_timesteps} env steps ({model_path})", flush=True)

# %% Summary
sampled = sorted({t.params["env_id"] for t in study1.get_trials(deepcopy=False) if "env_id" in t.params})
run.finish(timesteps=args.timesteps, promote_timesteps=args.promote_timesteps, **final, promoted_trials=promoted,
           study1=short, sampled_env_ids=sampled, backend="classic", eval_backend=EVAL_BACKEND)  # trials: classic envs
