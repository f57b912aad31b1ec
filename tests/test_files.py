"""rlbreakout.files: writes on a real full disk, and a lock held by a real process.

A full disk is a small tmpfs filled to the last byte (mounting needs root, as CI runs; a
non-root user can run the same tests inside ``unshare --user --map-root-user --mount``).
Each writer a run uses (checkpoint, summary.json, ledger entry, gif) is tried on it: the
previous file must be kept byte for byte, and the error must be one line naming the path
and the free space. The last test fills the disk under a real training and resumes it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO

from conftest import REPO_ROOT, TINY_PPO_FLAGS, summary_of
from rlbreakout.callbacks import LATEST_CHECKPOINT, PREVIOUS_CHECKPOINT, StepCheckpointCallback
from rlbreakout.errors import RLBreakoutError
from rlbreakout.files import PARTIAL_SUFFIX, DiskFullError, exclusive_lock, human_bytes, read_json, write_text_atomic
from rlbreakout.render import write_gif
from rlbreakout.results.ledger import write_entry
from rlbreakout.runs import REQUIRED_SUMMARY_KEYS, write_summary

DISK_SIZE = "160m"
#: Left free under the training: room for its TensorBoard events, not for a checkpoint (~20 MB).
TRAINING_HEADROOM = 256 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A fresh tmpfs of :data:`DISK_SIZE`, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a small tmpfs, and mounting one needs root: run as root (CI does), "
                    "or under `unshare --user --map-root-user --mount`")
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); the full-disk tests need one")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)  # a file a traceback still holds open: lazily


def fill(disk: Path, leave: int = 0) -> Path:
    """Write a filler file until the disk refuses a byte more; then give ``leave`` bytes back."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: each write reaches the disk now
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    out.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    if leave:
        os.truncate(filler, filler.stat().st_size - leave)
    return filler


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tiny_model() -> PPO:
    return PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, device="cpu", seed=0)


def save_checkpoint(folder: Path, steps: int) -> Path:
    model = tiny_model()
    model.num_timesteps = steps
    callback = StepCheckpointCallback(0, folder / "checkpoints")
    callback.init_callback(model)
    return callback.save()


def frames(n: int) -> list[np.ndarray]:
    return list(np.random.default_rng(n).integers(0, 255, (4 * n, 40, 40, 3), dtype=np.uint8))


#: Each writer's file with ``n``; a larger ``n`` writes a larger file (written in place, it would not fit).
WRITERS: dict[str, Callable[[Path, int], Path]] = {
    "checkpoint": lambda folder, n: save_checkpoint(folder, n),
    "summary.json": lambda folder, n: write_summary(folder, {**dict.fromkeys(REQUIRED_SUMMARY_KEYS, n),
                                                             "pad": "x" * 20_000 * n}, announce=False),
    "ledger entry": lambda folder, n: write_entry({"key": "1.3_train__s0", "pad": "x" * 20_000 * n}, folder / "results"),
    "gif": lambda folder, n: write_gif(frames(n), folder / "replay.gif"),
}


@pytest.mark.parametrize("writer", WRITERS, ids=list(WRITERS))
def test_a_full_disk_keeps_the_previous_file_and_says_so_in_one_line(small_disk: Path, writer: str) -> None:
    write = WRITERS[writer]
    path = write(small_disk, 1)
    before = digest(path)
    filler = fill(small_disk)
    with pytest.raises(DiskFullError) as caught:
        write(small_disk, 2)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "disk full" in message
    assert f"({human_bytes(shutil.disk_usage(small_disk).free)} free there)" in message  # the space left
    assert digest(path) == before  # the previous file, byte for byte
    assert not list(small_disk.rglob(f"*{PARTIAL_SUFFIX}"))  # no half file left behind
    filler.unlink()
    write(small_disk, 2)  # with space again, the same writer works
    assert path.is_file()


def test_a_checkpoint_keeps_the_one_before_it(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 100)
    save_checkpoint(tmp_path, 200)
    folder = tmp_path / "checkpoints"

    def steps(name: str) -> int:
        with zipfile.ZipFile(folder / name) as archive:
            return int(json.loads(archive.read("data"))["num_timesteps"])

    assert (steps(LATEST_CHECKPOINT), steps(PREVIOUS_CHECKPOINT)) == (200, 100)
    assert sorted(p.name for p in folder.iterdir()) == [LATEST_CHECKPOINT, PREVIOUS_CHECKPOINT]


def test_a_broken_json_file_is_one_line_naming_it_and_the_parse_error(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "entry.json", '{"key": "a", "n": 1}\n')
    path.write_text(path.read_text()[:-4])  # a hand edit that lost the closing brace
    with pytest.raises(RLBreakoutError) as caught:
        read_json(path, "restore it with git.")
    assert str(path) in str(caught.value) and "line 1" in str(caught.value) and "\n" not in str(caught.value)


HOLDER = """
import sys
from rlbreakout.files import exclusive_lock
with exclusive_lock(sys.argv[1], sys.argv[2], str):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_held_lock_names_its_holder_and_a_killed_holder_frees_it(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "campaign.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "pid 42, running 1.3_train__s0"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"  # an event: the lock is taken
        with pytest.raises(RLBreakoutError, match=r"^busy: pid 42, running 1.3_train__s0$"):
            with exclusive_lock(path, "me", lambda note: f"busy: {note}"):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # our own child: killed, it cannot release anything itself
        holder.wait(timeout=30)
    with exclusive_lock(path, "me", lambda note: f"busy: {note}"):  # the kernel freed it
        assert path.read_text() == "me"
    assert path.read_text() == ""  # a finished holder leaves it saying nothing


def run_13(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO_ROOT / "1_gym/1.3_train.py"), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)


def tiny_flags(**changes: str) -> list[str]:
    flags = dict(zip(TINY_PPO_FLAGS[::2], TINY_PPO_FLAGS[1::2]))
    flags.update({f"--{k.replace('_', '-')}": v for k, v in changes.items()})
    return [item for pair in flags.items() for item in pair]


@pytest.mark.slow
@pytest.mark.timeout(1800)  # three tiny trainings, each with its final whole-game evaluation, on a busy 2-core CPU
def test_a_full_disk_mid_training_keeps_the_last_checkpoint_and_resume_goes_on_from_it(small_disk: Path) -> None:
    logdir = small_disk / "runs"
    first = run_13(*tiny_flags(timesteps="64", checkpoint_freq="32", gif_games="0"), "--logdir", str(logdir))
    assert first.returncode == 0, first.stderr[-3000:]
    summary_path, summary = summary_of(first)
    run_dir = summary_path.parent
    latest = run_dir / "checkpoints" / LATEST_CHECKPOINT
    kept = {path: digest(path) for path in (latest, summary_path)}

    filler = fill(small_disk, leave=TRAINING_HEADROOM)
    stopped = run_13("--resume", str(run_dir), "--timesteps", "128")
    lines = stopped.stderr.strip().splitlines()
    assert stopped.returncode == 2, stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr
    assert lines[-1].startswith(f"error: cannot write {latest}: disk full (") and " free there)" in lines[-1]
    assert {path: digest(path) for path in kept} == kept  # the checkpoint at 64 steps and summary.json

    filler.unlink()
    resumed = run_13("--resume", str(run_dir), "--timesteps", "128")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, summary = summary_of(resumed)
    assert summary["timesteps"] == 128
    assert "64 steps to train" in resumed.stdout  # from the kept checkpoint's 64 steps on, not from 0
