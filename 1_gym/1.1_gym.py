"""1.1 Gymnasium basics: spaces, actions, and a random agent playing a whole game.

What you learn: the agent-environment loop (`reset`, then `step` until `terminated`
or `truncated`), what Breakout's observation and action spaces are, and how badly a
random agent plays, which is the baseline every later chapter must beat.

Run it:  python 1_gym/1.1_gym.py --games 3
Read:    1_gym/README.md
"""

# %% Imports
import time

import gymnasium as gym
import numpy as np

from rlbreakout.cli import common_parser, run_main
from rlbreakout.envs import check_env_id, register_ale
from rlbreakout.render import write_gif
from rlbreakout.runs import create_run_dir, save_run_config, score_stats, script_name, write_summary


def main() -> None:
    parser = common_parser(__doc__.splitlines()[0], timesteps=10_000, n_envs=1)
    parser.add_argument("--games", type=int, default=3, help="whole games the random agent plays")
    args = parser.parse_args()
    register_ale()
    check_env_id(args.env)  # a wrong id fails here, before a run folder is made
    run_dir = create_run_dir(args.logdir, script_name(__file__), args.env, args.seed)
    save_run_config(run_dir, vars(args))

    # %% Environment: one raw ALE env (no wrappers yet)
    env = gym.make(args.env, render_mode="rgb_array")
    print("observation space:", env.observation_space)  # Box(0, 255, (210, 160, 3), uint8): an RGB screen
    print("action space:     ", env.action_space)  # Discrete(4)
    print("action meanings:  ", env.unwrapped.get_action_meanings())  # NOOP, FIRE, RIGHT, LEFT

    # %% A random agent: sample actions until the game is over (or --timesteps runs out)
    env.action_space.seed(args.seed)
    observation, info = env.reset(seed=args.seed)
    scores, frames, score, steps = [], [], 0.0, 0
    started = time.perf_counter()
    while len(scores) < args.games and steps < args.timesteps:
        action = env.action_space.sample()
        observation, reward, terminated, truncated, info = env.step(action)
        score += float(reward)
        steps += 1
        if not scores:  # the first game becomes the gif
            frames.append(env.render())
        if terminated or truncated:  # terminated: all 5 lives lost; truncated: time limit
            print(f"game {len(scores) + 1}: score {score:.0f} after {info['episode_frame_number']} frames")
            scores.append(score)
            score = 0.0
            observation, info = env.reset()
    seconds = time.perf_counter() - started
    env.close()

    # %% Replay: every 2nd frame of the first game keeps the gif small
    gif_path = write_gif(frames[::2], run_dir / "random_agent.gif")
    write_summary(run_dir, {
        "script": script_name(__file__), "env_id": args.env, "timesteps": steps, "seed": args.seed,
        "run_dir": str(run_dir), "wall_seconds": round(seconds, 2),
        "steps_per_second": round(steps / max(seconds, 1e-9), 1),
        **score_stats(scores), "scores": scores, "gif_path": str(gif_path),
        "observation_shape": list(np.shape(observation)), "n_actions": int(env.action_space.n),
    })


if __name__ == "__main__":
    run_main(main)
