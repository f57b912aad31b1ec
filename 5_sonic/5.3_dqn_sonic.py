"""5.3 A DQN-family agent on Sonic (and Airstriker): QR-DQN, the maintained part of Rainbow.

What you learn: the Retro Contest's strongest single-level baseline was Rainbow DQN. No
maintained library ships all of Rainbow; sb3-contrib's QR-DQN (distributional, with SB3's
n-step returns) is the closest. The README lists which Rainbow components it has and
which it lacks. `--algo dqn` trains SB3's plain DQN for comparison. Needs the retro extra
(stable-retro and sb3-contrib). The same evaluation and freeze-at-best callback as 5.2.

Run it:    python 5_sonic/5.3_dqn_sonic.py --game Airstriker-Genesis-v0 --timesteps 30000 --learning-starts 5000
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, model and scores stay in the Variable Explorer.
           stable-retro allows one emulator per process: close env before running the
           Environment cell again.
Read:      5_sonic/README.md
"""

# %% Imports
import torch
from stable_baselines3 import DQN
from stable_baselines3.common.evaluation import evaluate_policy

from rlbreakout.callbacks import GameScoreCallback, HyperparamTableCallback, MultiEnvEvalCallback, ProgressLineCallback
from rlbreakout.cli import parse_script_args, resolve_device
from rlbreakout.collapse import FreezeOnCollapseCallback
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.flag_types import number, whole
from rlbreakout.hyperparams import markdown_table
from rlbreakout.progress import on_terminal
from rlbreakout.render import write_gif
from rlbreakout.retro.cli import add_run_arguments, env_kwargs_from_args, retro_parser, run_label, validate_run_args
from rlbreakout.retro.envs import make_retro_env
from rlbreakout.retro.render import GIF_FPS, record_retro_game
from rlbreakout.runs import Run
from rlbreakout.training import EVAL_SEED_OFFSET, FINAL_MODEL_FILE, REPLAY_GIF

try:  # sb3-contrib comes with the retro extra; --algo dqn works without it
    from sb3_contrib import QRDQN
except ImportError:
    QRDQN = None

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
# rl-baselines3-zoo's Atari DQN values, with a buffer and warm-up sized for a laptop.
ENV_ID = "Airstriker-Genesis-v0"  # --env (or --game): stable-retro's free game; Sonic once its ROM is imported
SEED = 0  # --seed
TIMESTEPS = 200_000  # --timesteps: env steps to train
ALGO_CHOICES = ("qrdqn", "dqn")
EVAL_FREQ = 25_000  # --eval-freq: env steps between evaluations
BUFFER_SIZE = 50_000  # 50k stacked 84x84x4 frames, twice (obs and next obs): about 2.8 GB
MAX_BUFFER_SIZE = 1_000_000  # the DQN paper's; past it the buffer outgrows any machine here (56 GB)
LEARNING_STARTS = 10_000
MULTI_STEP = 3  # Rainbow's n-step returns
TARGET_UPDATE_INTERVAL = 1_000
TRAIN_FREQ = 4
LEARNING_RATE = 1e-4
BATCH_SIZE = 32
EXPLORATION_FRACTION = 0.1
EXPLORATION_FINAL_EPS = 0.01
LOG_EVERY_GAMES = 1  # a retro game lasts hundreds of steps: log losses after each one


def parse_args():
    parser = retro_parser(__doc__.splitlines()[0], timesteps=TIMESTEPS, n_envs=1)
    parser.set_defaults(env=ENV_ID, seed=SEED)
    dqn = parser.add_argument_group("DQN family")
    dqn.add_argument("--algo", choices=ALGO_CHOICES, default="qrdqn", help="sb3-contrib QR-DQN or SB3 DQN")
    dqn.add_argument("--buffer-size", type=whole(1, MAX_BUFFER_SIZE), default=BUFFER_SIZE, help="replay buffer transitions")
    dqn.add_argument("--learning-starts", type=whole(0), default=LEARNING_STARTS, help="random steps before learning")
    dqn.add_argument("--multi-step", type=whole(1, 1000), default=MULTI_STEP, help="n of the n-step return (1: plain 1-step)")
    dqn.add_argument("--target-update", type=whole(1), default=TARGET_UPDATE_INTERVAL,
                     help="env steps between target-net copies")
    dqn.add_argument("--exploration-fraction", type=number(0, 1), default=EXPLORATION_FRACTION,
                     help="fraction of training over which epsilon falls from 1 to 0.01")
    add_run_arguments(parser, eval_freq=EVAL_FREQ)
    return parse_script_args(parser)


