"""The chapter scripts in Spyder's own console kernel, as a learner runs them: Settings edited, cells one by one.

No flag reaches a cell there (``sys.argv == ['']``), the console works in the script's folder,
and the learner edits the Settings cell in the editor without saving. The tests start
``spyder_kernels.console`` through jupyter_client, one console per chapter folder (Spyder's
working directory follows the file being run), and send every chapter script's cells in
order with the Settings cell edited to tiny values. Between two scripts the console's
namespace is cleared, as Spyder's "Remove all variables before execution" does, so each
script stands on its own. Each test checks: no cell raised, the chapter's objects stay in
the namespace, the run's summary.json (in the repository's runs/) has the edited steps, and
a training script printed its expected-time line before training began. Optuna studies go
to a temporary SQLite file through ``$OPTUNA_STORAGE``, the route a learner has without flags.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from spyder_kernel import SpyderConsole, edit_settings

RUNS = REPO_ROOT / "runs"
#: A DQN's replay buffer and its start, small enough for a few hundred steps.
TINY_DQN = {"BUFFER_SIZE": "500", "LEARNING_STARTS": "32"}
#: Each chapter script in the order a learner meets it: the Settings edits that make it a few
#: seconds' run, and the objects it must leave in the console.
TINY: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
    ("0_setup/0.1_check_setup.py", {"TIMESTEPS": "64", "N_ENVS": "2"}, ("env", "versions")),
    ("0_setup/0.2_benchmark.py", {"TINY": "True", "PARTS": '["ppo", "aimbot"]'}, ("ppo", "table")),
    ("0_setup/0.3_demo.py", {"TIMESTEPS": "256", "N_ENVS": "2", "EVAL_FREQ": "0"}, ("env", "model")),
    ("1_gym/1.1_gym.py", {"TIMESTEPS": "300", "GAMES": "1"}, ("env", "scores")),
    ("1_gym/1.2_wrapper.py", {"TIMESTEPS": "200"}, ("env", "scores")),
    ("1_gym/1.3_train.py", {"TIMESTEPS": "256", "EVAL_EPISODES": "1", "GIF_GAMES": "0"}, ("env", "model", "scores")),
    ("2_baselines/2.1_envs.py", {"TIMESTEPS": "256", "N_ENVS": "1", "EVAL_EPISODES": "1", "GIF_GAMES": "0"},
     ("env", "model", "scores")),
    ("2_baselines/2.2_callbacks.py", {"TIMESTEPS": "256", "N_ENVS": "1", "EVAL_FREQ": "0", "EVAL_EPISODES": "1",
                                      "GIF_GAMES": "0"}, ("env", "model", "scores")),
    ("2_baselines/2.3_copying_hp_zoo.py", {"TIMESTEPS": "256", "N_ENVS": "2", "EVAL_FREQ": "0", "EVAL_EPISODES": "1",
                                           "GIF_GAMES": "0"}, ("env", "model", "scores")),
    ("2_baselines/2.4_ppo_atari_from_scratch.py", {"TIMESTEPS": "256", "N_ENVS": "2"}, ("env", "model", "scores")),
    ("2_baselines/2.5_ppo_fast.py", {"TIMESTEPS": "256", "N_ENVS": "2"}, ("env", "model", "scores")),
    ("3_obswrapper/3.1_observation_space.py", {"TIMESTEPS": "10"}, ("env", "frame", "observation")),
    ("3_obswrapper/3.2_observation_wrapper.py", {"TIMESTEPS": "10"}, ("env", "fall")),
    ("3_obswrapper/3.2_observation_wrapper_nomodel.py", {"EPISODES": "1", "TIMESTEPS": "300"}, ("env", "games")),
    ("3_obswrapper/3.3_aimbot_training.py", {"TIMESTEPS": "256", "N_ENVS": "2", "EVAL_FREQ": "0", "EVAL_EPISODES": "1",
                                             "GIF_GAMES": "0", "FAST": "True"}, ("env", "model", "scores")),
    ("4_tuning/4.0_wrapperOptuna_PPO.py", {"N_TRIALS": "2", "TIMESTEPS": "128", "EVAL_EPISODES": "1", "TOP_K": "1",
                                           "PROMOTE_TIMESTEPS": "256", "PROMOTE_EVAL_EPISODES": "1", "N_ENVS": "2"},
     ("study1", "study2", "objective", "env", "model")),
    ("4_tuning/4.0_study_explore.py", {}, ("study", "summary")),
    ("4_tuning/4.1_PPO_env_comparison.py", {"TIMESTEPS": "256", "N_ENVS": "2", "EVAL_FREQ": "0", "EVAL_EPISODES": "1",
                                            "GIF_GAMES": "0"}, ("study", "objective", "env", "model")),
    ("4_tuning/4.2_PPO_tuning_grid.py", {"TIMESTEPS": "128", "N_ENVS": "2", "EVAL_EPISODES": "1", "BATCH_SIZES": "[64]",
                                         "N_EPOCHS_GRID": "[1]", "N_STEPS_GRID": "[64]"},
     ("study", "objective", "env", "model")),
    ("4_tuning/4.3_PPO_tuning_schedules.py", {"N_TRIALS": "1", "TIMESTEPS": "128", "N_ENVS": "2", "N_STEPS": "64",
                                              "BATCH_SIZE": "64", "EVAL_EPISODES": "1"},
     ("study", "objective", "env", "model")),
    ("5_sonic/5.1_jerk.py", {"TIMESTEPS": "200"}, ("env", "agent", "scores")),
    ("5_sonic/5.2_ppo_sonic.py", {"TIMESTEPS": "256", "N_ENVS": "2", "EVAL_FREQ": "0"}, ("env", "model", "scores")),
    ("5_sonic/5.3_dqn_sonic.py", {"TIMESTEPS": "200", "EVAL_FREQ": "0", **TINY_DQN}, ("env", "model", "scores")),
]
#: Scripts that train a model print the expected-time line before their first progress line.
TRAINS = {script for script, _, names in TINY if "model" in names and not script.startswith("4_")}
STEMS = {Path(script).stem for script, _, _ in TINY}


def test_editing_keeps_the_comment_and_refuses_a_missing_name() -> None:
    code = "TIMESTEPS = 10_000_000  # --timesteps: the zoo's\nSEED = 0\n"
    assert edit_settings(code, {"TIMESTEPS": "256", "SEED": "3"}) == "TIMESTEPS = 256  # --timesteps: the zoo's\nSEED = 3\n"
    with pytest.raises(AssertionError, match="no single line 'N_ENVS"):
        edit_settings(code, {"N_ENVS": "2"})


def test_every_chapter_script_with_a_settings_cell_is_in_the_table() -> None:
    scripts = REPO_ROOT.glob("[0-5]_*/[0-9].*.py")
    with_settings = {str(path.relative_to(REPO_ROOT)) for path in scripts if "# %% Settings: edit" in path.read_text()}
    assert with_settings - {script for script, _, _ in TINY} == set()


@pytest.fixture(scope="module")
def console_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """One console per chapter folder, reused by that folder's scripts, the last one closed at the end."""
    storage = tmp_path_factory.mktemp("optuna") / "studies.db"
    open_consoles: dict[Path, SpyderConsole] = {}

    def get(folder: Path) -> SpyderConsole:
        if folder not in open_consoles:
            for console in open_consoles.values():
                console.__exit__()
            open_consoles.clear()
            studies = {"OPTUNA_STORAGE": f"sqlite:///{storage}"}
            open_consoles[folder] = SpyderConsole(cwd=folder, env=studies).__enter__()
        return open_consoles[folder]

    yield get
    for console in open_consoles.values():
        console.__exit__()


