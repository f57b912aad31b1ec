"""Where a result came from: the git commit of the code that ran, the CPU and the GPU it ran on.

Every config.json and summary.json carries these fields, so a figure in a README can
name its commit and CPU, and a run folder found months later still says what made it.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

#: Where Linux describes the processor.
CPUINFO_PATH = "/proc/cpuinfo"
#: How long git may take to answer before the commit is recorded as unknown.
GIT_TIMEOUT_SECONDS = 5
UNKNOWN = "unknown"
#: The package's folder; its git repository is the tutorial's.
PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository: ``runs/``, ``results/``, ``models/`` and the chapters resolve against it, never the working directory.
REPO_ROOT = PACKAGE_DIR.parent


def cpu_model(path: str = CPUINFO_PATH) -> str:
    """The CPU's marketing name (``model name`` in /proc/cpuinfo), or what ``platform`` knows."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or UNKNOWN


def gpu_model(device: str | None) -> str | None:
    """The GPU's name when ``device`` (a torch device string, ``auto`` included) runs the network
    on a CUDA GPU here, else None: a figure made on a GPU must say so beside the CPU."""
    if not device or not (str(device) == "auto" or str(device).startswith("cuda")):
        return None
    if not torch.cuda.is_available():
        return None
    index = torch.device(device).index if str(device).startswith("cuda") else None
    return str(torch.cuda.get_device_name(index or 0))


def machine_label(record: dict[str, object]) -> str:
    """``AMD EPYC`` or ``AMD EPYC + NVIDIA H200``: the CPU of a summary, and its GPU if one ran it."""
    cpu = str(record.get("cpu_model") or UNKNOWN)
    gpu = record.get("gpu_model")
    return f"{cpu} + {gpu}" if gpu else cpu


def _git(*args: str, cwd: Path = PACKAGE_DIR) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                timeout=GIT_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit(cwd: Path = PACKAGE_DIR) -> str:
    """The commit the code was checked out at (``unknown`` outside a git checkout)."""
    return _git("rev-parse", "HEAD", cwd=cwd) or UNKNOWN


def git_dirty(cwd: Path = PACKAGE_DIR) -> bool | None:
    """True when tracked files differ from that commit (None when git cannot tell)."""
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    return None if status is None else bool(status)


def provenance(cwd: Path = PACKAGE_DIR) -> dict[str, object]:
    """``git_commit``, ``git_dirty`` and ``cpu_model``, for config.json and summary.json."""
    return {"git_commit": git_commit(cwd), "git_dirty": git_dirty(cwd), "cpu_model": cpu_model()}
