"""2.2 Callbacks: evaluate whole games on a separate env, and log the real game score.

What you learn: what the training curve hides, and how SB3 callbacks hook into
`model.learn`. PPO trains on per-life episodes with rewards clipped to +1, so the reward
it optimises is not the score a player sees; `rollout/ep_rew_mean` shows whole-game scores
(it reads the Monitor under the Atari wrappers), but of training games only, averaged over
the last 100. Five callbacks are constructed below and passed to `learn` as a list; three
make the score visible:

* `MultiEnvEvalCallback` (rlbreakout/callbacks.py) plays whole games (all 5 lives) on a
  separate eval env built by the same factory as the training env (same wrappers, so
  the observations match), every `--eval-freq` *env steps*, and keeps `best_model.zip`;
* `GameScoreCallback` writes `game/score`, the unclipped score of every finished
  training game, at the env step where it ended;
* `GamesPlayedCallback`, written in this script: the smallest useful `BaseCallback`,
  as SB3's callback guide teaches it;

and two keep the run safe and visible: `StepCheckpointCallback` (a resumable
checkpoints/latest.zip every --checkpoint-freq env steps) and `ProgressLineCallback`.

Run it:    python 2_baselines/2.2_callbacks.py --timesteps 200000 --eval-freq 25000
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell; env, model
           and the callbacks stay in the Variable Explorer.
Read:      2_baselines/README.md
"""

# %% Imports
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy

from rlbreakout.callbacks import GameScoreCallback, MultiEnvEvalCallback, ProgressLineCallback, StepCheckpointCallback
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
TIMESTEPS = 200_000  # --timesteps: env steps to train
N_ENVS = 8  # --n-envs: envs stepped together
EVAL_FREQ = 25_000  # --eval-freq: 2.1's PPO with evaluation switched on, every this many env steps
EVAL_EPISODES = 10  # --eval-episodes: whole games per evaluation
GIF_GAMES = 1  # --gif-games: grid side of the replay gif (3: nine games); 0: no gif
FAST = False  # --fast: the speed levers of 0_setup/0.2_benchmark.py (2_baselines/README.md: what they change)


def parse_args():
    parser = ppo_parser(__doc__.splitlines()[0], SB3_DEFAULT_PPO.replace(n_envs=N_ENVS), timesteps=TIMESTEPS,
                        eval_freq=EVAL_FREQ)
    parser.set_defaults(env=ENV_ID, seed=SEED,
                        eval_episodes=EVAL_EPISODES, gif_games=GIF_GAMES, fast=FAST)
    return parse_ppo_args(parser)


args = parse_args()
config = validate_ppo_args(args)
speed = speed_settings(args)
run = Run.from_args(__file__, args, levers=speed.levers)

# %% Environment: training envs, and eval envs from the same factory (same wrappers)
env = make_env(args.env, config.n_envs, seed=args.seed, frame_stack=config.frame_stack, vec_env=args.vec_env,
               backend=speed.backend, ale_threads=speed.ale_threads)
eval_env = make_env(args.env, min(args.eval_episodes, MAX_EVAL_ENVS), seed=args.seed + EVAL_SEED_OFFSET,
                    frame_stack=config.frame_stack)

# %% Model: 2.1's PPO
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
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        learning_rate=config.learning_rate_schedule(args.timesteps),
        clip_range=config.clip_range_schedule(args.timesteps),
        ent_coef=config.ent_coef,
        vf_coef=config.vf_coef,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        max_grad_norm=config.max_grad_norm,
        policy_kwargs=speed.policy_kwargs or None,
        tensorboard_log=str(run.dir),
        seed=args.seed,
        device=args.device,
    )


# %% Callbacks: SB3 calls each one at every env step of model.learn
class GamesPlayedCallback(BaseCallback):
    """Count the whole training games finished so far and log it as ``game/played``.

    SB3 calls ``_on_step`` after every ``env.step`` of the rollout; ``self.locals`` holds
    the rollout loop's variables (``infos`` among them), ``self.logger`` is the run's
    logger, and returning False would stop training.
    """

    def __init__(self) -> None:
        super().__init__()
        self.games = 0

    def _on_step(self) -> bool:
        # The Monitor under AtariWrapper puts "episode" in info only when a whole game ends.
        self.games += sum("episode" in info for info in self.locals["infos"])
        self.logger.record("game/played", self.games)
        return True


games_played = GamesPlayedCallback()
game_scores = GameScoreCallback()  # game/score and game/length of every finished training game
evaluator = MultiEnvEvalCallback(  # eval/eval/mean_reward, median_reward, ... every --eval-freq env steps
    {"eval": eval_env}, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes, best_model_save_path=run.dir,
)
checkpoint = StepCheckpointCallback(args.checkpoint_freq, run.dir / CHECKPOINT_DIR)  # resumable latest.zip
callbacks = [games_played, game_scores, evaluator, checkpoint, ProgressLineCallback(args.timesteps)]

# %% Train: the callbacks go to learn as a list
if not args.load:
    with run.training(model, on_interrupt=checkpoint.save):
        model.learn(total_timesteps=steps_left(model, args.timesteps, run.dir), callback=callbacks,
                    tb_log_name="PPO", reset_num_timesteps=not args.resume, progress_bar=on_terminal())
    run.exclude(evaluator.eval_seconds)  # steps/s counts training alone
    model_path = save_model(model, run.dir, checkpoint)
    print(f"{games_played.games} training games finished; periodic evaluations: "
          f"{[(step, round(r['eval']['mean_reward'], 1)) for step, r in evaluator.history]}")
else:
    model_path = args.load

# %% Evaluate: whole games on the eval env, actions sampled from the policy
scores, lengths = evaluate_policy(model, eval_env, n_eval_episodes=args.eval_episodes, deterministic=False,
                                  return_episode_rewards=True)
print(f"scores of {len(scores)} whole games:", scores)

# %% Replay
gif_path = None
if args.gif_games > 0:
    gif_path, recording = record_gif(model, run.dir / "replay.gif", args.env, grid=args.gif_games,
                                     seed=args.seed + EVAL_SEED_OFFSET, max_steps=args.gif_max_steps,
                                     frame_stack=config.frame_stack)
env.close()
eval_env.close()
run.finish(timesteps=getattr(model, "num_timesteps", 0), scores=scores, model_path=model_path, loaded_model=args.load,
           eval_lengths=lengths, gif_path=gif_path, train_game_scores=game_scores.scores[-100:],
           games_played=games_played.games,
           eval_history=[{"step": step, **results} for step, results in evaluator.history], **speed.to_config())
