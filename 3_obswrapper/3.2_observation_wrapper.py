"""3.2 Observation wrappers: write your own, then the aimbot's options as a grid of pictures.

What you learn: a `gymnasium.ObservationWrapper` changes what the agent sees with one
method, `observation(frame)`, plus the `observation_space` it promises. You write a
small one first (the playfield in grey), then meet the package's full one,
`BreakoutObservationWrapper`, and its three knobs: `colour` (rgb, grey, mono) chooses
how much of the screen's colour survives; `crop` (keep, trim, blacken) removes the
score and the walls, which never help to play; `prediction` (none, marker) draws where
the falling ball will cross the paddle's row. The tutorial's view is mono + trim +
marker at 84x84. A second picture follows the marker over a few steps: it stays put
while the ball falls, so the agent only has to put the paddle on it. The pictures go
into the run folder; `--save-pictures` also replaces the committed ones in pictures/.

Run it:    python 3_obswrapper/3.2_observation_wrapper.py
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, observation and the figures stay in the
           Variable Explorer.
Read:      3_obswrapper/README.md
"""

# %% Imports
from pathlib import Path

import gymnasium as gym
import numpy as np
from matplotlib.figure import Figure  # a figure without pyplot: no window, in a terminal or a test

from rlbreakout.aimbot import COLOUR_CHOICES, CROP_CHOICES, DEFAULT_RESIZE, AimbotView, BreakoutObservationWrapper
from rlbreakout.aimbot.geometry import TRIM_COLS, TRIM_ROWS
from rlbreakout.cli import common_parser, parse_script_args
from rlbreakout.env_ids import check_env_id, register_ale
from rlbreakout.flag_types import output_folder
from rlbreakout.render import copy_picture
from rlbreakout.runs import Run
from rlbreakout.scripted_player import record_fall

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env: the game and its settings
SEED = 0  # --seed
TIMESTEPS = 60  # --timesteps: random steps before the pictures are drawn
#: The repository's committed pictures (written only with --save-pictures).
PICTURES = Path(__file__).resolve().parents[1] / "pictures"
GRID_FILE, SEQUENCE_FILE = "3.2_observation_wrapper_options.png", "3.2_marker_sequence.png"
OWN_WRAPPER_FILE = "3.2_own_wrapper.png"
DPI = 100


def parse_args():
    parser = common_parser(__doc__.splitlines()[0], env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=1)
    parser.add_argument("--pictures", type=output_folder, default=None, metavar="DIR", help="also copy the two pictures into DIR")
    parser.add_argument("--save-pictures", dest="pictures", action="store_const", const=str(PICTURES),
                        help=f"also replace the committed pictures/{GRID_FILE} and pictures/{SEQUENCE_FILE}")
    return parse_script_args(parser)


args = parse_args()
register_ale()
check_env_id(args.env)  # a wrong id fails here, before a run folder is made
run = Run.from_args(__file__, args)


def show(ax, image, title):
    """One picture in a figure panel: grey for one channel, no ticks."""
    ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


# %% Your own ObservationWrapper: the playfield only, in grey
class PlayfieldGrey(gym.ObservationWrapper):
    """Cut the score and the walls off the screen (the aimbot's "trim" rows and columns) and average R, G, B."""

    def __init__(self, env):
        super().__init__(env)
        (top, bottom), (left, right) = TRIM_ROWS, TRIM_COLS  # inclusive ranges, read off real frames
        self.rows, self.cols = slice(top, bottom + 1), slice(left, right + 1)
        # promise the shape and dtype that observation() returns: SB3 builds its network from this
        self.observation_space = gym.spaces.Box(0, 255, (bottom - top + 1, right - left + 1, 1), np.uint8)

    def observation(self, frame):
        playfield = frame[self.rows, self.cols]
        return playfield.mean(axis=2, keepdims=True).astype(np.uint8)


env = PlayfieldGrey(gym.make(args.env, render_mode="rgb_array"))
observation, info = env.reset(seed=args.seed)
screen = env.render()  # the raw frame, as a player sees it
print("raw screen:", screen.shape, " PlayfieldGrey:", env.observation_space, " observation:", observation.shape)
assert env.observation_space.contains(observation)