args = parse_args()
if args.buffer_size < 1 or args.learning_starts < 0 or args.multi_step < 1 or args.target_update < 1:
    raise ConfigError("--buffer-size, --multi-step and --target-update must be >= 1, --learning-starts >= 0.")
if args.algo == "qrdqn" and QRDQN is None:
    raise RLBreakoutError("QR-DQN needs sb3-contrib: run `pip install -e '.[retro]'`, or use --algo dqn.")
validate_run_args(args)  # the game and state exist, the ROM is imported: before any run folder
args.device = resolve_device(args.device)
torch.set_num_threads(args.torch_threads)
# The run folder is named by game and reward scale, so TensorBoard tells the scales apart.
run = Run(__file__, env_id=args.env, folder_label=run_label(args), seed=args.seed, logdir=args.logdir, config=vars(args))

# %% Environment: the same Atari-like retro env as 5.2
# stable-retro runs one emulator per process: the training env runs here (DummyVecEnv) unless
# --n-envs asks for more, and the eval env, a second emulator, in a process of its own. As in
# 5.2, make_retro_env starts those processes without re-running this script in them (on
# Windows and macOS a new process would re-run every cell), so no __main__ guard is needed.
env_kwargs = env_kwargs_from_args(args)
env = make_retro_env(args.env, args.state, n_envs=args.n_envs, seed=args.seed,
                     vec_env="dummy" if args.n_envs == 1 else "subproc", **env_kwargs)
eval_env = make_retro_env(args.env, args.state, n_envs=1, seed=args.seed + EVAL_SEED_OFFSET, vec_env="subproc",
                          **env_kwargs)
print("observation space:", env.observation_space, " actions:", env.action_space)

# %% Model: distributional (QR-DQN) or plain DQN, with n-step returns and a target network
algo = QRDQN if args.algo == "qrdqn" else DQN
# n-step replay stores next observations itself; the memory-saving layout works only for 1-step.
one_step = args.multi_step == 1
model = algo(
    "CnnPolicy",
    env,
    buffer_size=args.buffer_size,
    learning_starts=args.learning_starts,  # random play first, to fill the buffer
    batch_size=BATCH_SIZE,
    learning_rate=LEARNING_RATE,
    n_steps=args.multi_step,  # Rainbow's 3-step returns
    target_update_interval=args.target_update,
    train_freq=TRAIN_FREQ,
    exploration_fraction=args.exploration_fraction,
    exploration_final_eps=EXPLORATION_FINAL_EPS,
    optimize_memory_usage=one_step,
    replay_buffer_kwargs={"handle_timeout_termination": not one_step},
    tensorboard_log=str(run.dir),
    seed=args.seed,
    device=args.device,
)

# %% Train: evaluate every --eval-freq steps; freeze at the best model if scores collapse
freeze = None
if args.collapse_fraction > 0:
    freeze = FreezeOnCollapseCallback(args.collapse_fraction, args.collapse_patience, verbose=1)
evaluator = MultiEnvEvalCallback({"eval": eval_env}, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes,
                                 best_model_save_path=run.dir, callback_after_eval=freeze)
table = {**vars(args), "algorithm": algo.__name__, "reward_scale": repr(env_kwargs["reward_scale"])}
callbacks = [GameScoreCallback(), evaluator, ProgressLineCallback(args.timesteps),
             HyperparamTableCallback(markdown_table(table))]
with run.training(model):
    model.learn(args.timesteps, callback=callbacks, tb_log_name=algo.__name__, log_interval=LOG_EVERY_GAMES,
                progress_bar=on_terminal())
run.exclude(evaluator.eval_seconds)  # steps/s counts training alone
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
           algorithm=algo.__name__, multi_step=args.multi_step, eval_lengths=lengths,
           reward_scale=args.reward_scale, sticky=args.sticky, backtracking=args.backtracking,
           eval_history=[{"step": step, **results["eval"]} for step, results in evaluator.history],
           best_eval_score=None if freeze is None else freeze.best_score,
           frozen_at_eval=None if freeze is None else freeze.stopped_at_eval,
           gif_path=None if gif_path is None else str(gif_path))
