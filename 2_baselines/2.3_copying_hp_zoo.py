"""2.3 Copying the zoo: rl-baselines3-zoo's tuned Atari PPO, exactly.

What you learn: hyperparameters matter more than anything so far. The zoo's Atari
setup (AtariWrapper, 4 stacked frames, 8 envs, n_steps 128, 4 epochs, batch 256,
learning rate linear from 2.5e-4, clip range linear from 0.1, vf_coef 0.5,
ent_coef 0.01) is written out below as PPO's keyword arguments; the values live once,
in rlbreakout/hyperparams.py (ZOO_ATARI_PPO), and any flag changes them. Without
`--fast` this script trains exactly what `python -m rl_zoo3.train --algo ppo --env
BreakoutNoFrameskip-v4` trains: same seed, same parameters (tests/test_zoo_parity.py).
`--resume RUN_DIR` continues an interrupted run; `--fast` turns on the speed levers of
0_setup/0.2_benchmark.py.

Run it:    python 2_baselines/2.3_copying_hp_zoo.py --timesteps 1000000 --fast
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, model and scores stay in the Variable Explorer.
Read:      2_baselines/README.md
"""

# %% Imports
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

from rlbreakout.callbacks import (
    GameScoreCallback,
    HyperparamTableCallback,
    MultiEnvEvalCallback,
    ProgressLineCallback,
    StepCheckpointCallback,
)
from rlbreakout.envs import make_env
from rlbreakout.hyperparams import ZOO_ATARI_PPO, markdown_table
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
TIMESTEPS = 10_000_000  # --timesteps: the zoo's budget (hours to a day on a CPU); 1_000_000 for a first run
N_ENVS = 8  # --n-envs: the zoo's 8 envs
EVAL_FREQ = 100_000  # --eval-freq: whole-game evaluation every this many env steps (0: only the final one)
EVAL_EPISODES = 10  # --eval-episodes: whole games per evaluation
GIF_GAMES = 1  # --gif-games: grid side of the replay gif (3: nine games); 0: no gif
FAST = False  # --fast: the speed levers of 0_setup/0.2_benchmark.py (2_baselines/README.md: what they change)


def parse_args():
    """The zoo's values are the defaults; 1e7 steps reproduces the zoo (--timesteps shortens it)."""
    parser = ppo_parser(__doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=TIMESTEPS, eval_freq=EVAL_FREQ)
    parser.set_defaults(env=ENV_ID, seed=SEED, n_envs=N_ENVS,
                        eval_episodes=EVAL_EPISODES, gif_games=GIF_GAMES, fast=FAST)
    return parse_ppo_args(parser)


args = parse_args()
config = validate_ppo_args(args)  # a PPOConfig: ZOO_ATARI_PPO, changed by any flag given
speed = speed_settings(args)  # stock SB3, or with --fast the levers measured fastest here
run = Run.from_args(__file__, args, levers=speed.levers)  # run folder, config.json, seeds

# %% Environment: 8 Breakouts under SB3's AtariWrapper, 4 frames stacked, channel-first uint8
env = make_env(args.env, config.n_envs, seed=args.seed, frame_stack=config.frame_stack, vec_env=args.vec_env,
               backend=speed.backend, ale_threads=speed.ale_threads)
# Evaluation plays whole games (5 lives, unclipped score) on separate envs, seeded apart.
eval_env = make_env(args.env, min(args.eval_episodes, MAX_EVAL_ENVS), seed=args.seed + EVAL_SEED_OFFSET,
                    frame_stack=config.frame_stack)
print("observation space:", env.observation_space, " actions:", env.action_space)

# %% Model: the zoo's hyperparameters, every one a keyword of PPO
if args.load:  # --load MODEL: no training, just evaluate and replay a saved model
    model = load_policy(args.load, device=args.device)
elif args.resume:  # --resume RUN_DIR: the checkpoint holds weights, optimiser and step count
    model = load_checkpoint(run.dir, env=env, device=args.device)  # latest.zip, else previous.zip
    model.tensorboard_log = str(run.dir)
    continue_schedules(model, args.timesteps)  # prints what each schedule does from this step on
else:
    model = PPO(
        speed.policy_class,  # "CnnPolicy"; with --fast the same network in the measured precision/layout
        env,
        n_steps=config.n_steps,  # 128 steps per env per rollout: 1024 per update with 8 envs
        batch_size=config.batch_size,  # 256: 4 minibatches per epoch
        n_epochs=config.n_epochs,  # 4 passes over each rollout
        learning_rate=config.learning_rate_schedule(args.timesteps),  # linear(2.5e-4): to 0 at the end
        clip_range=config.clip_range_schedule(args.timesteps),  # linear(0.1)
        ent_coef=config.ent_coef,  # 0.01: a small bonus for keeping the policy random
        vf_coef=config.vf_coef,  # 0.5: weight of the value loss
        gamma=config.gamma,  # 0.99
        gae_lambda=config.gae_lambda,  # 0.95
        max_grad_norm=config.max_grad_norm,  # 0.5
        policy_kwargs=speed.policy_kwargs or None,
        tensorboard_log=str(run.dir),
        seed=args.seed,
        device=args.device,
        verbose=0,
    )

# %% Train: Ctrl-C saves a checkpoint; --resume RUN_DIR continues it
game_scores = GameScoreCallback()  # game/score: the real score of every finished training game
evaluator = MultiEnvEvalCallback({"eval": eval_env}, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes,
                                 best_model_save_path=run.dir)
checkpoint = StepCheckpointCallback(args.checkpoint_freq, run.dir / CHECKPOINT_DIR)
callbacks = [game_scores, evaluator, checkpoint, ProgressLineCallback(args.timesteps),
             HyperparamTableCallback(markdown_table({**config.as_dict(), **speed.to_config()}))]
if not args.load:
    with run.training(model, on_interrupt=checkpoint.save):
        model.learn(total_timesteps=steps_left(model, args.timesteps, run.dir), callback=callbacks,
                    tb_log_name="PPO", reset_num_timesteps=not args.resume, progress_bar=on_terminal())
    run.exclude(evaluator.eval_seconds)  # steps/s counts training alone
    model_path = save_model(model, run.dir, checkpoint)
else:
    model_path = args.load

# %% Evaluate: whole games, actions sampled from the policy (a greedy Breakout policy can stall)
scores, lengths = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=False,
                                  return_episode_rewards=True)
print(f"scores of {len(scores)} whole games:", scores)

# %% Replay: a gif of the agent (--gif-games 3 plays 9 games in a 3x3 grid)
gif_path = None
if args.gif_games > 0:
    gif_path, recording = record_gif(model, run.dir / "replay.gif", args.env, grid=args.gif_games,
                                     seed=args.seed + EVAL_SEED_OFFSET, max_steps=args.gif_max_steps,
                                     frame_stack=config.frame_stack)
env.close()
eval_env.close()
run.finish(timesteps=getattr(model, "num_timesteps", 0), scores=scores, model_path=model_path, loaded_model=args.load,
           eval_lengths=lengths, gif_path=gif_path, train_game_scores=game_scores.scores[-100:],
           eval_history=[{"step": step, **results} for step, results in evaluator.history], **speed.to_config())
