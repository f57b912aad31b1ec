"""0.1 Check the setup: versions, torch device, CPU features, the Breakout ROM, raw env speed.

What you learn: whether this machine is ready for the tutorial, and how fast the
emulator alone runs here (every training is slower than this ceiling).
ROMs now ship inside ale-py (>= 0.9): there is no AutoROM step any more.

Run it:  python 0_setup/0.1_check_setup.py
Read:    0_setup/README.md
"""

# %% Imports
import importlib.metadata
import platform
import time
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import torch

from rlbreakout.cli import common_parser, run_main
from rlbreakout.envs import check_env_id, make_env, register_ale
from rlbreakout.runs import create_run_dir, save_run_config, script_name, write_summary

PACKAGES = ("gymnasium", "ale-py", "stable-baselines3", "torch", "tensorboard", "optuna", "opencv-python-headless", "imageio", "numpy")
#: CPU flags that make bf16 matrix work fast on x86 (chapter 0.2's --precision bf16).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
FRAME_PICTURE = Path("pictures") / "0.1_breakout_frame.png"


def cpu_flags() -> set[str]:
    """The CPU feature flags from /proc/cpuinfo (empty off Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def main() -> None:
    parser = common_parser(__doc__.splitlines()[0], timesteps=2_000, n_envs=8)
    parser.add_argument("--picture", default=str(FRAME_PICTURE), help="where to save one rendered frame")
    args = parser.parse_args()
    register_ale()
    check_env_id(args.env)
    run_dir = create_run_dir(args.logdir, script_name(__file__), args.env, args.seed)
    save_run_config(run_dir, vars(args))

    # %% Versions and hardware
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
        print(f"{name:24s} {versions[name]}")
    print(f"{'python':24s} {platform.python_version()}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    flags = cpu_flags()
    bf16_flags = [f for f in BF16_CPU_FLAGS if f in flags]
    print(f"torch device: {device}; CPU threads: {torch.get_num_threads()}; "
          f"bf16 CPU flags: {', '.join(bf16_flags) or 'none (bf16 runs slowly; use --precision fp32)'}")

    # %% The ROM loads and renders
    env = gym.make(args.env, render_mode="rgb_array")
    env.reset(seed=args.seed)
    frame = env.render()
    env.close()
    picture = Path(args.picture)
    picture.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(picture, frame)
    print(f"{args.env} ROM loaded; one {frame.shape} frame saved to {picture}")

    # %% Raw env speed: n envs under SB3's Atari wrappers, random actions, no learning
    venv = make_env(args.env, args.n_envs, seed=args.seed)
    venv.reset()
    rng = np.random.default_rng(args.seed)
    steps = max(args.timesteps // args.n_envs, 1)
    started = time.perf_counter()
    for _ in range(steps):
        venv.step(rng.integers(0, venv.action_space.n, size=args.n_envs))
    seconds = time.perf_counter() - started
    venv.close()
    env_steps = steps * args.n_envs
    speed = env_steps / seconds
    print(f"raw env speed: {speed:.0f} env steps/s ({args.n_envs} envs, DummyVecEnv, {env_steps} steps)")

    write_summary(run_dir, {
        "script": script_name(__file__), "env_id": args.env, "timesteps": env_steps, "seed": args.seed,
        "run_dir": str(run_dir), "wall_seconds": round(seconds, 2), "steps_per_second": round(speed, 1),
        "versions": versions, "python": platform.python_version(), "device": device,
        "bf16_cpu_flags": bf16_flags, "picture": str(picture), "frame_shape": list(frame.shape),
    })


if __name__ == "__main__":
    run_main(main)
