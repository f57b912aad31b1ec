"""RLbreakout: the shared, tested helpers behind the tutorial's chapter scripts.

Each module holds one concept (env factory, observation wrapper, callbacks,
schedules, tuning, rendering); the numbered chapter scripts import them so
that every piece of logic lives in exactly one place.
"""

__version__ = "0.1.0"
