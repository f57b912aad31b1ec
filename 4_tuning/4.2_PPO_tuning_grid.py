"""4.2 A grid over PPO's batch size, epochs and rollout length, with Optuna's GridSampler.

What you learn: how batch_size, n_epochs and n_steps interact. One rollout holds
n_steps * n_envs steps; PPO cuts it into minibatches of batch_size and passes over it
n_epochs times, so together they set how many gradient steps each rollout buys.
GridSampler tries every combination once (the grid must be valid: each batch size
divides each rollout), shared by as many workers as you start. Trials train on
Breakout-v4 and are scored on the sticky-action ALE/Breakout-v5 (the lesson of 4.1).
At the end the study's analysis plots are written next to summary.json.

Run it:    python 4_tuning/4.2_PPO_tuning_grid.py
Tiny:      python 4_tuning/4.2_PPO_tuning_grid.py --timesteps 2048 --n-envs 2 --eval-episodes 2 --batch-sizes 64 --n-epochs-grid 1 2 --n-steps-grid 64
In Spyder: no flag reaches a cell: for the tiny study set the Settings cell's TIMESTEPS, N_ENVS,
           EVAL_EPISODES and the three grids to the tiny values in their comments (the defaults are a
           study of hours), then run it cell by cell (Ctrl+Return); `study`, `objective`,
           and the best grid point's `env` and `model` stay in the Variable Explorer.
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
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import whole
from rlbreakout.hyperparams import MAX_EPOCHS, MAX_ROLLOUT_STEPS, ZOO_ATARI_PPO
from rlbreakout.runs import Run
from rlbreakout.speed.threads import configure_threads
from rlbreakout.training import EVAL_SEED_OFFSET, FINAL_MODEL_FILE, MAX_EVAL_ENVS, build_ppo, load_ppo
from rlbreakout.tune.analysis import NoBestModelError, best_trial_model, save_study_plots, study_summary
from rlbreakout.tune.flags import study_settings, tuning_parser, validate_tuning_args
from rlbreakout.tune.objective import TrialEvalCallback, trial_eval_freq, trial_training
from rlbreakout.tune.spaces import DEFAULT_GRID, check_grid, env_label
from rlbreakout.tune.storage import check_study_settings, open_storage, redact_url, resolve_storage_url
from rlbreakout.tune.workers import run_worker

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
# The tutorial's budget: 1e6 steps and 100 games per trial, scored on v5. Tiny values in the comments.
ENV_ID = "Breakout-v4"  # --env: the trials' training env
SEED = 0  # --seed
TIMESTEPS = 1_000_000  # --timesteps: env steps per trial (tiny: 2_048)
N_ENVS = ZOO_ATARI_PPO.n_envs  # --n-envs: the zoo's 8 (tiny: 2)
EVAL_EPISODES = 100  # --eval-episodes: whole games scoring each trial (tiny: 2)
BATCH_SIZES = list(DEFAULT_GRID["batch_size"])  # --batch-sizes (tiny: [64])
N_EPOCHS_GRID = list(DEFAULT_GRID["n_epochs"])  # --n-epochs-grid (tiny: [1, 2])
N_STEPS_GRID = list(DEFAULT_GRID["n_steps"])  # --n-steps-grid (tiny: [64])
#: The best trial's env is built again with this many envs, to look at and to play with.
BEST_TRIAL_N_ENVS = 2


def parse_args():
    parser = tuning_parser(
        __doc__.splitlines()[0], study_name="4.2_PPO_grid", n_trials=None, timesteps=TIMESTEPS,
        n_envs=N_ENVS, env=ENV_ID, eval_env="ALE/Breakout-v5", eval_episodes=EVAL_EPISODES,
        sampler=None, pruner="none",
    )
    parser.set_defaults(seed=SEED)
    grid = parser.add_argument_group("4.2: the grid")
    grid.add_argument("--batch-sizes", type=whole(1), nargs="+", default=BATCH_SIZES)
    grid.add_argument("--n-epochs-grid", type=whole(1, MAX_EPOCHS), nargs="+", default=N_EPOCHS_GRID)
    grid.add_argument("--n-steps-grid", type=whole(1, MAX_ROLLOUT_STEPS), nargs="+", default=N_STEPS_GRID)
    return parse_script_args(parser)


args = parse_args()
validate_tuning_args(args)
grid = {"batch_size": args.batch_sizes, "n_epochs": args.n_epochs_grid, "n_steps": args.n_steps_grid}
grid_size = check_grid(grid, args.n_envs)  # every point must be a valid PPO setting, checked before any trial
if args.n_trials is None:
    args.n_trials = grid_size
elif args.n_trials > grid_size:
    raise ConfigError(f"--n-trials {args.n_trials} is more than the grid's {grid_size} points; leave it out to run them all.")
eval_id = args.eval_env or args.env
eval_freq = trial_eval_freq(args.timesteps, args.evals_per_trial)
storage_url = resolve_storage_url(args.storage, args.logdir)
storage = open_storage(storage_url)  # heartbeats on; an unreachable URL is one line
threads = configure_threads()  # several workers often share a machine: torch takes only the free cores
run = Run.from_args(__file__, args, storage=redact_url(storage_url), grid=grid,
                    torch_threads=threads["torch_threads"])


# %% The objective: one grid point, one short PPO training, the median whole-game score
def objective(trial: optuna.Trial) -> float:
    # GridSampler picks the values; an int range (not a category) keeps the plots' axes numeric
    batch_size = trial.suggest_int("batch_size", min(grid["batch_size"]), max(grid["batch_size"]), log=True)
    n_epochs = trial.suggest_int("n_epochs", min(grid["n_epochs"]), max(grid["n_epochs"]), log=True)
    n_steps = trial.suggest_int("n_steps", min(grid["n_steps"]), max(grid["n_steps"]), log=True)
    config = ZOO_ATARI_PPO.replace(n_envs=args.n_envs, batch_size=batch_size, n_epochs=n_epochs, n_steps=n_steps)
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


# %% The study: GridSampler visits each point once, across all workers
pruner = {"median": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=args.timesteps // 3),
          "halving": optuna.pruners.SuccessiveHalvingPruner(min_resource=eval_freq, reduction_factor=3),
          "none": optuna.pruners.NopPruner()}[args.pruner]
study = optuna.create_study(storage=storage, study_name=args.study_name, direction="maximize",
                            sampler=optuna.samplers.GridSampler(grid, seed=args.seed), pruner=pruner,
                            load_if_exists=True)
# all workers must train the same budget on the same grid, or their trials cannot be compared
check_study_settings(study, study_settings(args, run.name, env_id=args.env, grid=grid))

# %% Optimise: study.optimize made crash-safe, until every grid point is done (over all workers)
trained = run_worker(study, objective, args.n_trials)

# %% The best trial: its env and its model, left in the console (Spyder's Variable Explorer)
env = model = None
try:
    best, model_path = best_trial_model(study)  # the best COMPLETE trial and the model.zip it saved
except NoBestModelError as exc:  # every trial pruned or failed (study.best_trial would raise ValueError)
    print(exc, flush=True)
else:
    env = make_env(args.env, BEST_TRIAL_N_ENVS, seed=args.seed, frame_stack=ZOO_ATARI_PPO.frame_stack)
    model = load_ppo(model_path, env=env, device=args.device)
    print(f"best trial {best.number}: {best.params} scored {best.value:g}; its model trained "
          f"{model.num_timesteps} env steps ({model_path})", flush=True)

# %% Analysis plots: history, importances, parallel coordinates, contours (HTML and PNG)
plots = save_study_plots(study, run.dir / "plots")
result = study_summary(study, storage_url)
print(f"best grid point: {result['best_params']} scored {result['best_value']}", flush=True)
run.finish(timesteps=args.timesteps, eval_env=eval_id, trained_trials=trained, **result, grid=grid,
           plots=[str(p) for p in plots], backend="classic", eval_backend=EVAL_BACKEND)  # trials: classic envs