def _run_folders() -> set[Path]:
    return {path for stem in STEMS for path in (RUNS / stem).glob("*")}


@pytest.mark.slow
@pytest.mark.parametrize("script, edits, names", TINY, ids=[script for script, _, _ in TINY])
def test_each_script_runs_cell_by_cell_in_spyder_s_kernel_with_edited_settings(
        console_in, script: str, edits: dict[str, str], names: tuple[str, ...]) -> None:
    pytest.importorskip("stable_retro") if script.startswith("5_") else None
    path = REPO_ROOT / script
    before = _run_folders()
    console = console_in(path.parent)
    try:
        console.reset()
        assert console.value("__import__('sys').argv") == [""], "Spyder's console passes no flags"
        assert console.value("__import__('os').getcwd()") == str(path.parent)
        output = console.run_script(path, edits)
        missing = [name for name in names if not console.value(f"{name!r} in globals()")]
        assert not missing, f"{script} left no {missing} in the console"
        summary_path = Path(output.strip().splitlines()[-1])
        assert summary_path.name == "summary.json" and summary_path.is_file(), output[-2000:]
        assert summary_path.is_relative_to(RUNS), "a cell's run lands in the root's runs/"
        summary = json.loads(summary_path.read_text())
        config = json.loads(summary_path.with_name("config.json").read_text())
        if "TIMESTEPS" in edits:
            assert config["timesteps"] == int(edits["TIMESTEPS"])
        if script in TRAINS:
            assert summary["timesteps"] >= int(edits["TIMESTEPS"])
            before_line, _, after = output.partition("steps to train")
            assert after and f"{int(edits['TIMESTEPS']):,}" in before_line.splitlines()[-1], output[-2000:]
            assert "Ctrl-C" in after.splitlines()[0]  # and how to go on (--resume; 2.4 and 2.5 start afresh)
            assert "step " not in before_line.split("run folder:")[-1], "the expected time came after training began"
    finally:
        for folder in _run_folders() - before:
            shutil.rmtree(folder, ignore_errors=True)
