"""Where a study lives: the storage URL, a crash-safe connection, and what joining workers must share.

``--storage URL`` or ``$OPTUNA_STORAGE``; by default an SQLite file under ``<logdir>/optuna/``.
Any SQLAlchemy URL works (``postgresql://user@host/db``), and every worker started with the
same storage and study name joins the same study. :func:`open_storage` turns on Optuna's
heartbeats, so the trial of a worker killed mid-trial (even by SIGKILL) becomes FAIL and is
enqueued again, and turns any connection problem into one line naming the storage and the fix.
A database that goes away mid-study is ridden out for a while (:mod:`rlbreakout.tune.outage`).
"""

from __future__ import annotations

import importlib.util
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.tune.outage import STORAGE_OUTAGE_SECONDS, OutageTolerantStorage

#: Environment variable holding the storage URL when ``--storage`` is not given.
STORAGE_ENV_VAR = "OPTUNA_STORAGE"
#: The default storage: one SQLite file for all studies, under ``<logdir>/optuna/``.
DEFAULT_STORAGE_SUBDIR = "optuna"
DEFAULT_STORAGE_FILE = "studies.db"
#: A running trial writes a heartbeat this often (seconds) ...
HEARTBEAT_INTERVAL_SECONDS = 60
#: ... and a trial whose last heartbeat is older than this is FAIL (its worker died).
GRACE_PERIOD_SECONDS = 180
#: A trial whose worker keeps dying (e.g. out of memory) is retried at most this often.
MAX_TRIAL_RETRIES = 3
#: Seconds to wait for a database server before giving up with a clear error.
CONNECT_TIMEOUT_SECONDS = 10
#: Workers starting together on a fresh database race to create its tables; the losers retry.
SCHEMA_CREATE_ATTEMPTS = 3
SCHEMA_RETRY_SECONDS = 1.0
STORAGE_HINT = (f"Check --storage or ${STORAGE_ENV_VAR}: e.g. sqlite:///runs/optuna/studies.db or "
                f"postgresql://user@host:5432/db (server running, user and database exist)")


def default_storage_url(logdir: str | os.PathLike[str]) -> str:
    """``sqlite:///<logdir>/optuna/studies.db``: one embedded database file for every study."""
    return f"sqlite:///{(Path(logdir) / DEFAULT_STORAGE_SUBDIR / DEFAULT_STORAGE_FILE).as_posix()}"


def resolve_storage_url(storage: str | None, logdir: str | os.PathLike[str]) -> str:
    """The ``--storage`` flag, else ``$OPTUNA_STORAGE``, else the default SQLite file."""
    return storage or os.environ.get(STORAGE_ENV_VAR) or default_storage_url(logdir)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe to print and to store in summary.json)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _engine_kwargs(backend: str, timeout: int) -> dict[str, Any]:
    """Short connection timeouts, so an unreachable server fails in seconds, not minutes."""
    if backend == "sqlite":
        # for SQLite "timeout" is how long a writer waits for another process's lock
        return {"connect_args": {"timeout": timeout}}
    # pool_pre_ping: trials run for hours; a connection the server closed meanwhile is replaced
    return {"connect_args": {"connect_timeout": timeout}, "pool_pre_ping": True}


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return lines[0] if lines else type(cause).__name__


