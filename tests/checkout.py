"""Helpers for tests about the checkout: did a script touch the committed pictures/ or video/?"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Folders of committed outputs that a script may write only when a flag asks.
COMMITTED_OUTPUTS = ("pictures", "video")


def committed_outputs_state(root: Path = REPO_ROOT) -> tuple[str, dict[str, tuple[int, int]]]:
    """``git status --porcelain pictures video`` and (mtime, size) of every file there: any write changes it."""
    status = subprocess.run(["git", "status", "--porcelain", "--", *COMMITTED_OUTPUTS], cwd=root,
                            capture_output=True, text=True, check=True).stdout
    files = {str(path.relative_to(root)): (path.stat().st_mtime_ns, path.stat().st_size)
             for folder in COMMITTED_OUTPUTS if (root / folder).is_dir()
             for path in sorted((root / folder).rglob("*")) if path.is_file()}
    return status, files


def run_copy(script: str, tmp_path: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run a copy of ``script`` placed at the same relative path under ``tmp_path`` (its pictures/ is tmp_path's)."""
    copy = tmp_path / script
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / script, copy)
    result = subprocess.run([sys.executable, str(copy), *args], cwd=tmp_path, capture_output=True, text=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{script} exited {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result
