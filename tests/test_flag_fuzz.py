"""Every flag of every chapter script, fed the bad values that fit its kind (tests/flag_fuzz.py runs them).

Each bad input must end the real script within seconds with one line that names the flag
(and the fix), exit non-zero, print no traceback and leave no run folder (nor any file in the
repository) behind. The count is printed: "N bad inputs over M scripts, 0 tracebacks".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
from flag_fuzz import chapter_scripts, drop_file_permission_override  # noqa: E402

#: ~2,000 forked children: about a minute of CPU time; the wall time grows on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

#: The scripts that take no flag at all (the fuzzer finds no parser in them).
NO_FLAGS: set[str] = set()


def git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("fuzz") / "fuzz.json"
    before = git_status()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
    subprocess.run([sys.executable, str(REPO_ROOT / "tests" / "flag_fuzz.py"), str(out)], cwd=REPO_ROOT, env=env,
                   check=True, timeout=1800)
    results = json.loads(out.read_text())
    results["git_status_changed"] = git_status() != before
    return results


def test_every_bad_flag_value_is_one_line_and_leaves_nothing(fuzzed: dict, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, failures = fuzzed["inputs"], fuzzed["failures"]
    with capsys.disabled():
        print(f"\n{len(inputs)} bad inputs over {len(fuzzed['scripts'])} scripts, {fuzzed['tracebacks']} tracebacks "
              f"({fuzzed['seconds']} s; {sum(r['cpu_seconds'] for r in inputs):.0f} CPU s in the children)")
    shown = "\n".join(f"{f['script']} {f['flag']} ({f['case']}): {f['why']}\n    {f.get('line', '')[-300:]!r}"
                      for f in failures[:40])
    assert not failures, f"{len(failures)} bad inputs broke the contract:\n{shown}"
    assert fuzzed["tracebacks"] == 0
    assert not fuzzed["git_status_changed"], "a bad input wrote into the repository"


def test_the_fuzzer_covers_every_script_and_every_kind(fuzzed: dict) -> None:
    every = {str(p.relative_to(REPO_ROOT)) for p in chapter_scripts()}
    assert set(fuzzed["scripts"]) | NO_FLAGS == every
    assert set(fuzzed["help"]) == set(fuzzed["scripts"])  # each one's --help runs
    cases = {r["case"] for r in fuzzed["inputs"]}
    assert {"wrong type", "negative", "zero", "absurdly large", "unknown choice", "missing",
            "a folder where a file goes", "unreadable", "malformed"} <= cases
    assert max(r["seconds"] for r in fuzzed["inputs"]) < 30


def test_a_child_fed_an_unreadable_or_unwritable_path_is_refused_by_the_file_modes_even_as_root(
        tmp_path: Path) -> None:
    locked_file, locked_dir = tmp_path / "locked.zip", tmp_path / "locked_dir"
    locked_file.write_text("secret")
    locked_file.chmod(0)
    locked_dir.mkdir()
    locked_dir.chmod(0o500)
    pid = os.fork()
    if pid == 0:  # the fuzzer's children drop the override the same way, after the fork
        refused = 0
        try:
            drop_file_permission_override()
            for attempt in (locked_file.read_text, lambda: (locked_dir / "new").write_text("x")):
                try:
                    attempt()
                except PermissionError:
                    refused += 1
        finally:
            os._exit(refused)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2  # both refused
    assert locked_file.stat().st_mode & 0o777 == 0 and not (locked_dir / "new").exists()
