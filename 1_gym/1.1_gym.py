"""1.1 Gymnasium basics: spaces, actions, and a random agent playing a whole game.

What you learn: the agent-environment loop (`reset`, then `step` until `terminated`
or `truncated`), what Breakout's observation and action spaces are, and how badly a
random agent plays, which is the baseline every later chapter must beat.

Run it:    python 1_gym/1.1_gym.py --games 3
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, observation and scores stay in the Variable Explorer.
Read:      1_gym/README.md
"""

# %% Imports
import gymnasium as gym
import numpy as np

from rlbreakout.cli import common_parser, parse_script_args
from rlbreakout.env_ids import check_env_id, register_ale
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_COUNT, whole
from rlbreakout.progress import ProgressLine
from rlbreakout.render import write_gif
from rlbreakout.runs import Run

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env: the game and its settings (chapter 4.1 compares them)
SEED = 0  # --seed: python, numpy, torch and the envs; another seed, another run
TIMESTEPS = 10_000  # --timesteps: random steps at most
GAMES = 3  # --games: whole games the random agent plays
#: Keep every this many frames of the first game in the gif (smaller file).
GIF_FRAME_EVERY = 2


def parse_args():
    parser = common_parser(__doc__.splitlines()[0], env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=1)
    parser.add_argument("--games", type=whole(1, MAX_COUNT), default=GAMES, help="whole games the random agent plays")
    return parse_script_args(parser)


args = parse_args()
register_ale()
check_env_id(args.env)  # a wrong id fails here, before a run folder is made
if args.games < 1:
    raise ConfigError(f"--games must be >= 1, got {args.games}.")
run = Run.from_args(__file__, args)

# %% Environment: one raw ALE env (no wrappers yet)
env = gym.make(args.env, render_mode="rgb_array")
print("observation space:", env.observation_space)  # Box(0, 255, (210, 160, 3), uint8): an RGB screen
print("action space:     ", env.action_space)  # Discrete(4)
print("action meanings:  ", env.unwrapped.get_action_meanings())  # NOOP, FIRE, RIGHT, LEFT

# %% A random agent: sample actions until the game is over (or --timesteps runs out)
env.action_space.seed(args.seed)
observation, info = env.reset(seed=args.seed)
scores, frames, score, steps = [], [], 0.0, 0
progress = ProgressLine(args.timesteps)
with run.training():  # the clock behind summary.json's steps_per_second
    while len(scores) < args.games and steps < args.timesteps:
        action = env.action_space.sample()
        observation, reward, terminated, truncated, info = env.step(action)
        score += float(reward)
        steps += 1
        progress.update(steps, scores)
        if not scores and steps % GIF_FRAME_EVERY == 0:  # the first game becomes the gif
            frames.append(env.render())
        if terminated or truncated:  # terminated: all 5 lives lost; truncated: time limit
            print(f"game {len(scores) + 1}: score {score:.0f} after {info['episode_frame_number']} frames")
            scores.append(score)
            score = 0.0
            observation, info = env.reset()
run.trained_steps += steps
env.close()

# %% Replay: the first game as a gif in the run folder
gif_path = write_gif(frames, run.dir / "random_agent.gif")
run.finish(timesteps=steps, scores=scores, gif_path=str(gif_path), observation_shape=list(np.shape(observation)),
           n_actions=int(env.action_space.n))
