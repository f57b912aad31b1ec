"""Riding out a database outage: storage calls retried with a bounded backoff, one line per outage.

A study on a database server outlives any one connection: the server restarts, the network
drops for a while. :class:`OutageTolerantStorage` is Optuna's ``RDBStorage`` whose database
calls, when the connection fails, are tried again after 0.5, 1, 2, 4 ... s (at most
:data:`BACKOFF_CAP_SECONDS` apart) for up to ``outage_seconds`` from the outage's first
failure. Every thread of the worker (the trial's heartbeat too) shares the outage, and its
first failure prints one line. When the server is back, the calls go on where they were:
the running trial keeps its heartbeat and ends COMPLETE, and nothing is lost.

Past the bound the worker prints one line and exits with :data:`EXIT_STORAGE_LOST`: with the
database gone it cannot even mark its trial as failed, so it leaves that to the heartbeat.
The trial stays RUNNING with a heartbeat that has stopped; once the server is back, the next
worker that looks after the grace period marks it FAIL and enqueues it again (see
:func:`rlbreakout.tune.storage.open_storage`). COMPLETE trials are in the database: kept.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from optuna.storages import RDBStorage
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, PendingRollbackError

#: How long a worker retries a lost database before it gives up (seconds from the first failure).
#: With the default heartbeat (60 s) it stays within the grace period (180 s), so a trial that
#: rides an outage out is never taken for a dead worker's.
STORAGE_OUTAGE_SECONDS = 120.0
FIRST_BACKOFF_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 10.0
#: Exit status of a worker that gave up on its database (sysexits' EX_TEMPFAIL: try again later).
EXIT_STORAGE_LOST = 75
#: The RDBStorage methods that talk to the database (every call Optuna's cached storage and the
#: heartbeat make); the others only read settings.
RIDDEN_METHODS: tuple[str, ...] = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
    "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
    "create_new_trial", "_create_new_trial", "set_trial_param", "_set_trial_param", "get_trial_param",
    "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials", "get_best_trial",
    "_get_best_trial_id", "record_heartbeat", "_get_stale_trial_ids",
)


def _database_error(exc: BaseException) -> BaseException | None:
    """The SQLAlchemy error under ``exc`` (Optuna wraps some in its StorageInternalError), or None."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, (DBAPIError, PendingRollbackError)):
        seen = seen.__cause__
    return seen


def is_connection_lost(exc: BaseException) -> bool:
    """Whether a database error means the server could not be reached (not a bad query).

    ``PendingRollbackError``: a session whose connection died inside a transaction; it is
    thrown away before the next try (:meth:`Outage.call`).
    """
    error = _database_error(exc)
    if isinstance(error, (OperationalError, InterfaceError, PendingRollbackError)):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def _reason(exc: BaseException) -> str:
    exc = _database_error(exc) or exc
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


class Outage:
    """One worker's view of its database: up, or down since when; shared by its threads."""

    def __init__(self, shown_url: str, limit_seconds: float) -> None:
        self.shown_url, self.limit_seconds = shown_url, float(limit_seconds)
        self.enabled = False  # off while RDBStorage connects: an unreachable server at start is one error
        self.down_since: float | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:  # a storage is pickled by some Optuna helpers
        return {"shown_url": self.shown_url, "limit_seconds": self.limit_seconds, "enabled": self.enabled}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["shown_url"], state["limit_seconds"])  # type: ignore[misc]
        self.enabled = state["enabled"]

    def call(self, reset: Callable[[], None], method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``method(*args, **kwargs)``, tried again while the connection is lost, within the bound.

        ``reset`` throws away this thread's database session before each new try.
        """
        if not self.enabled or getattr(self._local, "inside", False):
            return method(*args, **kwargs)  # an inner call: the outermost one retries
        self._local.inside = True
        try:
            delay = FIRST_BACKOFF_SECONDS
            while True:
                try:
                    result = method(*args, **kwargs)
                except Exception as exc:
                    if not is_connection_lost(exc):
                        raise
                    time.sleep(min(delay, self._failed(exc)))
                    try:
                        reset()
                    except Exception:  # closing a session on a dead connection may fail too
                        pass
                    delay = min(delay * 2, BACKOFF_CAP_SECONDS)
                    continue
                with self._lock:
                    self.down_since = None
                return result
        finally:
            self._local.inside = False

    def _failed(self, exc: BaseException) -> float:
        """Note a failed call (one line when the outage starts); the seconds left, or exit past the bound."""
        now = time.monotonic()
        with self._lock:
            if self.down_since is None:
                self.down_since = now
                print(f"lost the Optuna storage {self.shown_url} ({_reason(exc)}); retrying for up to "
                      f"{self.limit_seconds:.0f} s, COMPLETE trials are safe in it", file=sys.stderr, flush=True)
            left = self.down_since + self.limit_seconds - now
            if left > 0:
                return left + 0.01
            print(f"error: the Optuna storage {self.shown_url} was unreachable for {self.limit_seconds:.0f} s "
                  f"({_reason(exc)}); this worker stops. Start it again when the server is back: its running "
                  f"trial turns FAIL after the heartbeat grace period and is retried.", file=sys.stderr, flush=True)
            sys.stdout.flush()
            # Not an exception: Optuna would try to record the trial as failed, in the database that is gone.
            os._exit(EXIT_STORAGE_LOST)


class OutageTolerantStorage(RDBStorage):
    """Optuna's RDBStorage that rides out a database outage of up to ``outage_seconds`` (see the module)."""

    def __init__(self, url: str, *, shown_url: str, outage_seconds: float = STORAGE_OUTAGE_SECONDS,
                 **kwargs: Any) -> None:
        self.outage = Outage(shown_url, outage_seconds)
        super().__init__(url, **kwargs)
        self.outage.enabled = True


def _ridden(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def ridden(self: OutageTolerantStorage, *args: Any, **kwargs: Any) -> Any:
        return self.outage.call(self.remove_session, method, self, *args, **kwargs)

    return ridden


# Each database call of RDBStorage, wrapped once here rather than written out 29 times.
for _name in RIDDEN_METHODS:
    setattr(OutageTolerantStorage, _name, _ridden(_name))
