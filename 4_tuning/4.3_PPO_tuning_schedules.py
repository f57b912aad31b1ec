"""4.3 Tune the learning-rate and clip-range schedules: constant, linear or exponential.

What you learn: a schedule is a hyperparameter too, and its shape should not depend on
the run's length. A linear schedule reaches 0 at the end of *this* run, so the learning
rate at step 500k differs between a 1e6- and a 1e7-step run, and values tuned on short
trials do not transfer. Chapter 2's exponential schedule halves every `half_life` env
steps whatever the run's length; here its half-life is sampled in env steps, so a value
found with 1e6-step trials means the same in a long run. PPO's other values default to
the zoo's; pass the winners of 4.2 with --n-steps, --batch-size and --n-epochs.
The objective below is the whole lesson: Optuna's suggest calls, one short training,
the median whole-game score. Start the same command in several terminals (or machines,
with a shared --storage) and they share the study: --n-trials is the study's total.

Run it:    python 4_tuning/4.3_PPO_tuning_schedules.py --n-trials 30
Tiny:      python 4_tuning/4.3_PPO_tuning_schedules.py --n-trials 2 --timesteps 2048 --n-envs 2 --n-steps 64 --batch-size 64 --eval-episodes 2
In Spyder: no flag reaches a cell: for the tiny study set the Settings cell's N_TRIALS, TIMESTEPS,
           N_ENVS, N_STEPS, BATCH_SIZE and EVAL_EPISODES to the tiny values in their comments (the
           defaults are a study of hours), then run it cell by cell (Ctrl+Return); `study`, `objective`,
           and the best trial's `env` and `model` stay in the Variable Explorer.
Read:      4_tuning/README.md
"""

# %% Imports
from contextlib import closing
from pathlib import Path

import optuna

from rlbreakout.callbacks import GameScoreCallback
from rlbreakout.cli import parse_script_args
from rlbreakout.env_ids import EVAL_BACKEND
from rlbreakout.envs import make_env
from rlbreakout.flag_types import whole
from rlbreakout.hyperparams import MAX_EPOCHS, MAX_ROLLOUT_STEPS, ZOO_ATARI_PPO
from rlbreakout.runs import Run
from rlbreakout.schedules import SCHEDULE_CHOICES
from rlbreakout.speed.threads import configure_threads
from rlbreakout.training import EVAL_SEED_OFFSET, FINAL_MODEL_FILE, MAX_EVAL_ENVS, build_ppo, load_ppo
from rlbreakout.tune.analysis import NoBestModelError, best_trial_model, save_study_plots, study_summary
from rlbreakout.tune.flags import study_settings, tuning_parser, validate_tuning_args
from rlbreakout.tune.objective import TrialEvalCallback, trial_eval_freq, trial_training
from rlbreakout.tune.spaces import env_label
from rlbreakout.tune.storage import check_study_settings, open_storage, redact_url, resolve_storage_url, worker_seed
from rlbreakout.tune.workers import run_worker

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
# The tutorial's budget: 1e6 steps and 30 games per trial, scored on v5, no pruning. Tiny values in the comments.
ENV_ID = "Breakout-v4"  # --env: the trials' training env
SEED = 0  # --seed
N_TRIALS = 30  # --n-trials: finished trials in the study (tiny: 2)
TIMESTEPS = 1_000_000  # --timesteps: env steps per trial (tiny: 2_048)
N_ENVS = ZOO_ATARI_PPO.n_envs  # --n-envs: the zoo's 8 (tiny: 2)
N_STEPS = ZOO_ATARI_PPO.n_steps  # --n-steps: env steps per env per rollout (tiny: 64)
BATCH_SIZE = ZOO_ATARI_PPO.batch_size  # --batch-size (tiny: 64)
EVAL_EPISODES = 30  # --eval-episodes: whole games scoring each trial (tiny: 2)
#: The best trial's env is built again with this many envs, to look at and to play with.
BEST_TRIAL_N_ENVS = 2


def parse_args():
    parser = tuning_parser(
        __doc__.splitlines()[0], study_name="4.3_PPO_schedules", n_trials=N_TRIALS, timesteps=TIMESTEPS,
        n_envs=N_ENVS, env=ENV_ID, eval_env="ALE/Breakout-v5", eval_episodes=EVAL_EPISODES, pruner="none",
    )
    parser.set_defaults(seed=SEED)
    ppo = parser.add_argument_group("PPO values kept fixed (e.g. the best point of 4.2)")
    ppo.add_argument("--n-steps", type=whole(1, MAX_ROLLOUT_STEPS), default=N_STEPS, help="env steps per env per rollout")
    ppo.add_argument("--batch-size", type=whole(1), default=BATCH_SIZE, help="minibatch size")
    ppo.add_argument("--n-epochs", type=whole(1, MAX_EPOCHS), default=ZOO_ATARI_PPO.n_epochs, help="passes over each rollout")
    return parse_script_args(parser)


args = parse_args()
validate_tuning_args(args)
# every trial starts from the zoo's PPO with these values; it changes only the schedules
base = ZOO_ATARI_PPO.replace(n_envs=args.n_envs, n_steps=args.n_steps, batch_size=args.batch_size,
                             n_epochs=args.n_epochs)
