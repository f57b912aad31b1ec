"""1.3 Train a first agent: PPO with a CNN policy on one Breakout env.

What you learn: how little code a first deep-RL agent takes with stable-baselines3:
an env, `model = PPO("CnnPolicy", env)`, `model.learn(...)`, and an evaluation over
whole games. PPO runs here with SB3's own default hyperparameters (SB3_DEFAULT_PPO in
rlbreakout/hyperparams.py, written out below) on a single env, and a few minutes of
training barely moves the score: chapter 2 fixes that with 8 envs and tuned values.

Run it:    python 1_gym/1.3_train.py --timesteps 100000
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, model and scores stay in the Variable Explorer.
Watch:     tensorboard --logdir runs
Read:      1_gym/README.md
"""

# %% Imports
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

from rlbreakout.callbacks import GameScoreCallback, ProgressLineCallback, StepCheckpointCallback
from rlbreakout.envs import make_env
from rlbreakout.hyperparams import SB3_DEFAULT_PPO
from rlbreakout.progress import on_terminal
from rlbreakout.render import record_gif
from rlbreakout.runs import Run
from rlbreakout.training import (
    CHECKPOINT_DIR,
    EVAL_SEED_OFFSET,
    MAX_EVAL_ENVS,
    continue_schedules,
    load_checkpoint,
    load_policy,
    parse_ppo_args,
    ppo_parser,
    save_model,
    speed_settings,
    steps_left,
    validate_ppo_args,
)


# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env: the game and its settings (chapter 4.1 compares them)
SEED = 0  # --seed: python, numpy, torch and the envs; another seed, another run
TIMESTEPS = 100_000  # --timesteps: env steps to train (this early the score barely moves)
N_ENVS = 1  # --n-envs: envs stepped together (chapter 2.1 uses 8)
EVAL_FREQ = 0  # --eval-freq: env steps between whole-game evaluations (0: only the final one)
EVAL_EPISODES = 10  # --eval-episodes: whole games per evaluation
GIF_GAMES = 1  # --gif-games: grid side of the replay gif (3: nine games); 0: no gif
FAST = False  # --fast: the speed levers of 0_setup/0.2_benchmark.py (2_baselines/README.md: what they change)


def parse_args():
    """SB3's default PPO on one env; --timesteps and the other flags change it."""
    parser = ppo_parser(__doc__.splitlines()[0], SB3_DEFAULT_PPO, timesteps=TIMESTEPS, eval_freq=EVAL_FREQ)
    parser.set_defaults(env=ENV_ID, seed=SEED, n_envs=N_ENVS,
                        eval_episodes=EVAL_EPISODES, gif_games=GIF_GAMES, fast=FAST)
    return parse_ppo_args(parser)


args = parse_args()
config = validate_ppo_args(args)
speed = speed_settings(args)
run = Run.from_args(__file__, args, levers=speed.levers)

# %% Environment: BreakoutNoFrameskip-v4 under SB3's AtariWrapper, 4 frames stacked
# AtariWrapper: 84x84 grey, frameskip 4, a lost life ends a training episode, rewards
# clipped to -1/0/+1. The factory also records whole games (Monitor) for the score.
env = make_env(args.env, config.n_envs, seed=args.seed, frame_stack=config.frame_stack, vec_env=args.vec_env,
               backend=speed.backend, ale_threads=speed.ale_threads)
eval_env = make_env(args.env, min(args.eval_episodes, MAX_EVAL_ENVS), seed=args.seed + EVAL_SEED_OFFSET,
                    frame_stack=config.frame_stack)
obs = env.reset()
print("observation batch:", obs.shape, obs.dtype)  # (1, 4, 84, 84) uint8: 4 stacked grey frames

# %% Model: a CNN policy (Nature DQN's network) with a policy head and a value head
if args.load:
    model = load_policy(args.load, device=args.device)
elif args.resume:
    model = load_checkpoint(run.dir, env=env, device=args.device)  # latest.zip, else previous.zip
    model.tensorboard_log = str(run.dir)
    continue_schedules(model, args.timesteps)  # prints what each schedule does from this step on
else:
    model = PPO(
        speed.policy_class,  # "CnnPolicy"
        env,
        n_steps=config.n_steps,  # 2048 env steps per rollout
        batch_size=config.batch_size,  # 64
        n_epochs=config.n_epochs,  # 10 passes over each rollout
        learning_rate=config.learning_rate_schedule(args.timesteps),  # constant(3e-4)
        clip_range=config.clip_range_schedule(args.timesteps),  # constant(0.2)
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        max_grad_norm=config.max_grad_norm,
        policy_kwargs=speed.policy_kwargs or None,
        tensorboard_log=str(run.dir),  # curves: tensorboard --logdir runs
        seed=args.seed,
        device=args.device,
    )
print(model.policy if not args.load else model)

# %% Train: the curves go to TensorBoard; Ctrl-C saves a checkpoint for --resume
game_scores = GameScoreCallback()  # game/score: the real score of every finished game
checkpoint = StepCheckpointCallback(args.checkpoint_freq, run.dir / CHECKPOINT_DIR)
if not args.load:
    with run.training(model, on_interrupt=checkpoint.save):
        model.learn(total_timesteps=steps_left(model, args.timesteps, run.dir),
                    callback=[game_scores, checkpoint, ProgressLineCallback(args.timesteps)],
                    tb_log_name="PPO", reset_num_timesteps=not args.resume, progress_bar=on_terminal())
    model_path = save_model(model, run.dir, checkpoint)
else:
    model_path = args.load

# %% Evaluate: whole games (all 5 lives, unclipped score), actions sampled from the policy
scores, lengths = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=False,
                                  return_episode_rewards=True)
print(f"scores of {len(scores)} whole games:", scores)

# %% Replay: a gif of the trained agent in the run folder
gif_path = None
if args.gif_games > 0:
    gif_path, recording = record_gif(model, run.dir / "replay.gif", args.env, grid=args.gif_games,
                                     seed=args.seed + EVAL_SEED_OFFSET, max_steps=args.gif_max_steps,
                                     frame_stack=config.frame_stack)
env.close()
eval_env.close()
run.finish(timesteps=getattr(model, "num_timesteps", 0), scores=scores, model_path=model_path, loaded_model=args.load,
           eval_lengths=lengths, gif_path=gif_path, train_game_scores=game_scores.scores[-100:], **speed.to_config())
