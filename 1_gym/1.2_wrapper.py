"""1.2 Wrappers: what `terminated` means per life and per game (EpisodicLifeEnv).

What you learn: a wrapper changes what the agent sees without touching the game.
SB3's EpisodicLifeEnv reports `terminated=True` at every lost life, which helps
learning (losing a life is final for the value estimate), but the *game* goes on
until all 5 lives are gone. This script prints both as a random agent plays.

Run it:  python 1_gym/1.2_wrapper.py
Read:    1_gym/README.md
"""

# %% Imports
import time

import gymnasium as gym
from stable_baselines3.common.atari_wrappers import EpisodicLifeEnv

from rlbreakout.cli import common_parser, run_main
from rlbreakout.envs import check_env_id, register_ale
from rlbreakout.runs import create_run_dir, save_run_config, score_stats, script_name, write_summary


def main() -> None:
    parser = common_parser(__doc__.splitlines()[0], timesteps=5_000, n_envs=1)
    args = parser.parse_args()
    register_ale()
    check_env_id(args.env)  # a wrong id fails here, before a run folder is made
    run_dir = create_run_dir(args.logdir, script_name(__file__), args.env, args.seed)
    save_run_config(run_dir, vars(args))

    # %% Environment: the raw game inside EpisodicLifeEnv
    env = EpisodicLifeEnv(gym.make(args.env))
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)

    # %% Play: a life-episode ends at each lost life; the game ends when env.was_real_done
    life_episodes, game_score, life_reward, steps, scores = 0, 0.0, 0.0, 0, []
    started = time.perf_counter()
    while steps < args.timesteps and not scores:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
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
    seconds = time.perf_counter() - started
    env.close()
    write_summary(run_dir, {
        "script": script_name(__file__), "env_id": args.env, "timesteps": steps, "seed": args.seed,
        "run_dir": str(run_dir), "wall_seconds": round(seconds, 2),
        "steps_per_second": round(steps / max(seconds, 1e-9), 1),
        "life_episodes": life_episodes, **score_stats(scores), "scores": scores,
    })


if __name__ == "__main__":
    run_main(main)
