"""The one exception type a learner should see as a single line, not a traceback.

Anything that is the user's input being wrong (an unknown env id, a batch size
that does not divide the rollout, a missing ROM, an unreachable storage URL)
raises :class:`RLBreakoutError` with a message that names the problem and the
fix. A script's error hook (:func:`rlbreakout.cli.parse_script_args`) turns it into ``error: ...`` and exit 2.
"""


class RLBreakoutError(Exception):
    """A user-facing error whose message names the problem and the fix."""


class ConfigError(RLBreakoutError, ValueError):
    """A wrong argument or hyperparameter, caught before any work starts."""
