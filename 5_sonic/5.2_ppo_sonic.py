"""5.2 PPO on Sonic (and Airstriker): reward scaling, and freezing at the best model.

What you learn: the retro game becomes an Atari-like env (discrete button combos, 4
frames per action, 84x84 grey frames, 4 stacked), so SB3's PPO trains on it unchanged.
Two lessons of the Sonic story: the scale of the reward matters enormously (run it with
`--reward-scale 0.01` and `--reward-scale none` and compare `game/score` in TensorBoard),
and a longer run can end worse than its peak, so a callback freezes training at the best
evaluation when later scores collapse, and restores those weights.

Run it:  python 5_sonic/5.2_ppo_sonic.py --game Airstriker-Genesis-v0 --timesteps 30000 --reward-scale none
Read:    5_sonic/README.md
"""

# %% Imports
import sys
import time

import torch
from stable_baselines3 import PPO

from rlbreakout.callbacks import GameScoreCallback, HyperparamTableCallback
from rlbreakout.cli import common_parser, resolve_device, run_main
from rlbreakout.errors import ConfigError
from rlbreakout.hyperparams import ZOO_ATARI_PPO, markdown_table
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
from rlbreakout.schedules import LinearSchedule
from rlbreakout.training import EVAL_SEED_OFFSET

# %% Config: the zoo's Atari PPO (chapter 2), on 4 envs; one env is one emulator process
TIMESTEPS = 500_000
N_ENVS = 4
EVAL_EVERY_STEPS = 25_000


def parse_args():
    parser = common_parser(__doc__.splitlines()[0], timesteps=TIMESTEPS, n_envs=N_ENVS)
    add_retro_arguments(parser)
    ppo = parser.add_argument_group("PPO (rl-baselines3-zoo's Atari values)")
    ppo.add_argument("--n-steps", type=int, default=ZOO_ATARI_PPO["n_steps"], help="env steps per env per rollout")
    ppo.add_argument("--batch-size", type=int, default=ZOO_ATARI_PPO["batch_size"], help="minibatch size")
    ppo.add_argument("--n-epochs", type=int, default=ZOO_ATARI_PPO["n_epochs"], help="passes over each rollout")
    ppo.add_argument("--learning-rate", type=float, default=ZOO_ATARI_PPO["learning_rate"], help="initial, then linear to 0")
    add_run_arguments(parser, eval_freq=EVAL_EVERY_STEPS)
    args = parser.parse_args()
    rollout = args.n_steps * args.n_envs
    if args.batch_size < 1 or rollout % args.batch_size:
        raise ConfigError(f"--batch-size {args.batch_size} must divide the rollout n_steps * n_envs = {rollout}.")
    validate_run_args(args)
    args.device = resolve_device(args.device)
    return args


def main() -> None:
    args = parse_args()
    run_dir = create_run_dir(args.logdir, script_name(__file__), run_label(args), args.seed)
    save_run_config(run_dir, vars(args))
    print(f"run folder: {run_dir}  (tensorboard --logdir {args.logdir})", flush=True)
    seed_everything(args.seed)
    torch.set_num_threads(args.torch_threads)
    started = time.perf_counter()

    # %% Environment: button combos, frame skip, backtracking, reward scale, 84x84 grey, 4 frames
    env_kwargs = env_kwargs_from_args(args)
    env = make_retro_env(args.env, args.state, n_envs=args.n_envs, seed=args.seed, **env_kwargs)
    eval_env = make_retro_env(args.env, args.state, n_envs=1, seed=args.seed + EVAL_SEED_OFFSET, **env_kwargs)

    # %% Model: exactly the Atari PPO of chapter 2
    model = PPO(
        "CnnPolicy", env,
        n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
        learning_rate=LinearSchedule(args.learning_rate), clip_range=LinearSchedule(ZOO_ATARI_PPO["clip_range"]),
        ent_coef=ZOO_ATARI_PPO["ent_coef"], vf_coef=ZOO_ATARI_PPO["vf_coef"],
        tensorboard_log=str(run_dir), seed=args.seed, device=args.device,
    )

    # %% Train: evaluate every --eval-freq steps; freeze at the best model if scores collapse
    evaluator, freeze = eval_callbacks(args, eval_env, run_dir)
    table = {**vars(args), "reward_scale": repr(env_kwargs["reward_scale"]), "learning_rate": repr(model.learning_rate)}
    callbacks = [GameScoreCallback(), HyperparamTableCallback(markdown_table(table))]
    callbacks += [evaluator] if evaluator is not None else []
    learn_started = time.perf_counter()
    try:
        model.learn(args.timesteps, callback=callbacks, tb_log_name="PPO", progress_bar=sys.stderr.isatty())
    finally:
        env.close()
    train_seconds = time.perf_counter() - learn_started - (evaluator.eval_seconds if evaluator else 0.0)

    # %% Evaluate, replay, summary
    finish_run(model, args, script=__file__, run_dir=run_dir, eval_env=eval_env, env_kwargs=env_kwargs,
               trained_steps=model.num_timesteps, train_seconds=train_seconds, wall_started=started,
               evaluator=evaluator, freeze=freeze)


if __name__ == "__main__":
    run_main(main)
