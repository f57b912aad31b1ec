"""1.2 Wrappers: what `terminated` means per life and per game (EpisodicLifeEnv).

What you learn: a wrapper changes what the agent sees without touching the game.
SB3's EpisodicLifeEnv reports `terminated=True` at every lost life, which helps
learning (losing a life is final for the value estimate), but the *game* goes on
until all 5 lives are gone. This script prints both as a random agent plays.

Run it:    python 1_gym/1.2_wrapper.py
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env and scores stay in the Variable Explorer.
Read:      1_gym/README.md
"""

# %% Imports
import gymnasium as gym
from stable_baselines3.common.atari_wrappers import EpisodicLifeEnv

from rlbreakout.cli import common_parser, parse_script_args
from rlbreakout.env_ids import check_env_id, register_ale
from rlbreakout.progress import ProgressLine
from rlbreakout.runs import Run


# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env: the game and its settings (chapter 4.1 compares them)
SEED = 0  # --seed: python, numpy, torch and the envs; another seed, another run
TIMESTEPS = 5_000  # --timesteps: steps to play
def parse_args():
    parser = common_parser(__doc__.splitlines()[0], env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=1)
    return parse_script_args(parser)


args = parse_args()
register_ale()
check_env_id(args.env)  # a wrong id fails here, before a run folder is made
run = Run.from_args(__file__, args)

# %% Environment: the raw game inside EpisodicLifeEnv
env = EpisodicLifeEnv(gym.make(args.env))
env.action_space.seed(args.seed)
env.reset(seed=args.seed)

# %% Play one game: a life-episode ends at each lost life; the game ends when env.was_real_done
life_episodes, game_score, life_reward, steps, scores = 0, 0.0, 0.0, 0, []
progress = ProgressLine(args.timesteps)
with run.training():  # the clock behind summary.json's steps_per_second
    while steps < args.timesteps and not scores:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        progress.update(steps)
        game_score += float(reward)
        life_reward += float(reward)
        if terminated or truncated:
            life_episodes += 1
            game_over = env.was_real_done
            print(f"step {steps:5d}: terminated=True  lives left={info['lives']}  "
                  f"life reward={life_reward:.0f}  game over={game_over}")
            life_reward = 0.0
            if game_over:
                scores.append(game_score)
                print(f"whole-game score: {game_score:.0f} over {life_episodes} life-episodes")
            env.reset()
run.trained_steps += steps
env.close()

# %% Summary: summary.json in the run folder, its path printed last
run.finish(timesteps=steps, scores=scores, life_episodes=life_episodes)
