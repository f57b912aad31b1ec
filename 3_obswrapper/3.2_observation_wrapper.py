"""3.2 The aimbot observation wrapper: what each option does, as a grid of pictures.

What you learn: `BreakoutObservationWrapper` has three knobs. `colour` (rgb, grey,
mono) chooses how much of the screen's colour survives; `crop` (keep, trim, blacken)
removes the score and the walls, which never help to play; `prediction` (none, marker)
draws where the falling ball will cross the paddle's row. The tutorial's view is
mono + trim + marker at 84x84. A second picture follows the marker over a few steps:
it stays put while the ball falls, so the agent only has to put the paddle on it.

Run it:  python 3_obswrapper/3.2_observation_wrapper.py
Read:    3_obswrapper/README.md
"""

# %% Imports
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rlbreakout.aimbot import COLOUR_CHOICES, CROP_CHOICES, DEFAULT_RESIZE, AimbotView  # noqa: E402
from rlbreakout.cli import common_parser, run_main  # noqa: E402
from rlbreakout.envs import check_env_id  # noqa: E402
from rlbreakout.runs import create_run_dir, save_run_config, script_name, write_summary  # noqa: E402
from rlbreakout.scripted_player import make_player_env, player_for  # noqa: E402

PICTURES = Path("pictures")
#: Steps after --timesteps allowed for the ball to start falling (so the marker shows).
MAX_EXTRA_STEPS = 2_000
#: Observations in the marker-sequence strip.
SEQUENCE_LENGTH = 6
DPI = 100


# %% Play until the ball falls, keeping the frames of the fall


def falling_ball_frames(env_id: str, seed: int, timesteps: int) -> tuple[list[np.ndarray], int]:
    """Raw frames of one fall (the first with a marker, and the steps after it), and the steps played."""
    env = make_player_env(env_id, seed=seed)
    player = player_for(env_id, seed=seed, aim_jitter=0.0)
    frame, _ = env.reset(seed=seed)
    fall: list[np.ndarray] = []
    steps = 0
    while len(fall) < SEQUENCE_LENGTH and steps < timesteps + MAX_EXTRA_STEPS:
        action = player.act(frame)
        if steps >= timesteps and (fall or player.view.last_impact is not None):
            if player.view.last_ball is None:  # the ball reached the paddle: that fall is complete
                break
            fall.append(frame)
        frame, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            frame, _ = env.reset()
            player.reset()
            fall = []
    env.close()
    if not fall:
        fall = [frame]
    return fall, steps


def observations_of(frames: list[np.ndarray], **options: object) -> list[np.ndarray]:
    """The wrapper's observations of consecutive frames (tracking the ball as the wrapper does)."""
    view = AimbotView(**options)
    return [view(f) for f in frames]


def show(ax: plt.Axes, image: np.ndarray, title: str) -> None:
    ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=255,
              interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def main() -> None:
    parser = common_parser(__doc__.splitlines()[0], timesteps=60, n_envs=1)
    parser.add_argument("--pictures", default=str(PICTURES), help="folder for the pictures")
    args = parser.parse_args()
    check_env_id(args.env)
    run_dir = create_run_dir(args.logdir, script_name(__file__), args.env, args.seed)
    save_run_config(run_dir, vars(args))
    started = time.perf_counter()

    # %% A real fall: frames from the moment the marker appears
    fall, steps = falling_ball_frames(args.env, args.seed, args.timesteps)
    print(f"played {steps} steps; the fall has {len(fall)} frames")

    # %% Grid: colour (rows) x crop (columns) at native size, plus the tutorial's 84x84 view
    columns = [*[(crop, None) for crop in CROP_CHOICES], ("trim", DEFAULT_RESIZE)]
    fig, axes = plt.subplots(len(COLOUR_CHOICES) + 1, len(columns), figsize=(2.4 * len(columns), 2.6 * 4), dpi=DPI)
    show(axes[0, 0], fall[-1], f"raw screen {fall[-1].shape}")
    for ax in axes[0, 1:]:
        ax.axis("off")
    shapes = {}
    for row, colour in enumerate(COLOUR_CHOICES, start=1):
        for col, (crop, resize) in enumerate(columns):
            obs = observations_of(fall, colour=colour, crop=crop, prediction="marker", resize=resize)[-1]
            name = f"{colour}/{crop}/{'x'.join(map(str, resize)) if resize else 'native'}"
            shapes[name] = list(obs.shape)
            show(axes[row, col], obs, f"{name}\n{obs.shape}")
    fig.suptitle("BreakoutObservationWrapper: colour x crop, with the marker", fontsize=10)
    fig.tight_layout()
    pictures = Path(args.pictures)
    pictures.mkdir(parents=True, exist_ok=True)
    grid_path = pictures / "3.2_observation_wrapper_options.png"
    fig.savefig(grid_path)
    plt.close(fig)
    print(f"wrote {grid_path}")

    # %% The marker over a fall: prediction none (top) and marker (bottom), the tutorial's view
    plain = observations_of(fall, prediction="none")
    marked = observations_of(fall, prediction="marker")
    fig, axes = plt.subplots(2, len(fall), figsize=(1.8 * len(fall), 4.2), dpi=DPI, squeeze=False)
    for i, (a, b) in enumerate(zip(plain, marked)):
        show(axes[0, i], a, f"step {i}: none")
        show(axes[1, i], b, f"step {i}: marker")
    fig.suptitle("mono/trim/84x84: the marker appears once the ball's velocity is known, and stays put", fontsize=9)
    fig.tight_layout()
    sequence_path = pictures / "3.2_marker_sequence.png"
    fig.savefig(sequence_path)
    plt.close(fig)
    print(f"wrote {sequence_path}")

    seconds = time.perf_counter() - started
    write_summary(run_dir, {
        "script": script_name(__file__), "env_id": args.env, "timesteps": steps, "seed": args.seed,
        "run_dir": str(run_dir), "wall_seconds": round(seconds, 2),
        "steps_per_second": round(steps / max(seconds, 1e-9), 1),
        "observation_shapes": shapes, "grid_path": str(grid_path), "sequence_path": str(sequence_path),
        "fall_frames": len(fall),
    })


if __name__ == "__main__":
    run_main(main)