# %% The package's wrapper: BreakoutObservationWrapper, the tutorial's view (mono, trim, marker, 84x84)
env = BreakoutObservationWrapper(gym.make(args.env, render_mode="rgb_array"))
aimbot_observation, info = env.reset(seed=args.seed)
print("BreakoutObservationWrapper:", env.observation_space, " observation:", aimbot_observation.shape)
fig = Figure(figsize=(7.2, 3.2), dpi=DPI)
axes = fig.subplots(1, 3)
show(axes[0], screen, f"raw screen {screen.shape}")
show(axes[1], observation, f"PlayfieldGrey {observation.shape}")
show(axes[2], aimbot_observation, f"BreakoutObservationWrapper {aimbot_observation.shape}")
fig.tight_layout()
own_wrapper_path = run.dir / OWN_WRAPPER_FILE
fig.savefig(own_wrapper_path)
env.close()

# %% A real fall: the scripted player (3.2 nomodel) plays --timesteps steps, then keeps the frames of one fall
fall = record_fall(args.env, seed=args.seed, warmup_steps=args.timesteps)
print(f"played {fall.steps} steps; the fall has {len(fall.frames)} frames")


# %% Grid: colour (rows) x crop (columns) at native size, plus the tutorial's 84x84 view
columns = [*[(crop, None) for crop in CROP_CHOICES], ("trim", DEFAULT_RESIZE)]
fig = Figure(figsize=(2.4 * len(columns), 2.6 * (len(COLOUR_CHOICES) + 1)), dpi=DPI)
axes = fig.subplots(len(COLOUR_CHOICES) + 1, len(columns))
show(axes[0, 0], fall.frames[-1], f"raw screen {fall.frames[-1].shape}")
for ax in axes[0, 1:]:
    ax.axis("off")
shapes = {}
for row, colour in enumerate(COLOUR_CHOICES, start=1):
    for col, (crop, resize) in enumerate(columns):
        view = AimbotView(colour=colour, crop=crop, prediction="marker", resize=resize)
        last = [view(frame) for frame in fall.frames][-1]  # the view tracks the ball from frame to frame
        name = f"{colour}/{crop}/{'x'.join(map(str, resize)) if resize else 'native'}"
        shapes[name] = list(last.shape)
        show(axes[row, col], last, f"{name}\n{last.shape}")
fig.suptitle("BreakoutObservationWrapper: colour x crop, with the marker", fontsize=10)
fig.tight_layout()
grid_path = run.dir / GRID_FILE
fig.savefig(grid_path)

# %% The marker over a fall: prediction none (top) and marker (bottom), the tutorial's view
plain_view, marker_view = AimbotView(prediction="none"), AimbotView(prediction="marker")
plain, marked = [plain_view(frame) for frame in fall.frames], [marker_view(frame) for frame in fall.frames]
fig = Figure(figsize=(1.8 * len(fall.frames), 4.2), dpi=DPI)
axes = fig.subplots(2, len(fall.frames), squeeze=False)
for i, (without, with_marker) in enumerate(zip(plain, marked)):
    show(axes[0, i], without, f"step {i}: none")
    show(axes[1, i], with_marker, f"step {i}: marker")
fig.suptitle("mono/trim/84x84: the marker appears once the ball's velocity is known, and stays put", fontsize=9)
fig.tight_layout()
sequence_path = run.dir / SEQUENCE_FILE
fig.savefig(sequence_path)
print("wrote", own_wrapper_path, grid_path, sequence_path, sep="\n  ")
copies = [str(copy_picture(path, args.pictures)) for path in (grid_path, sequence_path)] if args.pictures else []

# %% Summary: summary.json in the run folder, its path printed last
run.finish(timesteps=fall.steps, observation_shapes=shapes, own_wrapper_shape=list(observation.shape),
           own_wrapper_path=str(own_wrapper_path), grid_path=str(grid_path), sequence_path=str(sequence_path),
           fall_frames=len(fall.frames), saved_pictures=copies)
