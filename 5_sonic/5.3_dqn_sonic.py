"""5.3 A DQN-family agent on Sonic (and Airstriker): QR-DQN, the maintained part of Rainbow.

What you learn: the Retro Contest's strongest single-level baseline was Rainbow DQN. No
maintained library ships all of Rainbow; sb3-contrib's QR-DQN (distributional, with SB3's
n-step returns) is the closest. The README lists which Rainbow components it has and
which it lacks. `--algo dqn` trains SB3's plain DQN for comparison. Needs the retro extra
(stable-retro and sb3-contrib). The same evaluation and freeze-at-best callback as 5.2.

Run it:  python 5_sonic/5.3_dqn_sonic.py --game Airstriker-Genesis-v0 --timesteps 30000 --learning-starts 5000
Read:    5_sonic/README.md
"""

# %% Imports
import sys
import time

import torch
from stable_baselines3 import DQN

from rlbreakout.callbacks import GameScoreCallback, HyperparamTableCallback
from rlbreakout.cli import common_parser, resolve_device, run_main
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.hyperparams import markdown_table
from rlbreakout.retro import (
    add_retro_arguments,
    add_run_arguments,
    env_kwargs_from_args,
    eval_callbacks,
    finish_run,
    make_retro_env,
    run_label,
    validate_run_args,
)
from rlbreakout.runs import create_run_dir, save_run_config, script_name, seed_everything
from rlbreakout.training import EVAL_SEED_OFFSET

# %% Config: rl-baselines3-zoo's Atari DQN values, with a buffer and warm-up sized for a laptop
TIMESTEPS = 200_000
ALGO_CHOICES = ("qrdqn", "dqn")
EVAL_EVERY_STEPS = 25_000
BUFFER_SIZE = 50_000  # 50k stacked 84x84x4 frames, twice (obs and next obs): about 2.8 GB
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
    parser = common_parser(__doc__.splitlines()[0], timesteps=TIMESTEPS, n_envs=1)
    add_retro_arguments(parser)
    dqn = parser.add_argument_group("DQN family")
    dqn.add_argument("--algo", choices=ALGO_CHOICES, default="qrdqn", help="sb3-contrib QR-DQN or SB3 DQN")
    dqn.add_argument("--buffer-size", type=int, default=BUFFER_SIZE, help="replay buffer transitions")
    dqn.add_argument("--learning-starts", type=int, default=LEARNING_STARTS, help="random steps before learning")
    dqn.add_argument("--multi-step", type=int, default=MULTI_STEP, help="n of the n-step return (1: plain 1-step)")
    dqn.add_argument("--target-update", type=int, default=TARGET_UPDATE_INTERVAL, help="env steps between target-net copies")
    dqn.add_argument("--exploration-fraction", type=float, default=EXPLORATION_FRACTION,
                     help="fraction of training over which epsilon falls from 1 to 0.01")
    add_run_arguments(parser, eval_freq=EVAL_EVERY_STEPS)
    args = parser.parse_args()
    if args.buffer_size < 1 or args.learning_starts < 0 or args.multi_step < 1 or args.target_update < 1:
        raise ConfigError("--buffer-size, --multi-step and --target-update must be >= 1, --learning-starts >= 0.")
    validate_run_args(args)
    args.device = resolve_device(args.device)
    return args


def algorithm_class(name: str):
    """QR-DQN comes from sb3-contrib, part of the retro extra."""
    if name == "dqn":
        return DQN
    try:
        from sb3_contrib import QRDQN
    except ImportError as exc:
        raise RLBreakoutError("QR-DQN needs sb3-contrib: run `pip install -e '.[retro]'`, or use --algo dqn.") from exc
    return QRDQN


def main() -> None:
    args = parse_args()
    algo = algorithm_class(args.algo)
    run_dir = create_run_dir(args.logdir, script_name(__file__), run_label(args), args.seed)
    save_run_config(run_dir, vars(args))
    print(f"run folder: {run_dir}  (tensorboard --logdir {args.logdir})", flush=True)
    seed_everything(args.seed)
    torch.set_num_threads(args.torch_threads)
    started = time.perf_counter()

    # %% Environment: the same Atari-like retro env as 5.2
    env_kwargs = env_kwargs_from_args(args)
    env = make_retro_env(args.env, args.state, n_envs=args.n_envs, seed=args.seed, **env_kwargs)
    eval_env = make_retro_env(args.env, args.state, n_envs=1, seed=args.seed + EVAL_SEED_OFFSET, **env_kwargs)

    # %% Model: distributional (QR-DQN) or plain DQN, with n-step returns and a target network
    # n-step replay stores next observations itself; the memory-saving layout works only for 1-step.
    one_step = args.multi_step == 1
    model = algo(
        "CnnPolicy", env,
        buffer_size=args.buffer_size, learning_starts=args.learning_starts, batch_size=BATCH_SIZE,
        learning_rate=LEARNING_RATE, n_steps=args.multi_step, target_update_interval=args.target_update,
        train_freq=TRAIN_FREQ, exploration_fraction=args.exploration_fraction,
        exploration_final_eps=EXPLORATION_FINAL_EPS,
        optimize_memory_usage=one_step, replay_buffer_kwargs={"handle_timeout_termination": not one_step},
        tensorboard_log=str(run_dir), seed=args.seed, device=args.device,
    )

    # %% Train: evaluate every --eval-freq steps; freeze at the best model if scores collapse
    evaluator, freeze = eval_callbacks(args, eval_env, run_dir)
    table = {**vars(args), "algorithm": algo.__name__, "reward_scale": repr(env_kwargs["reward_scale"])}
    callbacks = [GameScoreCallback(), HyperparamTableCallback(markdown_table(table))]
    callbacks += [evaluator] if evaluator is not None else []
    learn_started = time.perf_counter()
    try:
        model.learn(args.timesteps, callback=callbacks, tb_log_name=algo.__name__, log_interval=LOG_EVERY_GAMES,
                    progress_bar=sys.stderr.isatty())
    finally:
        env.close()
    train_seconds = time.perf_counter() - learn_started - (evaluator.eval_seconds if evaluator else 0.0)

    # %% Evaluate, replay, summary
    finish_run(model, args, script=__file__, run_dir=run_dir, eval_env=eval_env, env_kwargs=env_kwargs,
               trained_steps=model.num_timesteps, train_seconds=train_seconds, wall_started=started,
               evaluator=evaluator, freeze=freeze, extra={"algorithm": algo.__name__, "multi_step": args.multi_step})


if __name__ == "__main__":
    run_main(main)
