"""Distributed tuning on a real PostgreSQL server: two worker processes share one study.

The server is started by the fixture from Debian's binaries (see conftest_postgres.py);
without them the tests skip, or fail when $CI is set (.ci/run installs them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import run_script, summary_of
from conftest_postgres import postgres_server, start_worker
from rlbreakout.errors import RLBreakoutError
from rlbreakout.tune.storage import STORAGE_ENV_VAR, open_storage

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

N_TRIALS = 8
TRIAL_SLEEP_S = 0.5
WORKER_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def test_two_workers_share_one_study_without_losing_or_repeating_trials(postgres_url: str, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    # each worker's first trial waits for the other's first trial: both share the work however slowly they start
    workers = [start_worker(postgres_url, "shared", N_TRIALS, markers, sleep=TRIAL_SLEEP_S, seed=seed, meet=2)
               for seed in (0, 1)]
    ran: list[list[int]] = []
    for worker in workers:
        out, err = worker.communicate(timeout=WORKER_TIMEOUT_S)
        assert worker.returncode == 0, err[-3000:]
        ran.append(json.loads(out.strip().splitlines()[-1]))

    trials = optuna.load_study(study_name="shared", storage=postgres_url).get_trials(deepcopy=False)
    finished = sorted(t.number for t in trials if t.state == TrialState.COMPLETE)
    # exactly N finished, nothing left running or waiting, no trial stood down as surplus twice over
    assert len(finished) == N_TRIALS
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert all(t.user_attrs.get("surplus") for t in trials if t.state == TrialState.FAIL)
    # both workers did part of the work, no trial was run by both, and none was lost
    assert ran[0] and ran[1], f"one worker did nothing: {ran}"
    assert not set(ran[0]) & set(ran[1])
    assert sorted(ran[0] + ran[1]) == finished
    done = sorted(int(p.name.split("_")[1]) for p in markers.glob("done_*"))
    assert done == finished  # each trial's objective ran to its end exactly once


def test_script_uses_postgres_from_the_environment_variable(postgres_url: str, logdir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORAGE_ENV_VAR, postgres_url)
    result = run_script("4_tuning/4.3_PPO_tuning_schedules.py", "--n-trials", "1", "--timesteps", "128",
                        "--n-envs", "2", "--n-steps", "64", "--batch-size", "64", "--n-epochs", "1",
                        "--eval-episodes", "1", "--evals-per-trial", "1", "--device", "cpu", "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert summary["storage"] == postgres_url and summary["n_complete"] == 1
    study = optuna.load_study(study_name=summary["study_name"], storage=postgres_url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    assert set(study.trials[0].params) >= {"learning_rate", "lr_schedule", "clip_range", "clip_schedule"}


def test_missing_database_is_one_clear_line(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(RLBreakoutError) as info:
        open_storage(url, connect_timeout=2)
    message = str(info.value)
    assert message.startswith(f"cannot reach Optuna storage {url}: ") and "no_such_database" in message
    assert "\n" not in message and "Check --storage" in message
