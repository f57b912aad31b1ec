"""2.1 Parallel envs: the same PPO as 1.3, but stepping 8 Breakout games at once.

What you learn: a VecEnv steps n envs together and hands PPO a batch of observations,
so one rollout holds 8x more (and more varied) experience. SB3 has two classes:
DummyVecEnv steps the envs one after another in this process; SubprocVecEnv runs each
env in a process of its own. Compare this run with 1.3 in TensorBoard: same
hyperparameters, same step budget, one env against eight.

Run it:    python 2_baselines/2.1_envs.py --timesteps 100000 [--vec-env subproc]
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (DummyVecEnv);
           env, model and scores stay in the Variable Explorer.
Read:      2_baselines/README.md
"""

# %% Imports
import time

from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from rlbreakout.callbacks import GameScoreCallback, ProgressLineCallback, StepCheckpointCallback
from rlbreakout.envs import make_env, make_env_thunk
from rlbreakout.hyperparams import SB3_DEFAULT_PPO
from rlbreakout.processes import workers_without_script
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
TIMESTEPS = 100_000  # --timesteps: env steps to train
N_ENVS = 8  # --n-envs: 1.3's PPO with 8 envs instead of 1
EVAL_FREQ = 0  # --eval-freq: env steps between whole-game evaluations (0: only the final one)
EVAL_EPISODES = 10  # --eval-episodes: whole games per evaluation
GIF_GAMES = 1  # --gif-games: grid side of the replay gif (3: nine games); 0: no gif
FAST = False  # --fast: the speed levers of 0_setup/0.2_benchmark.py (2_baselines/README.md: what they change)
#: Env steps per class when the two VecEnv classes are timed side by side.
TIMING_STEPS = 200


def parse_args():
    parser = ppo_parser(__doc__.splitlines()[0], SB3_DEFAULT_PPO.replace(n_envs=N_ENVS), timesteps=TIMESTEPS,
                        eval_freq=EVAL_FREQ)
    parser.set_defaults(env=ENV_ID, seed=SEED,
                        eval_episodes=EVAL_EPISODES, gif_games=GIF_GAMES, fast=FAST)
    parser.add_argument("--compare-vec-envs", action="store_true",
                        help=f"first time {TIMING_STEPS} steps of DummyVecEnv against SubprocVecEnv")
    return parse_ppo_args(parser)


args = parse_args()
config = validate_ppo_args(args)
speed = speed_settings(args)
run = Run.from_args(__file__, args, levers=speed.levers)

# %% Environment: one thunk per env, seeded seed, seed+1, ..., then the VecEnv class
# DummyVecEnv: the 8 envs step one after another in this process. Nothing to start, no
#   copies; on 2 cores it is as fast as anything (0_setup/0.2_benchmark.py measures it).
# SubprocVecEnv: one process per env. Each costs ~0.3 GB and a second to start, and every
#   step pickles the observations through a pipe; it pays off when one env step is slow
#   (a physics simulator, an emulator with frames to render) and cores are free.
thunks = [make_env_thunk(args.env, rank=rank, seed=args.seed) for rank in range(config.n_envs)]
print(f"{len(thunks)} env factories; the training env uses {args.vec_env} "
      f"({'SubprocVecEnv' if args.vec_env == 'subproc' else 'DummyVecEnv'})")
# The training env: the same thunks in the chosen class, frames stacked and channel-first.
env = make_env(args.env, config.n_envs, seed=args.seed, frame_stack=config.frame_stack, vec_env=args.vec_env,
               backend=speed.backend, ale_threads=speed.ale_threads)
eval_env = make_env(args.env, min(args.eval_episodes, MAX_EVAL_ENVS), seed=args.seed + EVAL_SEED_OFFSET,
                    frame_stack=config.frame_stack)

# %% Compare (--compare-vec-envs): step both classes and time them
# SubprocVecEnv starts processes. Under the spawn and forkserver start methods (Windows,
# macOS, and SB3's default on Linux) each new process first re-runs the main script from
# the top (as "__mp_main__"): the __main__ guard keeps the child from starting processes
# again, and workers_without_script() hides this script from the workers altogether, since
# its story (run folder, model, training) is module-level cells that must run only here.
vec_env_speed = {}
if args.compare_vec_envs and __name__ == "__main__":
    for vec_env_class in (DummyVecEnv, SubprocVecEnv):
        with workers_without_script():
            venv = vec_env_class(thunks)
        venv.reset()
        started = time.perf_counter()
        for _ in range(TIMING_STEPS):
            venv.step([venv.action_space.sample() for _ in range(venv.num_envs)])
        vec_env_speed[vec_env_class.__name__] = TIMING_STEPS * venv.num_envs / (time.perf_counter() - started)
        venv.close()
    print("env steps/s:", {name: round(rate) for name, rate in vec_env_speed.items()})

# %% Model: 1.3's PPO (SB3's defaults), now fed 8 envs
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
        n_steps=config.n_steps,  # 2048 steps per env: a rollout is now 8 x 2048 = 16,384 steps
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

# %% Train
game_scores = GameScoreCallback()
checkpoint = StepCheckpointCallback(args.checkpoint_freq, run.dir / CHECKPOINT_DIR)
if not args.load:
    with run.training(model, on_interrupt=checkpoint.save):
        model.learn(total_timesteps=steps_left(model, args.timesteps, run.dir),
                    callback=[game_scores, checkpoint, ProgressLineCallback(args.timesteps)],
                    tb_log_name="PPO", reset_num_timesteps=not args.resume, progress_bar=on_terminal())
    model_path = save_model(model, run.dir, checkpoint)
else:
    model_path = args.load

# %% Evaluate: whole games, actions sampled from the policy
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
           vec_env=args.vec_env, vec_env_steps_per_second=vec_env_speed, **speed.to_config())
