"""Provenance: the commit, whether the tree was dirty, and the CPU."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from rlbreakout.provenance import UNKNOWN, cpu_model, git_commit, git_dirty, gpu_model, machine_label, provenance


def make_repo(path: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    (path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    return git("rev-parse", "HEAD")


def test_commit_and_dirty_flag_of_a_real_repository(tmp_path: Path) -> None:
    head = make_repo(tmp_path)
    assert git_commit(tmp_path) == head and git_dirty(tmp_path) is False
    (tmp_path / "a.txt").write_text("two\n")
    assert git_dirty(tmp_path) is True
    (tmp_path / "untracked.txt").write_text("x")  # untracked files do not count
    (tmp_path / "a.txt").write_text("one\n")
    assert git_dirty(tmp_path) is False


def test_outside_a_repository(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == UNKNOWN and git_dirty(tmp_path) is None


def test_cpu_model_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000 @ 3.0GHz\nflags\t: avx2\n")
    assert cpu_model(str(cpuinfo)) == "Test CPU 9000 @ 3.0GHz"
    assert cpu_model(str(tmp_path / "missing")) != ""
    assert set(provenance()) == {"git_commit", "git_dirty", "cpu_model"}


def test_gpu_model_only_when_a_cuda_device_runs_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # forced: any machine takes both branches
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: asked.append(index) or f"GPU {index}")
    assert gpu_model("cpu") is None and gpu_model(None) is None
    assert gpu_model("auto") == "GPU 0" and gpu_model("cuda") == "GPU 0" and gpu_model("cuda:1") == "GPU 1"
    assert asked == [0, 0, 1]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_model("auto") is None and gpu_model("cuda") is None


def test_machine_label_names_the_gpu_beside_the_cpu() -> None:
    assert machine_label({"cpu_model": "AMD EPYC"}) == "AMD EPYC"
    assert machine_label({"cpu_model": "AMD EPYC", "gpu_model": None}) == "AMD EPYC"
    assert machine_label({"cpu_model": "Intel Xeon", "gpu_model": "NVIDIA H200"}) == "Intel Xeon + NVIDIA H200"
    assert machine_label({}) == UNKNOWN
