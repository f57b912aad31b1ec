"""rlbreakout/definitions.py: a script's imports, constants, functions and classes, without its story."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rlbreakout.definitions import load_definitions
from rlbreakout.errors import RLBreakoutError

SCRIPT = '''"""A lesson."""
from __future__ import annotations

import math
from dataclasses import dataclass

SCALE: float = 2.0
NAMES = ("a", "b")
counter = 0


def double(x):
    return SCALE * x


@dataclass
class Point:
    x: float


args = undefined_parse_args()  # the story: must not run
raise SystemExit("the story ran")
'''


def test_only_definitions_run(tmp_path: Path) -> None:
    path = tmp_path / "9.9_lesson.py"
    path.write_text(SCRIPT)
    module = load_definitions(path, "lesson_under_test")
    assert module.__doc__ == "A lesson." and module.__file__ == str(path.resolve())
    assert module.double(3) == 6.0 and module.NAMES == ("a", "b") and module.math.pi > 3
    assert module.Point(1.0).x == 1.0  # a dataclass: its module is in sys.modules
    assert sys.modules["lesson_under_test"] is module
    assert not hasattr(module, "counter") and not hasattr(module, "args")


def test_a_missing_script_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RLBreakoutError, match="no script"):
        load_definitions(tmp_path / "absent.py")