def _connect(url: str, backend: str, *, shown: str, heartbeat_interval: int, grace_period: int, max_retry: int,
             connect_timeout: int, outage_seconds: float) -> RDBStorage:
    for attempt in range(1, SCHEMA_CREATE_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                # heartbeats are marked experimental; the warning would greet every learner
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return OutageTolerantStorage(
                    url,
                    shown_url=shown,
                    outage_seconds=outage_seconds,
                    engine_kwargs=_engine_kwargs(backend, connect_timeout),
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                )
        except (IntegrityError, ProgrammingError):
            # Two workers on a fresh database both create Optuna's tables; the slower one
            # hits "already exists". The tables are there now: connecting again works.
            if attempt == SCHEMA_CREATE_ATTEMPTS:
                raise
            time.sleep(SCHEMA_RETRY_SECONDS)
    raise AssertionError("unreachable")


def _make_sqlite_folder(database: Path) -> None:
    """Create the folder of a new SQLite study file, and say so in one line (a typo shows at once)."""
    if not database.parent.is_dir():
        database.parent.mkdir(parents=True, exist_ok=True)
        print(f"created {database.parent} for the new study database {database.name}", flush=True)


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_SECONDS,
    grace_period: int = GRACE_PERIOD_SECONDS,
    max_retry: int = MAX_TRIAL_RETRIES,
    connect_timeout: int = CONNECT_TIMEOUT_SECONDS,
    outage_seconds: float = STORAGE_OUTAGE_SECONDS,
) -> RDBStorage:
    """Connect to (and if needed create) the Optuna database at ``url``, with crash safety on.

    A running trial writes a heartbeat every ``heartbeat_interval`` seconds; one silent for
    ``grace_period`` seconds is marked FAIL by the next worker that looks, and a copy is
    enqueued (``RetryHeartbeatStaleTrialCallback``), so a killed worker's trial is run again.
    A server lost mid-study is retried for up to ``outage_seconds``, then the worker exits with
    one line (:class:`~rlbreakout.tune.outage.OutageTolerantStorage`).

    :raises RLBreakoutError: one line naming the storage and the reason when it cannot be reached
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise RLBreakoutError(f"cannot reach Optuna storage {url!r}: not a database URL ({exc}). {STORAGE_HINT}.") from exc
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is not None:
        # SQLAlchemy 2.1 picks psycopg 3 for a bare postgresql://; the postgres extra installs psycopg2
        url = parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    try:
        if backend == "sqlite" and parsed.database not in (None, "", ":memory:"):
            _make_sqlite_folder(Path(parsed.database))
        return _connect(url, backend, shown=shown, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                        max_retry=max_retry, connect_timeout=connect_timeout, outage_seconds=outage_seconds)
    except ImportError as exc:
        raise RLBreakoutError(
            f"cannot reach Optuna storage {shown}: {_first_line(exc)} "
            f"Install the database's Python driver (PostgreSQL: pip install -e '.[postgres]')."
        ) from exc
    except DatabaseError as exc:
        if backend == "sqlite" and not isinstance(exc, OperationalError):  # the file opened; no database in it
            raise RLBreakoutError(f"Optuna storage file {parsed.database} is damaged: {_first_line(exc)}. Restore it "
                                  f"from a copy, or pass another --storage (a new file starts empty).") from exc
        raise RLBreakoutError(f"cannot reach Optuna storage {shown}: {_first_line(exc)}. {STORAGE_HINT}.") from exc
    except (SQLAlchemyError, OSError, RuntimeError) as exc:
        raise RLBreakoutError(f"cannot reach Optuna storage {shown}: {_first_line(exc)}. {STORAGE_HINT}.") from exc


def worker_seed(storage: optuna.storages.BaseStorage, study_name: str, seed: int) -> int:
    """``seed`` plus the trials already in the study, so a joining or restarted worker's sampler
    draws new values instead of replaying the first worker's."""
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if summary.study_name == study_name:
            return seed + summary.n_trials
    return seed


def check_study_settings(study: optuna.Study, settings: Mapping[str, Any]) -> None:
    """Store the per-trial budget on a new study; refuse a worker that joins with a different one.

    Trials trained with different budgets (timesteps, eval env, games) cannot be compared.
    """
    for key, value in settings.items():
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != value:
            raise ConfigError(
                f"study {study.study_name!r} was created with {key} = {stored!r}, this worker has {value!r}; "
                f"use the same flags to join it, or a new --study-name."
            )


def require_study(storage: optuna.storages.BaseStorage, study_name: str, url: str) -> None:
    """One line naming the studies that exist when ``study_name`` is not one of them."""
    names = optuna.get_all_study_names(storage)
    if study_name not in names:
        raise RLBreakoutError(
            f"no study {study_name!r} in {redact_url(url)}; it holds: {', '.join(names) or 'no studies'}. "
            f"Pass --study-name (and the --storage the study was run with)."
        )
