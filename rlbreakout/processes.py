"""Starting worker processes from a chapter script whose story runs at module level.

Under the spawn and forkserver start methods (Windows and macOS; SB3's SubprocVecEnv
default on Linux too) every new process first re-runs the main script as ``__mp_main__``.
A chapter script keeps its story in module-level cells, so each worker would parse the
flags, make a run folder and train a model of its own. Env workers need nothing from
the script (their env thunks are rlbreakout functions, pickled by reference), so
:func:`workers_without_script` hides the script while they start.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def workers_without_script() -> Iterator[None]:
    """Start worker processes inside this block without re-running the calling script in them.

    While the block runs, ``sys.modules["__main__"]`` is an empty module, so multiprocessing
    finds no script path to re-run in the children (as from an interactive console).
    """
    script = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = script
