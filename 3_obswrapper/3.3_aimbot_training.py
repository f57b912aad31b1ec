"""3.3 Aimbot training: the zoo's PPO, trained on what the aimbot wrapper shows.

What you learn: changing what the agent *sees* can matter more than any
hyperparameter. The aimbot wrapper (rlbreakout/aimbot.py) crops the screen to the
playfield, binarises it, and draws a marker on the row below the paddle where the ball
will cross it, so "move under the marker" is a pattern the CNN can pick up quickly.
The observation options and the frame stack are flags, so variants can be compared
in TensorBoard; the replay gif shows the agent's view beside the game.

Run it:  python 3_obswrapper/3.3_aimbot_training.py --timesteps 1000000 --fast
Compare: ... --prediction none   /   ... --frame-stack 1   /   ... --colour grey
Read:    3_obswrapper/README.md
"""

# %% Imports
from rlbreakout.aimbot import (
    COLOUR_CHOICES,
    CROP_CHOICES,
    DEFAULT_COLOUR,
    DEFAULT_CROP,
    DEFAULT_PREDICTION,
    PREDICTION_CHOICES,
)
from rlbreakout.cli import run_main
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.render import VIEW_CHOICES
from rlbreakout.training import parse_ppo_args, ppo_parser, train_ppo

# %% Config: the zoo's PPO (chapter 2.3) plus the wrapper's options
EVAL_EVERY_STEPS = 100_000


def main() -> None:
    parser = ppo_parser(__doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=1_000_000, eval_freq=EVAL_EVERY_STEPS)
    view = parser.add_argument_group("aimbot observation")
    view.add_argument("--colour", choices=COLOUR_CHOICES, default=DEFAULT_COLOUR, help="rgb, grey or mono (binarised)")
    view.add_argument("--crop", choices=CROP_CHOICES, default=DEFAULT_CROP, help="keep the screen, trim to the playfield, or blacken the rest")
    view.add_argument("--prediction", choices=PREDICTION_CHOICES, default=DEFAULT_PREDICTION, help="draw the impact marker or not")
    view.add_argument("--gif-view", choices=VIEW_CHOICES, default="agent",
                      help="replay gif: the agent's view beside the screen, or the screen alone (lighter 3x3 grids)")
    args = parse_ppo_args(parser)
    wrapper_kwargs = {"colour": args.colour, "crop": args.crop, "prediction": args.prediction}

    # %% Train on aimbot observations; the gif shows the agent's view beside the screen
    train_ppo(args, script=__file__, wrapper="aimbot", wrapper_kwargs=wrapper_kwargs, gif_view=args.gif_view)


if __name__ == "__main__":
    run_main(main)
