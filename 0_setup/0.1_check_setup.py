"""0.1 Check the setup: versions, torch device, CPU features, the Breakout ROM, raw env speed.

What you learn: whether this machine is ready for the tutorial, and how fast the
emulator alone runs here (every training is slower than this ceiling).
ROMs now ship inside ale-py (>= 0.9): there is no AutoROM step any more.
One rendered frame goes into the run folder; `--save-pictures` also replaces the
committed pictures/0.1_breakout_frame.png.

Run it:    python 0_setup/0.1_check_setup.py
In Spyder: run it cell by cell (Ctrl+Return runs a cell, Shift+Return runs it and moves on);
           the defaults apply, and env, frame and versions stay in the Variable Explorer.
Read:      0_setup/README.md
"""

# %% Imports
import importlib.metadata
import platform
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import torch

from rlbreakout.cli import common_parser, parse_script_args, resolve_device
from rlbreakout.env_ids import check_env_id, register_ale
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import output_file
from rlbreakout.progress import ProgressLine
from rlbreakout.render import copy_picture
from rlbreakout.runs import Run
from rlbreakout.speed.hardware import CPU_BF16_FLAGS, cpu_flags

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env: the game to check
TIMESTEPS = 2_000  # --timesteps: random steps timed per check
SEED = 0  # --seed
N_ENVS = 8  # --n-envs: envs stepped together in the speed check
PACKAGES = ("gymnasium", "ale-py", "stable-baselines3", "torch", "tensorboard", "optuna", "opencv-python-headless",
            "imageio", "numpy")
FRAME_FILE = "0.1_breakout_frame.png"
#: The repository's committed pictures (written only with --save-pictures).
PICTURES = Path(__file__).resolve().parents[1] / "pictures"


def parse_args():
    parser = common_parser(__doc__.splitlines()[0], env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=N_ENVS)
    parser.add_argument("--picture", type=output_file, default=None, help="also copy the rendered frame to this path")
    parser.add_argument("--save-pictures", dest="picture", action="store_const", const=str(PICTURES / FRAME_FILE),
                        help=f"also replace the committed pictures/{FRAME_FILE} with the rendered frame")
    return parse_script_args(parser)


args = parse_args()
register_ale()
check_env_id(args.env)  # a wrong id fails here, before a run folder is made
if args.timesteps < 1 or args.n_envs < 1:
    raise ConfigError(f"--timesteps and --n-envs must be >= 1, got {args.timesteps} and {args.n_envs}.")
run = Run.from_args(__file__, args)

# %% Versions and hardware
versions = {}
for name in PACKAGES:
    try:
        versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        versions[name] = "not installed"
    print(f"{name:24s} {versions[name]}")
print(f"{'python':24s} {platform.python_version()}")
device = resolve_device(args.device)  # what --device names ("auto": CUDA where there is one)
bf16_flags = sorted(CPU_BF16_FLAGS & cpu_flags())
print(f"torch device: {device}; CPU threads: {torch.get_num_threads()}; "
      f"bf16 CPU flags: {', '.join(bf16_flags) or 'none (bf16 runs slowly; use --precision fp32)'}")

# %% The ROM loads and renders: one raw env, one frame
env = gym.make(args.env, render_mode="rgb_array")
observation, info = env.reset(seed=args.seed)
frame = env.render()
env.close()
picture = run.dir / FRAME_FILE
imageio.imwrite(picture, frame)
print(f"{args.env} ROM loaded; one {frame.shape} frame saved to {picture}")
copies = [str(copy_picture(picture, args.picture))] if args.picture else []

# %% Raw env speed: n envs under SB3's Atari wrappers, random actions, no learning
env = make_env(args.env, args.n_envs, seed=args.seed)
env.reset()
rng = np.random.default_rng(args.seed)
steps = max(args.timesteps // args.n_envs, 1)
progress = ProgressLine(steps * args.n_envs)
with run.training():  # the clock behind summary.json's steps_per_second
    for step in range(1, steps + 1):
        env.step(rng.integers(0, env.action_space.n, size=args.n_envs))
        progress.update(step * args.n_envs)
run.trained_steps += steps * args.n_envs
env.close()
print(f"raw env speed: {run.steps_per_second:.0f} env steps/s ({args.n_envs} envs, DummyVecEnv, "
      f"{run.trained_steps} steps)")

# %% Summary: summary.json in the run folder, its path printed last
run.finish(timesteps=run.trained_steps, versions=versions, python=platform.python_version(), device=device,
           bf16_cpu_flags=bf16_flags, picture=str(picture), saved_pictures=copies, frame_shape=list(frame.shape))
