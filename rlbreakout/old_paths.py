"""Old module paths, kept so that models and checkpoints saved before the package was regrouped still load.

SB3 saves a model's policy class and its ``policy_kwargs`` by import path (pickled): a
``model.zip``, a checkpoint in ``runs/*/checkpoints/`` or a ``policy.pt`` that ``--fast``
trained before the speed, results and retro wings existed names
``rlbreakout.fast.MixedPrecisionCnnPolicy`` and ``rlbreakout.fast.BF16NatureCNN``. Those
modules now live in ``rlbreakout/speed/``, ``rlbreakout/results/`` and ``rlbreakout/retro/``.

:class:`OldPathFinder` answers an old name with the module that holds its contents now, and
only when something imports the old name (unpickling does), so ``--load`` and ``--resume``
take an old file as they take a new one. No file sits at an old path, and new code imports
the new paths; the aliases are kept for old files, not for new imports.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

#: Each module path before the regrouping -> the module that holds its contents now.
OLD_PATHS: dict[str, str] = {
    # the classes a --fast model pickles (fast_settings itself is in rlbreakout.speed.fast)
    "rlbreakout.fast": "rlbreakout.speed.policies",
    "rlbreakout.hardware": "rlbreakout.speed.hardware",
    "rlbreakout.threads": "rlbreakout.speed.threads",
    "rlbreakout.allocator": "rlbreakout.speed.allocator",
    "rlbreakout.scratch_speed": "rlbreakout.speed.scratch_speed",
    "rlbreakout.benchmark": "rlbreakout.speed.benchmark",
    "rlbreakout.step_breakdown": "rlbreakout.speed.step_breakdown",
    "rlbreakout.flops": "rlbreakout.speed.flops",
    "rlbreakout.parity": "rlbreakout.speed.parity",
    "rlbreakout.ledger": "rlbreakout.results.ledger",
    "rlbreakout.campaign": "rlbreakout.results.campaign",
    "rlbreakout.results_tables": "rlbreakout.results.tables",
    "rlbreakout.export": "rlbreakout.results.export",
    "rlbreakout.plots": "rlbreakout.results.plots",
    "rlbreakout.retro_envs": "rlbreakout.retro.envs",
    "rlbreakout.retro_rewards": "rlbreakout.retro.rewards",
    "rlbreakout.retro_cli": "rlbreakout.retro.cli",
    "rlbreakout.retro_render": "rlbreakout.retro.render",
    "rlbreakout.jerk": "rlbreakout.retro.jerk",
}


class OldPathFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A ``sys.meta_path`` finder: an import of an old path gets the module at its new path.

    The new module itself is what ``sys.modules`` keeps under the old name (not a copy), so a
    pickled ``rlbreakout.fast.BF16NatureCNN`` is the very class ``rlbreakout.speed.policies``
    defines, and ``isinstance`` checks hold.
    """

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in OLD_PATHS else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # a placeholder; exec_module puts the real module in its place

    def exec_module(self, module: ModuleType) -> None:
        # The import system returns whatever sys.modules holds under the name after this call.
        sys.modules[module.__name__] = importlib.import_module(OLD_PATHS[module.__name__])


def install_old_paths() -> None:
    """Put :class:`OldPathFinder` on ``sys.meta_path`` once (``import rlbreakout`` does it)."""
    if not any(isinstance(finder, OldPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(OldPathFinder())
