"""Files written whole or not at all, a full disk said in one line, and a lock that names its holder.

Every file a run keeps for later (checkpoints, model.zip, summary.json, config.json, ledger
entries, gifs) is written to a temporary file beside it (``<name>.partial``, same folder, so
the same file system) and moved over the old one with ``os.replace``, which is atomic: a
reader, a kill -9 or a full disk leaves the old file or the new one, never half of one.

When the disk is full the temporary file is removed, the old file stays as it was, and
:class:`DiskFullError` says in one line which path could not be written and how much space
is left (``error: ...`` and exit 2, like any :class:`~rlbreakout.errors.RLBreakoutError`).

:func:`exclusive_lock` lets one process at a time do something (the results campaign): the
kernel's ``flock`` is released when the holder dies, even by kill -9, so it never stays stuck,
and the holder writes who it is into the file, so the one refused can say so.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rlbreakout.errors import RLBreakoutError

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is then only the note in the file
    fcntl = None  # type: ignore[assignment]

#: A temporary file is its final name plus this suffix (``*.json`` globs never see it).
PARTIAL_SUFFIX = ".partial"
#: The errors a write gets from a full disk or a full quota.
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: torch's zip writer reports a full disk as a RuntimeError without errno; below this many
#: free bytes a failed write is taken as a full disk.
LOW_SPACE_BYTES = 1 << 20


class DiskFullError(RLBreakoutError):
    """A file could not be written because its disk is full; the previous file is kept."""


def free_bytes(path: str | os.PathLike[str]) -> int:
    """Free bytes on the file system holding ``path`` (its nearest existing folder)."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KB`` (powers of 1024, one decimal)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def is_disk_full(exc: BaseException, path: str | os.PathLike[str]) -> bool:
    """Whether a failed write of ``path`` failed for want of space (errno, or almost no space left)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in NO_SPACE_ERRNOS:
            return True
        seen = seen.__cause__ or seen.__context__
    try:
        return free_bytes(Path(path).parent) < LOW_SPACE_BYTES
    except OSError:
        return False


def disk_full_error(path: str | os.PathLike[str]) -> DiskFullError:
    """The one line for a file that did not fit: the path, the space left, what was kept, the fix."""
    path = Path(path)
    kept = f"the previous {path.name} is kept" if path.exists() else f"no {path.name} was written"
    return DiskFullError(f"cannot write {path}: disk full ({human_bytes(free_bytes(path.parent))} free there); "
                         f"{kept}. Free some space, then run the same command again (a training: --resume).")


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, keep_previous: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends it replaces ``path`` in one step.

    If the block raises, the temporary file is removed and ``path`` is untouched; a full disk
    becomes :class:`DiskFullError`. With ``keep_previous``, the file being replaced is kept
    under that name (a hard link, so ``path`` exists at every moment).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    try:
        yield partial
        _sync(partial)
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, Exception) and is_disk_full(exc, path):
            raise disk_full_error(path) from exc
        raise
    if keep_previous is not None and path.exists():
        _keep(path, Path(keep_previous))
    os.replace(partial, path)


def _sync(path: Path) -> None:
    """Flush a written file to the disk, so the rename never publishes a file still in memory only."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep(path: Path, previous: Path) -> None:
    link = previous.with_name(previous.name + PARTIAL_SUFFIX)
    link.unlink(missing_ok=True)
    link_or_copy(path, link)
    os.replace(link, previous)


def link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no space, no time), or a copy on a file system without them."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (see :func:`atomic_path`)."""
    with atomic_path(path) as partial:
        partial.write_text(text)
    return Path(path)


def read_json(path: str | os.PathLike[str], fix: str) -> object:
    """A JSON file's content; a broken one is one line naming the file, the parse error and ``fix``."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RLBreakoutError(f"{path} is not valid JSON ({exc}); {fix}") from exc


class HeldLock:
    """A lock file this process holds; :meth:`note` rewrites what it says about the holder."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path

    def note(self, text: str) -> None:
        """Say who holds the lock and what it does now (in place: a new file would be a new lock)."""
        data = text.encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)


@contextmanager
def exclusive_lock(path: str | os.PathLike[str], note: str, busy: Callable[[str], str]) -> Iterator[HeldLock]:
    """Hold ``path`` locked (``fcntl.flock``) for the block, with ``note`` written in it.

    :param busy: the one-line error when another process holds it, from what that one wrote there
    :raises RLBreakoutError: ``busy(holder's note)`` when the lock is held
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
                raise RLBreakoutError(busy(holder or "a process that has not said who it is yet")) from None
        lock = HeldLock(fd, path)
        lock.note(note)
        yield lock
        lock.note("")  # left by a finished holder: nobody holds it
    finally:
        os.close(fd)  # closing releases the flock