base.validate()  # e.g. a batch size that does not divide the rollout: one line, nothing created
eval_id = args.eval_env or args.env
eval_freq = trial_eval_freq(args.timesteps, args.evals_per_trial)
storage_url = resolve_storage_url(args.storage, args.logdir)
storage = open_storage(storage_url)  # heartbeats on; an unreachable URL is one line
threads = configure_threads()  # several workers often share a machine: torch takes only the free cores
run = Run.from_args(__file__, args, storage=redact_url(storage_url), torch_threads=threads["torch_threads"])


# %% The objective: Optuna's suggest calls, one short PPO training, the median whole-game score
def objective(trial: optuna.Trial) -> float:
    # initial values span decades: sampled on a log scale; each gets a schedule shape
    learning_rate = trial.suggest_float("learning_rate", 1e-5, 1e-2, log=True)
    lr_schedule = trial.suggest_categorical("lr_schedule", SCHEDULE_CHOICES)
    clip_range = trial.suggest_float("clip_range", 0.02, 0.5, log=True)
    clip_schedule = trial.suggest_categorical("clip_schedule", SCHEDULE_CHOICES)
    half_life = None  # env steps per halving: it means something only for an exponential schedule
    if "exponential" in (lr_schedule, clip_schedule):
        half_life = trial.suggest_float("half_life", 1e4, 1e7, log=True)
    config = base.replace(learning_rate=learning_rate, lr_schedule=lr_schedule, clip_range=clip_range,
                          clip_schedule=clip_schedule, half_life=half_life)
    with (closing(make_env(args.env, config.n_envs, seed=args.seed, frame_stack=config.frame_stack)) as env,
          closing(make_env(eval_id, min(args.eval_episodes, MAX_EVAL_ENVS), seed=args.seed + EVAL_SEED_OFFSET,
                           frame_stack=config.frame_stack)) as eval_env):
        model = build_ppo(config, env, timesteps=args.timesteps, tensorboard_log=run.dir, seed=args.seed,
                          device=args.device)
        # chapter 2's whole-game evaluation, reporting each median score to the trial (the pruner reads it)
        evaluator = TrialEvalCallback(trial, {env_label(eval_id): eval_env}, eval_freq, args.eval_episodes)
        with trial_training(trial, model, run, evaluator):  # timed; NaN weights make the trial FAIL
            # the evaluation, and game/score of every training game as in chapter 2
            model.learn(total_timesteps=args.timesteps, callback=[evaluator, GameScoreCallback()],
                        tb_log_name=f"trial_{trial.number}")
    score = evaluator.score()  # the last median score, or optuna.TrialPruned
    model_path = Path(model.logger.get_dir()) / FINAL_MODEL_FILE  # the trial's folder, next to its TensorBoard log
    model.save(model_path)
    trial.set_user_attr("model_path", str(model_path))
    return score


# %% The study: TPE over the schedules, stored in the database every worker shares
seed = worker_seed(storage, args.study_name, args.seed)  # a worker joining later draws new values
sampler = {"tpe": optuna.samplers.TPESampler(n_startup_trials=10, seed=seed),  # random for 10, then models
           "random": optuna.samplers.RandomSampler(seed=seed)}[args.sampler]
pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=args.timesteps // 3),
          "halving": optuna.pruners.SuccessiveHalvingPruner(min_resource=eval_freq, reduction_factor=3),
          "none": optuna.pruners.NopPruner()}[args.pruner]
study = optuna.create_study(storage=storage, study_name=args.study_name, direction="maximize", sampler=sampler,
                            pruner=pruner, load_if_exists=True)
# all workers must train the same budget, or their trials cannot be compared
check_study_settings(study, study_settings(args, run.name, env_id=args.env, n_steps=args.n_steps,
                                           batch_size=args.batch_size, n_epochs=args.n_epochs))

# %% Optimise: study.optimize made crash-safe, until the study holds --n-trials over all workers
trained = run_worker(study, objective, args.n_trials)

# %% The best trial: its env and its model, left in the console (Spyder's Variable Explorer)
env = model = None
try:
    best, model_path = best_trial_model(study)  # the best COMPLETE trial and the model.zip it saved
except NoBestModelError as exc:  # every trial pruned or failed (study.best_trial would raise ValueError)
    print(exc, flush=True)
else:
    env = make_env(args.env, BEST_TRIAL_N_ENVS, seed=args.seed, frame_stack=base.frame_stack)
    model = load_ppo(model_path, env=env, device=args.device)
    print(f"best trial {best.number}: {best.params} scored {best.value:g}; its model trained "
          f"{model.num_timesteps} env steps ({model_path})", flush=True)

# %% Analysis plots and summary
plots = save_study_plots(study, run.dir / "plots")
result = study_summary(study, storage_url)
print(f"best schedules: {result['best_params']} scored {result['best_value']}", flush=True)
run.finish(timesteps=args.timesteps, eval_env=eval_id, trained_trials=trained, **result,
           plots=[str(p) for p in plots], backend="classic", eval_backend=EVAL_BACKEND)  # trials: classic envs
