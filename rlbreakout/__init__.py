"""RLbreakout: the typed, tested plumbing under the tutorial's chapter scripts.

The chapter scripts write the lesson (gymnasium, SB3 and Optuna calls) themselves; this
package keeps what they share, one concept per module: env ids and the env factory,
wrappers, callbacks, schedules and hyperparameters, the run folder and summary.json,
resume and rendering. Families of concepts have a folder each: ``aimbot/`` (chapter 3's
view), ``speed/`` (``--fast`` and the benchmark), ``tune/`` (chapter 4's Optuna plumbing),
``retro/`` (chapter 5's games) and ``results/`` (the ledger, tables and plots), each
``__init__.py`` saying which module to open first. The module map, in layer order, is in
the root README.
"""

from rlbreakout.old_paths import install_old_paths

__version__ = "0.1.0"

install_old_paths()  # models saved before the folders existed name their classes by the old paths
