"""rlbreakout.tune.outage: a real PostgreSQL server crashed under two real worker processes.

The server (conftest_postgres.py) is stopped the way a crash stops it (every process quits at
once, recovery on the next start) while two workers run a study of cheap trials, and started
again. The waits are on events (a trial started, a worker's line), each bounded.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from conftest import run_script
from conftest_postgres import PostgresServer, postgres_handle, start_worker, wait_for
from rlbreakout.tune.outage import EXIT_STORAGE_LOST

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N_TRIALS = 6
#: Long enough that the study is far from done when the server is crashed after trial 2 starts.
TRIAL_SLEEP_S = 5.0
EVENT_TIMEOUT_S = 120
WORKER_TIMEOUT_S = 240
LOST = "lost the Optuna storage"


class Lines:
    """A worker's stderr read as it comes, so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(process.stderr.readline, "")),
                                       daemon=True)
        self.thread.start()

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no line with {text!r} within {timeout} s: {self.lines[-20:]}"
            time.sleep(0.05)

    def text(self) -> str:
        self.thread.join(timeout=10)
        return "".join(self.lines)


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    with postgres_handle() as handle:
        yield handle


def complete_numbers(url: str, name: str) -> set[int]:
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    return {t.number for t in trials if t.state == TrialState.COMPLETE}


def crash_after_a_trial_ends(server: PostgresServer, name: str, markers: Path,
                             workers: list[subprocess.Popen[str]]) -> set[int]:
    """Crash the server once trial 2 started (so one trial is COMPLETE, one in flight); the COMPLETE ones."""
    wait_for(markers / "started_2", EVENT_TIMEOUT_S, workers[0])
    before = complete_numbers(server.url, name)
    server.crash()
    return before


def by_number_of(trials: list[optuna.trial.FrozenTrial]) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.number: t for t in trials}


def explore(url: str, name: str, logdir: Path) -> str:
    result = run_script("4_tuning/4.0_study_explore.py", "--storage", url, "--study-name", name,
                        "--logdir", str(logdir), timeout=300)
    return result.stdout


def test_workers_ride_out_a_server_crash_shorter_than_the_grace_period(server: PostgresServer, tmp_path: Path) -> None:
    name, markers = "ride", tmp_path / "markers"
    workers = [start_worker(server.url, name, N_TRIALS, markers, sleep=TRIAL_SLEEP_S, heartbeat=1, grace=60,
                            seed=seed, outage=50) for seed in (0, 1)]
    lines = [Lines(w) for w in workers]
    before = crash_after_a_trial_ends(server, name, markers, workers)
    for worker_lines in lines:  # each worker notices the outage and says so
        worker_lines.wait_for(LOST, EVENT_TIMEOUT_S)
    server.start()
    for worker in workers:
        assert worker.wait(timeout=WORKER_TIMEOUT_S) == 0, "".join(lines[workers.index(worker)].text())[-3000:]

    for worker_lines in lines:
        err = worker_lines.text()
        assert err.count(LOST) == 1, err[-3000:]  # one line per outage
        assert "Traceback" not in err and "error:" not in err, err[-3000:]
    trials = optuna.load_study(study_name=name, storage=server.url).get_trials(deepcopy=False)
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    assert before and before <= complete  # no COMPLETE trial lost
    assert len(complete) == N_TRIALS
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert all(t.user_attrs.get("surplus") for t in trials if t.state == TrialState.FAIL)  # none failed by the outage
    done = sorted(int(p.name.split("_")[1]) for p in markers.glob("done_*"))
    assert done == sorted(complete)  # each objective ran to its end once, the one in flight included
    assert f"{N_TRIALS} complete" in explore(server.url, name, tmp_path / "runs")


def test_workers_past_the_bound_exit_with_one_line_and_their_trials_are_retried_once(
        server: PostgresServer, tmp_path: Path) -> None:
    name, markers = "lost", tmp_path / "markers"
    workers = [start_worker(server.url, name, N_TRIALS, markers, sleep=TRIAL_SLEEP_S, heartbeat=1, grace=3,
                            seed=seed, outage=2) for seed in (0, 1)]
    lines = [Lines(w) for w in workers]
    wait_for(markers / "started_2", EVENT_TIMEOUT_S, workers[0])  # a trial COMPLETE, one in flight
    server.crash()
    codes = [worker.wait(timeout=EVENT_TIMEOUT_S) for worker in workers]  # the server stays down meanwhile
    errors = [worker_lines.text() for worker_lines in lines]
    assert codes == [EXIT_STORAGE_LOST] * 2, errors
    for err in errors:
        assert err.count(LOST) == 1 and err.count("error:") == 1, err  # one line when lost, one when giving up
        assert "Traceback" not in err, err

    server.start()
    trials = optuna.load_study(study_name=name, storage=server.url).get_trials(deepcopy=False)
    before = {t.number for t in trials if t.state == TrialState.COMPLETE}  # as the crash left them
    in_flight = {t.number for t in trials if t.state == TrialState.RUNNING}
    assert 2 in in_flight and "x" in by_number_of(trials)[2].params, "trial 2 (its x drawn) was not in flight"
    third = start_worker(server.url, name, N_TRIALS, markers, sleep=0.2, heartbeat=1, grace=3, seed=2)
    _, err = third.communicate(timeout=WORKER_TIMEOUT_S)
    assert third.returncode == 0, err[-3000:]

    trials = optuna.load_study(study_name=name, storage=server.url).get_trials(deepcopy=False)
    by_number = by_number_of(trials)
    complete = {t.number for t in trials if t.state == TrialState.COMPLETE}
    assert before and before <= complete and len(complete) == N_TRIALS  # no COMPLETE trial lost
    for number in in_flight:
        assert by_number[number].state == TrialState.FAIL  # not left RUNNING
        retries = [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == number]
        assert [t.state for t in retries] == [TrialState.COMPLETE]  # retried once
        # the retry keeps every value the lost trial drew; a trial lost before it drew one (the other
        # worker may have just created it at the crash) draws its value anew
        assert by_number[number].params.items() <= retries[0].params.items()
        assert set(retries[0].params) == {"x"}
    assert f"{N_TRIALS} complete" in explore(server.url, name, tmp_path / "runs")
