"""5.2 PPO on Sonic (and Airstriker): reward scaling, and freezing at the best model.

What you learn: the retro game becomes an Atari-like env (discrete button combos, 4
frames per action, 84x84 grey frames, 4 stacked), so SB3's PPO trains on it unchanged.
Two lessons of the Sonic story: the scale of the reward matters enormously (run it with
`--reward-scale 0.01` and `--reward-scale none` and compare `game/score` in TensorBoard),
and a longer run can end worse than its peak, so a callback freezes training at the best
evaluation when later scores collapse, and restores those weights.

Run it:    python 5_sonic/5.2_ppo_sonic.py --game Airstriker-Genesis-v0 --timesteps 30000 --reward-scale none
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, model and scores stay in the Variable Explorer.
           stable-retro allows one emulator per process: close env before running the
           Environment cell again.
Read:      5_sonic/README.md
"""

# %% Imports
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

from rlbreakout.callbacks import GameScoreCallback, HyperparamTableCallback, MultiEnvEvalCallback, ProgressLineCallback
from rlbreakout.cli import parse_script_args, resolve_device
from rlbreakout.collapse import FreezeOnCollapseCallback
from rlbreakout.flag_types import number, whole
from rlbreakout.hyperparams import MAX_EPOCHS, MAX_ROLLOUT_STEPS, ZOO_ATARI_PPO, markdown_table
from rlbreakout.progress import on_terminal
from rlbreakout.render import write_gif
from rlbreakout.retro.cli import add_run_arguments, env_kwargs_from_args, retro_parser, run_label, validate_run_args
from rlbreakout.retro.envs import make_retro_env
from rlbreakout.retro.render import GIF_FPS, record_retro_game
from rlbreakout.runs import Run
from rlbreakout.training import EVAL_SEED_OFFSET, FINAL_MODEL_FILE, REPLAY_GIF

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
# The zoo's Atari PPO (chapter 2), on 4 envs; one env is one emulator.
ENV_ID = "Airstriker-Genesis-v0"  # --env (or --game): stable-retro's free game; Sonic once its ROM is imported
SEED = 0  # --seed
TIMESTEPS = 500_000  # --timesteps: env steps to train
N_ENVS = 4  # --n-envs: one emulator process each
EVAL_FREQ = 25_000  # --eval-freq: env steps between evaluations


def parse_args():
    parser = retro_parser(__doc__.splitlines()[0], timesteps=TIMESTEPS, n_envs=N_ENVS)
    parser.set_defaults(env=ENV_ID, seed=SEED)
    ppo = parser.add_argument_group("PPO (rl-baselines3-zoo's Atari values)")
    ppo.add_argument("--n-steps", type=whole(1, MAX_ROLLOUT_STEPS), default=ZOO_ATARI_PPO.n_steps, help="env steps per env per rollout")
    ppo.add_argument("--batch-size", type=whole(1), default=ZOO_ATARI_PPO.batch_size, help="minibatch size")
    ppo.add_argument("--n-epochs", type=whole(1, MAX_EPOCHS), default=ZOO_ATARI_PPO.n_epochs, help="passes over each rollout")
    ppo.add_argument("--learning-rate", type=number(0, 1, low_open=True), default=ZOO_ATARI_PPO.learning_rate,
                     help="initial, then linear to 0")
    add_run_arguments(parser, eval_freq=EVAL_FREQ)
    return parse_script_args(parser)


args = parse_args()
config = ZOO_ATARI_PPO.replace(n_envs=args.n_envs, n_steps=args.n_steps, batch_size=args.batch_size,
                               n_epochs=args.n_epochs, learning_rate=args.learning_rate)
config.validate()  # e.g. --batch-size must divide n_steps * n_envs
validate_run_args(args)  # the game and state exist, the ROM is imported: before any run folder
args.device = resolve_device(args.device)
torch.set_num_threads(args.torch_threads)
# The run folder is named by game and reward scale, so TensorBoard tells the scales apart.
run = Run(__file__, env_id=args.env, folder_label=run_label(args), seed=args.seed, logdir=args.logdir, config=vars(args))

