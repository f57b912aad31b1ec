"""The mutation report: only a failing test kills a mutant, and a mutant's diff retried in a scratch copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from mutation import (
    KILLED_STATUSES,
    REPO_ROOT,
    ScratchCopy,
    forget_stale_stats,
    forget_verdicts,
    hunk_texts,
    indented,
    mutant_diff,
    not_killed,
)


def test_no_tests_and_suspicious_mutants_are_not_counted_as_killed() -> None:
    # the lines of `mutmut results --all true` (mutmut 3), one status of each kind
    listed = ["    rlbreakout.env_ids.x_f__mutmut_1: killed", "    rlbreakout.env_ids.x_f__mutmut_2: survived",
              "    rlbreakout.env_ids.x_g__mutmut_1: no tests", "    rlbreakout.env_ids.x_g__mutmut_2: timeout",
              "    rlbreakout.env_ids.x_g__mutmut_3: suspicious", "    rlbreakout.env_ids.x_h__mutmut_1: segfault",
              "", "some other line"]
    total, alive = not_killed(listed)
    assert total == 6
    assert alive == {"rlbreakout.env_ids.x_f__mutmut_2": "survived", "rlbreakout.env_ids.x_g__mutmut_1": "no tests",
                     "rlbreakout.env_ids.x_g__mutmut_3": "suspicious"}
    assert set(KILLED_STATUSES) == {"killed", "timeout", "segfault"}


# mutmut show's diff of a method: numbered from the def, shown dedented
AS_DICT_MUTANT = """# rlbreakout.hyperparams.xǁPPOConfigǁas_dict__mutmut_1: no tests
--- rlbreakout/hyperparams.py
+++ rlbreakout/hyperparams.py
@@ -1,2 +1,2 @@
 def as_dict(self) -> dict[str, Any]:
-    return dataclasses.asdict(self)
+    return dataclasses.asdict(None)
"""

# a field helper that runs only at import, while PPOConfig's class body is built
HP_DEFAULT_MUTANT = """--- rlbreakout/hyperparams.py
+++ rlbreakout/hyperparams.py
@@ -1,3 +1,3 @@
 def _hp(default: Any, help: str, type: Any = None, **extra: Any) -> Any:  # noqa: A002 - argparse's name
     \"\"\"A field with its flag's help and ``type`` (the range its flag accepts).\"\"\"
-    return field(default=default, metadata={"help": help, "type": type, **extra})
+    return field(default=None, metadata={"help": help, "type": type, **extra})
"""


def test_a_diff_is_read_as_its_file_and_its_text_before_and_after() -> None:
    path, before, after = hunk_texts(mutant_diff(AS_DICT_MUTANT))
    assert path == "rlbreakout/hyperparams.py"
    assert before == "def as_dict(self) -> dict[str, Any]:\n    return dataclasses.asdict(self)\n"
    assert after == "def as_dict(self) -> dict[str, Any]:\n    return dataclasses.asdict(None)\n"
    assert indented(before, "    ") in (REPO_ROOT / path).read_text()


@pytest.mark.slow
def test_an_import_time_mutant_is_killed_in_a_scratch_copy_which_is_then_restored(tmp_path: Path) -> None:
    scratch = ScratchCopy(tmp_path / "scratch", ["tests/test_hyperparams.py"])
    source = scratch.folder / "rlbreakout" / "hyperparams.py"
    original = source.read_text()
    assert not scratch.tests_fail(), "the unmutated copy passes"
    assert scratch.kills(HP_DEFAULT_MUTANT)
    assert source.read_text() == original
    unchanged = HP_DEFAULT_MUTANT.replace("default=None", "default=default")  # a diff that changes nothing
    assert not scratch.kills(unchanged)
    with pytest.raises(RuntimeError, match="does not match exactly one place"):
        scratch.kills(HP_DEFAULT_MUTANT.replace("field(default", "field(initial"))


def test_forgetting_verdicts_reopens_only_the_named_decided_mutants(tmp_path: Path) -> None:
    """mutmut's cache (mutants/**/*.meta) would keep a survivor's verdict after a test was added."""
    import json

    meta = tmp_path / "mutants" / "rlbreakout" / "schedules.py.meta"
    meta.parent.mkdir(parents=True)
    verdicts = {"m.x_f__mutmut_1": 1, "m.x_f__mutmut_2": 0, "m.x_f__mutmut_3": None, "m.x_g__mutmut_1": 0}
    meta.write_text(json.dumps({"exit_code_by_key": verdicts, "hash_by_function_name": {"x_f": "ab"}}))
    assert forget_verdicts(tmp_path, {"m.x_f__mutmut_2", "m.x_f__mutmut_3"}) == 1
    data = json.loads(meta.read_text())
    assert data["exit_code_by_key"] == {**verdicts, "m.x_f__mutmut_2": None}
    assert data["hash_by_function_name"] == {"x_f": "ab"}


def test_mutmuts_test_record_is_deleted_once_a_test_file_is_newer(tmp_path: Path) -> None:
    """mutmut would never run an edited test on the mutants of a function the test now calls."""
    import os

    stats = tmp_path / "mutants" / "mutmut-stats.json"
    stats.parent.mkdir()
    stats.write_text("{}")
    test = REPO_ROOT / "tests" / "test_schedules.py"
    helpers_newest = max((REPO_ROOT / "tests" / name).stat().st_mtime for name in ("conftest.py", "fakes.py", "helpers.py"))
    os.utime(stats, (max(test.stat().st_mtime, helpers_newest) + 10,) * 2)
    assert not forget_stale_stats(tmp_path, ["tests/test_schedules.py"]) and stats.is_file()
    os.utime(stats, (test.stat().st_mtime - 10, test.stat().st_mtime - 10))
    assert forget_stale_stats(tmp_path, ["tests/test_schedules.py"]) and not stats.exists()
    assert not forget_stale_stats(tmp_path, ["tests/test_schedules.py"]), "nothing left to delete"
