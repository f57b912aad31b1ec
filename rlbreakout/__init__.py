"""RLbreakout: the typed, tested plumbing under the tutorial's chapter scripts.

The chapter scripts write the lesson (gymnasium, SB3 and Optuna calls) themselves; this
package keeps what they share, one concept per module: env ids and the env factory,
wrappers, callbacks, schedules and hyperparameters, the run folder and summary.json,
resume, speed settings, tuning workers (``rlbreakout.tune``) and rendering. The module
map is in the root README.
"""

__version__ = "0.1.0"
