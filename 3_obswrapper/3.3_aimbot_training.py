"""3.3 Aimbot training: the zoo's PPO, trained on what the aimbot wrapper shows.

What you learn: changing what the agent *sees* can matter more than any
hyperparameter. The aimbot wrapper (rlbreakout/aimbot/) crops the screen to the
playfield, binarises it, and draws a marker on the row below the paddle where the ball
will cross it, so "move under the marker" is a pattern the CNN can pick up quickly.
PPO and its keywords are chapter 2.3's, unchanged; only `make_env(..., wrapper="aimbot")`
differs. The observation options and the frame stack are flags, so variants can be
compared in TensorBoard; the replay gif shows the agent's view beside the game.
`--resume RUN_DIR` continues an interrupted run; `--fast` turns on the speed levers of
0_setup/0.2_benchmark.py; `--load MODEL` only evaluates and replays a saved model.

Run it:    python 3_obswrapper/3.3_aimbot_training.py --timesteps 1000000 --fast
Compare:   ... --prediction none   /   ... --frame-stack 1   /   ... --colour grey
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, model and scores stay in the Variable Explorer.
Read:      3_obswrapper/README.md
"""

# %% Imports
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy

from rlbreakout.aimbot import (
    COLOUR_CHOICES,
    CROP_CHOICES,
    DEFAULT_COLOUR,
    DEFAULT_CROP,
    DEFAULT_PREDICTION,
    PREDICTION_CHOICES,
)
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
from rlbreakout.render import VIEW_CHOICES, record_gif
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
TIMESTEPS = 1_000_000  # --timesteps: the tutorial's 1e6 steps (its 1e7 run: 200-400 points a game)
N_ENVS = 8  # --n-envs: the zoo's 8 envs
EVAL_FREQ = 100_000  # --eval-freq: whole-game evaluation every this many env steps (0: only the final one)
EVAL_EPISODES = 10  # --eval-episodes: whole games per evaluation
GIF_GAMES = 1  # --gif-games: grid side of the replay gif (3: nine games); 0: no gif
FAST = False  # --fast: the speed levers of 0_setup/0.2_benchmark.py (2_baselines/README.md: what they change)
WRAPPER = "aimbot"


def parse_args():
    """The zoo's PPO (chapter 2.3) plus the aimbot wrapper's options."""
    parser = ppo_parser(__doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=TIMESTEPS, eval_freq=EVAL_FREQ)
    parser.set_defaults(env=ENV_ID, seed=SEED, n_envs=N_ENVS,
                        eval_episodes=EVAL_EPISODES, gif_games=GIF_GAMES, fast=FAST)
    view = parser.add_argument_group("aimbot observation")
    view.add_argument("--colour", choices=COLOUR_CHOICES, default=DEFAULT_COLOUR, help="rgb, grey or mono (binarised)")
    view.add_argument("--crop", choices=CROP_CHOICES, default=DEFAULT_CROP,
                      help="keep the screen, trim to the playfield, or blacken the rest")
    view.add_argument("--prediction", choices=PREDICTION_CHOICES, default=DEFAULT_PREDICTION,
                      help="draw the impact marker or not")
    view.add_argument("--gif-view", choices=VIEW_CHOICES, default="agent",
                      help="replay gif: the agent's view beside the screen, or the screen alone (lighter 3x3 grids)")
    return parse_ppo_args(parser)


args = parse_args()
config = validate_ppo_args(args)  # a PPOConfig: ZOO_ATARI_PPO, changed by any flag given
wrapper_kwargs = {"colour": args.colour, "crop": args.crop, "prediction": args.prediction}
speed = speed_settings(args, wrapper=WRAPPER, wrapper_kwargs=wrapper_kwargs)  # stock SB3, or the --fast levers
run = Run.from_args(__file__, args, wrapper=WRAPPER, wrapper_kwargs=wrapper_kwargs, levers=speed.levers)

# %% Environment: 8 Breakouts under the aimbot wrapper (in WarpFrame's place), 4 frames stacked
env = make_env(args.env, config.n_envs, seed=args.seed, frame_stack=config.frame_stack, wrapper=WRAPPER,
               wrapper_kwargs=wrapper_kwargs, vec_env=args.vec_env, backend=speed.backend,
               ale_threads=speed.ale_threads)
# Evaluation plays whole games (5 lives, unclipped score) on separate envs, seeded apart.
eval_env = make_env(args.env, min(args.eval_episodes, MAX_EVAL_ENVS), seed=args.seed + EVAL_SEED_OFFSET,
                    frame_stack=config.frame_stack, wrapper=WRAPPER, wrapper_kwargs=wrapper_kwargs)
print("observation space:", env.observation_space, " actions:", env.action_space)

# %% Model: chapter 2.3's PPO, every hyperparameter a keyword
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
             HyperparamTableCallback(markdown_table({**config.as_dict(), **wrapper_kwargs, **speed.to_config()}))]
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

# %% Replay: a gif of the agent; --gif-view agent puts its observation beside the screen
gif_path = None
if args.gif_games > 0:
    gif_path, recording = record_gif(model, run.dir / "replay.gif", args.env, grid=args.gif_games,
                                     seed=args.seed + EVAL_SEED_OFFSET, max_steps=args.gif_max_steps,
                                     frame_stack=config.frame_stack, wrapper=WRAPPER, wrapper_kwargs=wrapper_kwargs,
                                     view=args.gif_view)
env.close()
eval_env.close()
run.finish(timesteps=getattr(model, "num_timesteps", 0), scores=scores, model_path=model_path,
           eval_lengths=lengths, gif_path=gif_path, train_game_scores=game_scores.scores[-100:],
           eval_history=[{"step": step, **results} for step, results in evaluator.history],
           wrapper=WRAPPER, wrapper_kwargs=wrapper_kwargs, **speed.to_config())
