"""rlbreakout.tune.storage against real SQLite files (PostgreSQL: test_tuning_postgres.py)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from conftest import run_script
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.tune.storage import (
    STORAGE_ENV_VAR,
    check_study_settings,
    default_storage_url,
    open_storage,
    redact_url,
    require_study,
    resolve_storage_url,
    worker_seed,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


def test_storage_url_comes_from_flag_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_ENV_VAR, raising=False)
    assert resolve_storage_url(None, "runs") == default_storage_url("runs") == "sqlite:///runs/optuna/studies.db"
    monkeypatch.setenv(STORAGE_ENV_VAR, "postgresql://me@db/optuna")
    assert resolve_storage_url(None, "runs") == "postgresql://me@db/optuna"
    assert resolve_storage_url("sqlite:///x.db", "runs") == "sqlite:///x.db"


def test_redacted_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://me:secret@db:5432/optuna") == "postgresql://me:***@db:5432/optuna"
    assert redact_url("sqlite:///runs/optuna/studies.db") == "sqlite:///runs/optuna/studies.db"


@pytest.mark.parametrize("url, reason, fix", [
    ("postgresql://me:secret@127.0.0.1:1/db", "Connection refused", "Check --storage"),
    ("nosuchdb://host/db", "Can't load plugin", "Check --storage"),
    ("not a url", "not a database URL", "Check --storage"),
    ("mysql://me@127.0.0.1:1/db", "Failed to import DB access module", "Install the database's Python driver"),
])
def test_unreachable_storage_is_one_clear_line(url: str, reason: str, fix: str) -> None:
    with pytest.raises(RLBreakoutError) as info:
        open_storage(url, connect_timeout=2)
    message = str(info.value)
    assert message.startswith("cannot reach Optuna storage ") and reason in message and fix in message
    assert "\n" not in message and "secret" not in message


def test_sqlite_storage_under_a_file_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(RLBreakoutError, match="cannot reach Optuna storage sqlite:///.*file/db.sqlite: "):
        open_storage(f"sqlite:///{tmp_path}/file/db.sqlite")


def test_sqlite_storage_creates_its_folder_and_keeps_studies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'er' / 'studies.db'}"
    optuna.create_study(storage=open_storage(url), study_name="kept")
    assert (tmp_path / "deep" / "er" / "studies.db").is_file()
    assert capsys.readouterr().out == f"created {tmp_path / 'deep' / 'er'} for the new study database studies.db\n"
    assert optuna.get_all_study_names(open_storage(url)) == ["kept"]
    assert capsys.readouterr().out == ""  # the folder is there now: nothing to say


def test_joining_a_study_with_a_different_budget_is_refused(tmp_path: Path) -> None:
    storage = open_storage(sqlite_url(tmp_path))
    study = optuna.create_study(storage=storage, study_name="s")
    check_study_settings(study, {"timesteps_per_trial": 1000})
    joined = optuna.create_study(storage=storage, study_name="s", load_if_exists=True)
    check_study_settings(joined, {"timesteps_per_trial": 1000})
    assert joined.user_attrs == {"timesteps_per_trial": 1000}
    with pytest.raises(ConfigError, match="created with timesteps_per_trial = 1000, this worker has 2000"):
        check_study_settings(joined, {"timesteps_per_trial": 2000})


def test_a_joining_worker_offsets_its_sampler_seed_by_the_trials_there(tmp_path: Path) -> None:
    storage = open_storage(sqlite_url(tmp_path))
    assert worker_seed(storage, "s", 7) == 7  # no study yet
    study = optuna.create_study(storage=storage, study_name="s")
    for x in (0.1, 0.2, 0.3):
        study.add_trial(create_trial(value=x, params={"x": x}, distributions={"x": FloatDistribution(0, 1)}))
    assert worker_seed(storage, "s", 7) == 10


def test_a_missing_study_is_one_line_naming_the_studies_there(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    storage = open_storage(url)
    optuna.create_study(storage=storage, study_name="there")
    require_study(storage, "there", url)  # no error
    with pytest.raises(RLBreakoutError, match=r"no study 'gone' in sqlite:///.*; it holds: there\. Pass --study-name"):
        require_study(storage, "gone", url)


def test_a_damaged_sqlite_file_is_one_line_naming_it(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    study = optuna.create_study(storage=open_storage(f"sqlite:///{good}"), study_name="kept")
    for number in range(3):  # a few pages of trials, so that cutting the file loses tables
        study.add_trial(create_trial(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=number,
                                     user_attrs={"notes": "n" * 20_000}))
    cut, garbage = tmp_path / "cut.db", tmp_path / "garbage.db"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # a copy cut short
    garbage.write_bytes(b"SQLite format 2\0" + bytes(range(256)) * 8)  # not a database at all
    for path, reason in ((cut, "database disk image is malformed"), (garbage, "file is not a database")):
        with pytest.raises(RLBreakoutError) as caught:
            open_storage(f"sqlite:///{path}")
        message = str(caught.value)
        assert message.startswith(f"Optuna storage file {path} is damaged: {reason}.") and "\n" not in message
    result = run_script("4_tuning/4.0_study_explore.py", "--storage", f"sqlite:///{cut}", "--study-name", "kept",
                        "--logdir", str(tmp_path / "runs"), expect_ok=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: Optuna storage file {cut} is damaged")
