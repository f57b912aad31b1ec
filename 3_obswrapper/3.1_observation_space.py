"""3.1 What the agent sees: the observation's shape after every wrapper, and one frame as numbers.

What you learn: each wrapper of the zoo stack (chapter 2) and of the aimbot stack
(this chapter) changes the observation; printing the shape after each one shows where
the 210x160 RGB screen becomes 84x84, where the 4 frames are stacked, and where the
channels move to the front for PyTorch. Then one raw frame and one aimbot observation
are written into the run folder as jpeg (to look at) and csv (to read the numbers);
`--save-pictures` also replaces the committed copies in pictures/.

Run it:    python 3_obswrapper/3.1_observation_space.py
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, frame and observation stay in the Variable Explorer.
Read:      3_obswrapper/README.md
"""

# %% Imports
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from rlbreakout.cli import common_parser, parse_script_args
from rlbreakout.env_ids import check_env_id
from rlbreakout.envs import make_env
from rlbreakout.flag_types import output_folder
from rlbreakout.render import copy_picture
from rlbreakout.runs import Run
from rlbreakout.scripted_player import record_fall

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env: the game and its settings
SEED = 0  # --seed
TIMESTEPS = 60  # --timesteps: steps the scripted player plays before it waits for a falling ball's marker
#: The repository's committed pictures (written only with --save-pictures).
PICTURES = Path(__file__).resolve().parents[1] / "pictures"
PICTURE_FILES = ("3.1_raw_frame.jpg", "3.1_raw_frame.csv", "3.1_observation.jpg", "3.1_observation.csv")
JPEG_QUALITY = 95


def parse_args():
    parser = common_parser(__doc__.splitlines()[0], env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=1)
    parser.add_argument("--pictures", type=output_folder, default=None, metavar="DIR", help="also copy the jpeg and csv files into DIR")
    parser.add_argument("--save-pictures", dest="pictures", action="store_const", const=str(PICTURES),
                        help=f"also replace the committed pictures/: {', '.join(PICTURE_FILES)}")
    return parse_script_args(parser)


args = parse_args()
check_env_id(args.env)  # a wrong id fails here, before a run folder is made
run = Run.from_args(__file__, args)


def shapes_along(env):
    """(wrapper, observation shape) from the raw game outward; a VecEnv's shape has n_envs in front."""
    chain = []
    while env is not None:
        batch = (env.num_envs,) if hasattr(env, "num_envs") else ()
        chain.append((type(env).__name__, (*batch, *env.observation_space.shape)))
        # VecEnv wrappers hold .venv, DummyVecEnv its .envs, gymnasium wrappers their .env
        env = getattr(env, "venv", None) or (env.envs[0] if hasattr(env, "envs") else getattr(env, "env", None))
    return chain[::-1]


# %% The zoo stack of chapter 2: 84x84 grey frames, 4 stacked, channels first
env = make_env(args.env, 1, seed=args.seed, wrapper="atari", frame_stack=4)
zoo = shapes_along(env)
env.close()
print("Zoo stack (chapter 2), wrapper='atari':")
for name, shape in zoo:
    print(f"  {name:<28} {shape}")

# %% The aimbot stack of this chapter: the same, with BreakoutObservationWrapper in WarpFrame's place
env = make_env(args.env, 1, seed=args.seed, wrapper="aimbot", frame_stack=4)
aimbot = shapes_along(env)
env.close()
print("Aimbot stack (chapter 3), wrapper='aimbot':")
for name, shape in aimbot:
    print(f"  {name:<28} {shape}")

# %% One frame with the ball falling: the scripted player (3.2) plays --timesteps steps, then until the marker shows
fall = record_fall(args.env, seed=args.seed, warmup_steps=args.timesteps)
frame, observation, impact = fall.frames[0], fall.observations[0], fall.impacts[0]
print(f"after {fall.steps} steps: raw frame {frame.shape} {frame.dtype}, observation {observation.shape} "
      f"{observation.dtype}, values {sorted(np.unique(observation).tolist())}, impact column {impact}")

# %% Export: jpeg to look at, csv to read the numbers (one line per pixel for RGB, a grid for one channel)
raw_jpeg, raw_csv, observation_jpeg, observation_csv = (run.dir / name for name in PICTURE_FILES)
imageio.imwrite(raw_jpeg, frame, quality=JPEG_QUALITY)
rows, cols = np.indices(frame.shape[:2])
np.savetxt(raw_csv, np.column_stack([rows.ravel(), cols.ravel(), frame.reshape(-1, 3)]), fmt="%d", delimiter=",",
           header="row,col,r,g,b", comments="")
imageio.imwrite(observation_jpeg, observation.squeeze(), quality=JPEG_QUALITY)
np.savetxt(observation_csv, observation.squeeze(), fmt="%d", delimiter=",")
paths = [raw_jpeg, raw_csv, observation_jpeg, observation_csv]
print("wrote", *paths, sep="\n  ")
copies = [str(copy_picture(path, args.pictures)) for path in paths] if args.pictures else []

# %% Summary: summary.json in the run folder, its path printed last
run.finish(timesteps=fall.steps, zoo_stack=[[name, list(shape)] for name, shape in zoo],
           aimbot_stack=[[name, list(shape)] for name, shape in aimbot], raw_frame_shape=list(frame.shape),
           observation_shape=list(observation.shape), impact_column=impact, saved_pictures=copies,
           raw_jpeg=str(raw_jpeg), raw_csv=str(raw_csv), observation_jpeg=str(observation_jpeg),
           observation_csv=str(observation_csv))
