"""Helpers for the Optuna storage tests: a throwaway PostgreSQL server and cheap study workers.

``postgres_server()`` starts a real server from Debian's binaries (``initdb``, ``pg_ctl``) on a
free localhost port with a temporary data directory, listening on 127.0.0.1 only, with trust
authentication, and stops it afterwards. As root it runs them as the ``postgres`` user through
``runuser -u postgres --`` (PostgreSQL refuses to run as root).

``start_worker()`` starts a worker *process* that joins a study through the same
``open_storage``, ``optuna.create_study`` and ``run_worker`` as the chapter-4 scripts, with an objective
that sleeps instead of training, so crash and sharing tests take seconds. Each trial
touches ``started_<n>`` in a marker folder when it begins and ``done_<n>_<pid>`` when it ends;
a worker's first trial also touches ``worker_<pid>`` (see ``meet``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
POSTGRES_USER = "postgres"
TEST_DATABASE = "rlbreakout_optuna"
SERVER_START_TIMEOUT_S = 60

WORKER_CODE = """
import json, os, sys, time
from pathlib import Path
import optuna
from rlbreakout.tune.storage import open_storage, worker_seed
from rlbreakout.tune.workers import run_worker

url, name, n_trials, markers, sleep, heartbeat, grace, seed, outage, meet, meet_timeout = sys.argv[1:]
storage = open_storage(url, heartbeat_interval=int(heartbeat), grace_period=int(grace), outage_seconds=float(outage))
sampler = optuna.samplers.RandomSampler(seed=worker_seed(storage, name, int(seed)))
study = optuna.create_study(storage=storage, study_name=name, direction="maximize", sampler=sampler,
                            load_if_exists=True)
markers = Path(markers)

def objective(trial):
    x = trial.suggest_float("x", 0.0, 1.0)
    (markers / f"started_{trial.number}").touch()
    first = not (markers / f"worker_{os.getpid()}").exists()
    (markers / f"worker_{os.getpid()}").touch()
    deadline = time.monotonic() + float(meet_timeout)
    while first and len(list(markers.glob("worker_*"))) < int(meet):  # hold the first trial until all have one
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(list(markers.glob('worker_*')))} of {meet} workers started a trial "
                               f"within {meet_timeout} s")
        time.sleep(0.05)
    time.sleep(float(sleep))
    (markers / f"done_{trial.number}_{os.getpid()}").touch()
    return x

print(json.dumps(run_worker(study, objective, int(n_trials), poll_seconds=float(heartbeat))), flush=True)
"""


def start_worker(
    url: str, study_name: str, n_trials: int, markers: Path, *,
    sleep: float, heartbeat: int = 1, grace: int = 2, seed: int = 0, outage: float = 60.0, meet: int = 0,
    meet_timeout: float = 180.0,
) -> subprocess.Popen[str]:
    """A worker process running cheap trials until the study holds ``n_trials`` finished ones.

    :param outage: how long it rides out a lost database before it exits (see rlbreakout/tune/outage.py)
    :param meet: its first trial waits until this many workers have each started one (touched
        ``worker_<pid>``), so a sharing test does not depend on how fast each process starts;
        after ``meet_timeout`` seconds that trial fails with a line saying how many came
    """
    markers.mkdir(parents=True, exist_ok=True)
    args = [url, study_name, str(n_trials), str(markers), str(sleep), str(heartbeat), str(grace), str(seed),
            str(outage), str(meet), str(meet_timeout)]
    return subprocess.Popen([sys.executable, "-c", WORKER_CODE, *args], cwd=REPO_ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(path: Path, timeout: float, process: subprocess.Popen[str] | None = None) -> None:
    """Poll until ``path`` exists (failing early if ``process`` died)."""
    wait_until(path.exists, timeout, str(path), process, poll=0.05)


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``pg_ctl`` in it, or None."""
    candidates = [Path(p) for p in glob.glob(POSTGRES_BIN_GLOB) if (Path(p) / "pg_ctl").is_file()]
    return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, default=None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A running test server: its URL, and a crash and a restart on demand."""

    def __init__(self, url: str, crash: Callable[[], None], start: Callable[[], None]) -> None:
        self.url, self.crash, self.start = url, crash, start


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL on a free 127.0.0.1 port; yield a SQLAlchemy URL to a fresh database."""
    with postgres_handle() as server:
        yield server.url


@contextmanager
def postgres_handle() -> Iterator[PostgresServer]:
    """Start PostgreSQL on a free 127.0.0.1 port; yield it, with a fresh database.

    ``crash()`` stops it the way a crash does (``pg_ctl stop -m immediate``: every process
    quits at once, no shutdown checkpoint, recovery on the next start); ``start()`` starts it again.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        message = (f"no PostgreSQL server binaries under {POSTGRES_BIN_GLOB}; "
                   f"install them with `apt-get install -y postgresql` (.ci/run does)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", POSTGRES_USER, "--"] if as_root else []
    user = POSTGRES_USER if as_root else None
    # not pytest's tmp_path: its parents are private to root, and the server runs as postgres
    base = Path(tempfile.mkdtemp(prefix="rlbreakout-pg-"))
    data, log = base / "data", base / "server.log"
    if user:
        shutil.chown(base, user=user)
    port = _free_port()

    def run(*cmd: str) -> None:
        result = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=SERVER_START_TIMEOUT_S)
        if result.returncode != 0:
            server_log = log.read_text()[-2000:] if log.exists() else ""
            raise AssertionError(f"{' '.join(cmd)} failed: {result.stdout}{result.stderr}{server_log}")

    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off"

    def start() -> None:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w",
            "-t", str(SERVER_START_TIMEOUT_S), "start")

    def crash() -> None:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")

    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", POSTGRES_USER, "--auth=trust", "--no-sync", "-E", "UTF8")
        start()
        try:
            run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", POSTGRES_USER, TEST_DATABASE)
            yield PostgresServer(f"postgresql+psycopg2://{POSTGRES_USER}@127.0.0.1:{port}/{TEST_DATABASE}", crash, start)
        finally:
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=SERVER_START_TIMEOUT_S)  # already stopped by a test: fine
    finally:
        shutil.rmtree(base, ignore_errors=True)