# %% Environment: button combos, frame skip, backtracking, reward scale, 84x84 grey, 4 frames
# stable-retro runs one emulator per process. One training env runs here (DummyVecEnv);
# several run in one process each (SubprocVecEnv), and so does the eval env, always, because
# it is a second emulator. On Windows and macOS a new process re-runs the main script, which
# would run every cell of this file again in each emulator process; make_retro_env starts its
# processes without re-running the script (rlbreakout/retro/envs.py, workers_without_script),
# so no `if __name__ == "__main__":` guard is needed and the cells still run one by one.
env_kwargs = env_kwargs_from_args(args)
env = make_retro_env(args.env, args.state, n_envs=args.n_envs, seed=args.seed,
                     vec_env="dummy" if args.n_envs == 1 else "subproc", **env_kwargs)
eval_env = make_retro_env(args.env, args.state, n_envs=1, seed=args.seed + EVAL_SEED_OFFSET, vec_env="subproc",
                          **env_kwargs)
print("observation space:", env.observation_space, " actions:", env.action_space)

# %% Model: exactly the Atari PPO of chapter 2
model = PPO(
    "CnnPolicy",
    env,
    n_steps=config.n_steps,  # 128 steps per env per rollout: 512 per update with 4 envs
    batch_size=config.batch_size,  # 256
    n_epochs=config.n_epochs,  # 4
    learning_rate=config.learning_rate_schedule(args.timesteps),  # linear(2.5e-4): to 0 at the end
    clip_range=config.clip_range_schedule(args.timesteps),  # linear(0.1)
    ent_coef=config.ent_coef,  # 0.01
    vf_coef=config.vf_coef,  # 0.5
    tensorboard_log=str(run.dir),
    seed=args.seed,
    device=args.device,
)

# %% Train: evaluate every --eval-freq steps; freeze at the best model if scores collapse
# The freeze callback runs after each evaluation and reads its score (callback_after_eval).
freeze = None
if args.collapse_fraction > 0:
    freeze = FreezeOnCollapseCallback(args.collapse_fraction, args.collapse_patience, verbose=1)
evaluator = MultiEnvEvalCallback({"eval": eval_env}, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes,
                                 best_model_save_path=run.dir, callback_after_eval=freeze)
table = {**vars(args), "reward_scale": repr(env_kwargs["reward_scale"]), "learning_rate": repr(model.learning_rate)}
callbacks = [GameScoreCallback(), evaluator, ProgressLineCallback(args.timesteps),
             HyperparamTableCallback(markdown_table(table))]
with run.training(model):
    model.learn(args.timesteps, callback=callbacks, tb_log_name="PPO", progress_bar=on_terminal())
run.exclude(evaluator.eval_seconds)  # steps/s counts training alone
model.logger.dump(model.num_timesteps)  # SB3 writes an update's train/* at the next rollout: the last one now
env.close()  # frees this process's emulator for the replay below
model_path = run.dir / FINAL_MODEL_FILE
model.save(model_path)

# %% Evaluate: whole games, raw game score (the Monitor sits below backtracking and scaling)
scores, lengths = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=False,
                                  return_episode_rewards=True)
eval_env.close()
print(f"scores of {len(scores)} whole games:", scores)

# %% Replay: a real-time gif of one game
gif_path = None
if args.gif_max_steps > 0:
    recording = record_retro_game(model, args.env, args.state, seed=args.seed, max_steps=args.gif_max_steps,
                                  deterministic=False, **env_kwargs)
    gif_path = write_gif(recording.frames[0], run.dir / REPLAY_GIF, fps=GIF_FPS)

# %% Summary: summary.json in the run folder, its path printed last
run.finish(timesteps=model.num_timesteps, scores=scores, model_path=model_path, state=args.state,
           eval_lengths=lengths, reward_scale=args.reward_scale, sticky=args.sticky, backtracking=args.backtracking,
           eval_history=[{"step": step, **results["eval"]} for step, results in evaluator.history],
           best_eval_score=None if freeze is None else freeze.best_score,
           frozen_at_eval=None if freeze is None else freeze.stopped_at_eval,
           gif_path=None if gif_path is None else str(gif_path))
