"""3.1 What the agent sees: the observation's shape after every wrapper, and one frame as numbers.

What you learn: each wrapper of the zoo stack (chapter 2) and of the aimbot stack
(this chapter) changes the observation; printing the shape after each one shows where
the 210x160 RGB screen becomes 84x84, where the 4 frames are stacked, and where the
channels move to the front for PyTorch. Then one raw frame and one aimbot observation
are written to pictures/ as jpeg (to look at) and csv (to read the numbers).

Run it:  python 3_obswrapper/3.1_observation_space.py
Read:    3_obswrapper/README.md
"""

# %% Imports
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np

from rlbreakout.aimbot import AimbotView
from rlbreakout.cli import common_parser, run_main
from rlbreakout.envs import check_env_id, make_env, make_env_thunk
from rlbreakout.runs import create_run_dir, save_run_config, script_name, write_summary
from rlbreakout.scripted_player import make_player_env, player_for

PICTURES = Path("pictures")
#: Agent steps played at most after --timesteps while waiting for a falling ball (the marker shows).
MAX_EXTRA_STEPS = 2_000
JPEG_QUALITY = 95


# %% Shapes along a wrapper stack


def wrapper_chain(env: gym.Env) -> list[tuple[str, tuple[int, ...]]]:
    """(wrapper name, observation shape) from the raw game outward."""
    chain = []
    while True:
        chain.append((type(env).__name__, tuple(env.observation_space.shape)))
        if not hasattr(env, "env"):
            break
        env = env.env
    return chain[::-1]


def vec_chain(venv: Any) -> list[tuple[str, tuple[int, ...]]]:
    """(VecEnv wrapper name, batched observation shape) from the DummyVecEnv outward."""
    chain = []
    while True:
        chain.append((type(venv).__name__, (venv.num_envs, *venv.observation_space.shape)))
        if not hasattr(venv, "venv"):
            break
        venv = venv.venv
    return chain[::-1]


def print_stack(title: str, env_id: str, wrapper: str, seed: int) -> list[tuple[str, tuple[int, ...]]]:
    env = make_env_thunk(env_id, seed=seed, wrapper=wrapper)()
    venv = make_env(env_id, 1, seed=seed, wrapper=wrapper, frame_stack=4)
    chain = wrapper_chain(env) + vec_chain(venv)
    env.close()
    venv.close()
    print(f"\n{title} (wrapper={wrapper!r}):")
    for name, shape in chain:
        print(f"  {name:<28} {shape}")
    return chain


# %% Writing a frame as jpeg and csv


def write_frame_csv(frame: np.ndarray, path: Path) -> None:
    """RGB frames as one line per pixel (row, col, r, g, b); single-channel ones as a row x col grid."""
    if frame.ndim == 3 and frame.shape[2] == 3:
        rows, cols = np.indices(frame.shape[:2])
        table = np.column_stack([rows.ravel(), cols.ravel(), frame.reshape(-1, 3)])
        np.savetxt(path, table, fmt="%d", delimiter=",", header="row,col,r,g,b", comments="")
    else:
        np.savetxt(path, frame.reshape(frame.shape[0], -1), fmt="%d", delimiter=",")


def write_jpeg(image: np.ndarray, path: Path) -> None:
    imageio.imwrite(path, image.squeeze(), quality=JPEG_QUALITY)


def main() -> None:
    parser = common_parser(__doc__.splitlines()[0], timesteps=60, n_envs=1)
    parser.add_argument("--pictures", default=str(PICTURES), help="folder for the jpeg and csv exports")
    args = parser.parse_args()
    check_env_id(args.env)
    run_dir = create_run_dir(args.logdir, script_name(__file__), args.env, args.seed)
    save_run_config(run_dir, vars(args))
    started = time.perf_counter()

    # %% The zoo stack of chapter 2 and the aimbot stack of this chapter
    zoo = print_stack("Zoo stack (chapter 2)", args.env, "atari", args.seed)
    aimbot = print_stack("Aimbot stack (chapter 3)", args.env, "aimbot", args.seed)

    # %% One frame with the ball falling: the scripted player plays until the marker shows
    env = make_player_env(args.env, seed=args.seed)
    player = player_for(args.env, seed=args.seed, view=AimbotView())
    frame, _ = env.reset(seed=args.seed)
    steps = 0
    while True:
        action = player.act(frame)  # also turns `frame` into the aimbot observation
        waited = steps >= args.timesteps
        if (waited and player.view.last_impact is not None) or steps >= args.timesteps + MAX_EXTRA_STEPS:
            break
        frame, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            frame, _ = env.reset()
            player.reset()
    env.close()
    observation = player.last_observation
    print(f"\nafter {steps} steps: raw frame {frame.shape} {frame.dtype}, "
          f"observation {observation.shape} {observation.dtype}, values {sorted(np.unique(observation).tolist())}")

    # %% Export: jpeg to look at, csv to read the numbers
    pictures = Path(args.pictures)
    pictures.mkdir(parents=True, exist_ok=True)
    paths = {
        "raw_jpeg": pictures / "3.1_raw_frame.jpg", "raw_csv": pictures / "3.1_raw_frame.csv",
        "observation_jpeg": pictures / "3.1_observation.jpg", "observation_csv": pictures / "3.1_observation.csv",
    }
    write_jpeg(frame, paths["raw_jpeg"])
    write_frame_csv(frame, paths["raw_csv"])
    write_jpeg(observation, paths["observation_jpeg"])
    write_frame_csv(observation, paths["observation_csv"])
    for path in paths.values():
        print(f"wrote {path}")

    seconds = time.perf_counter() - started
    write_summary(run_dir, {
        "script": script_name(__file__), "env_id": args.env, "timesteps": steps, "seed": args.seed,
        "run_dir": str(run_dir), "wall_seconds": round(seconds, 2),
        "steps_per_second": round(steps / max(seconds, 1e-9), 1),
        "zoo_stack": [[name, list(shape)] for name, shape in zoo],
        "aimbot_stack": [[name, list(shape)] for name, shape in aimbot],
        "raw_frame_shape": list(frame.shape), "observation_shape": list(observation.shape),
        "impact_column": player.view.last_impact, **{k: str(v) for k, v in paths.items()},
    })


if __name__ == "__main__":
    run_main(main)
