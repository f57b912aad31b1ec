"""The aimbot view of Breakout: crop, recolour, and mark where the ball will meet the paddle.

Why: an agent that sees raw pixels must learn, from rewards alone, that the ball's
future column matters. Chapter 3 hands it that fact instead. The wrapper finds the
ball, estimates its velocity from consecutive frames, folds its straight-line path
off the side walls, and draws a marker below the paddle at the impact column. Trained
on that, PPO learns "put the paddle over the marker", which is far easier.

One module per step, in the order a frame goes through them:

* :mod:`~rlbreakout.aimbot.geometry`: every row, column and colour of the screen;
* :mod:`~rlbreakout.aimbot.detection`: the ball's centre and the paddle's columns;
* :mod:`~rlbreakout.aimbot.tracking`: the velocity, and the impact column on the paddle's row;
* :mod:`~rlbreakout.aimbot.view`: the observation (colour, marker, crop, resize) and
  :class:`BreakoutObservationWrapper`, the gymnasium wrapper.

The original tutorial's wrapper had four faults that this package fixes and tests:

* ``int()`` truncated a negative overshoot (a ball heading for the left wall) toward
  zero, so the marker landed on the wrong side; here the fold is a floor-modulo;
* the velocity state survived ``reset()``; here :meth:`BallTracker.reset` clears it;
* observations were floats while the space said uint8; here they are uint8;
* the marker was not clipped to the frame; here it is.
"""

from rlbreakout.aimbot.detection import BallPosition, PaddleSpan, detect_ball, detect_paddle
from rlbreakout.aimbot.tracking import BallMotion, BallTracker, predict_impact_column
from rlbreakout.aimbot.view import (
    COLOUR_CHOICES,
    CROP_CHOICES,
    DEFAULT_COLOUR,
    DEFAULT_CROP,
    DEFAULT_PREDICTION,
    DEFAULT_RESIZE,
    PREDICTION_CHOICES,
    AimbotView,
    BreakoutObservationWrapper,
    marker_columns,
)

__all__ = [
    "COLOUR_CHOICES", "CROP_CHOICES", "DEFAULT_COLOUR", "DEFAULT_CROP", "DEFAULT_PREDICTION", "DEFAULT_RESIZE",
    "PREDICTION_CHOICES", "AimbotView", "BallMotion", "BallPosition", "BallTracker", "BreakoutObservationWrapper",
    "PaddleSpan", "detect_ball", "detect_paddle", "marker_columns", "predict_impact_column",
]
