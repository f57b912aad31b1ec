"""The chapter scripts in Spyder's own console kernel, as a learner runs them: Settings edited, cells one by one.

No flag reaches a cell there (``sys.argv == ['']``), the console works in the script's folder,
and the learner edits the Settings cell in the editor without saving. Each test starts
``spyder_kernels.console`` through jupyter_client, sends the script's cells in order with
the Settings cell edited to tiny values, and checks: no cell raised, the chapter's objects
stay in the namespace, the run's summary.json (in the repository's runs/) has the edited
steps, and the expected-time line came before training.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from spyder_kernel import SpyderConsole, edit_settings

#: The Settings edits that make each script a few seconds' run, and the objects it must leave.
TINY: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "1_gym/1.1_gym.py": ({"TIMESTEPS": "300", "GAMES": "1"}, ("env", "scores")),
    "1_gym/1.2_wrapper.py": ({"TIMESTEPS": "200"}, ("env", "scores")),
    "2_baselines/2.3_copying_hp_zoo.py": ({"TIMESTEPS": "256", "N_ENVS": "2", "EVAL_FREQ": "0", "EVAL_EPISODES": "1",
                                           "GIF_GAMES": "0"}, ("env", "model", "scores")),
    "3_obswrapper/3.3_aimbot_training.py": ({"TIMESTEPS": "256", "N_ENVS": "2", "EVAL_FREQ": "0", "EVAL_EPISODES": "1",
                                             "GIF_GAMES": "0", "FAST": "True"}, ("env", "model", "scores")),
}
#: Scripts that train a model print the expected-time line before their Train cell's first progress line.
TRAINS = {script for script, (_, names) in TINY.items() if "model" in names}


def test_editing_keeps_the_comment_and_refuses_a_missing_name() -> None:
    code = "TIMESTEPS = 10_000_000  # --timesteps: the zoo's\nSEED = 0\n"
    assert edit_settings(code, {"TIMESTEPS": "256", "SEED": "3"}) == "TIMESTEPS = 256  # --timesteps: the zoo's\nSEED = 3\n"
    with pytest.raises(AssertionError, match="no single line 'N_ENVS"):
        edit_settings(code, {"N_ENVS": "2"})


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(TINY))
def test_each_script_runs_cell_by_cell_in_spyder_s_kernel_with_edited_settings(script: str) -> None:
    edits, names = TINY[script]
    path = REPO_ROOT / script
    with SpyderConsole(cwd=path.parent) as console:
        assert console.value("__import__('sys').argv") == [""], "Spyder's console passes no flags"
        assert console.value("__import__('os').getcwd()") == str(path.parent)
        output = console.run_script(path, edits)
        missing = [name for name in names if not console.value(f"{name!r} in globals()")]
        assert not missing, f"{script} left no {missing} in the console"
        summary_path = Path(output.strip().splitlines()[-1])
    assert summary_path.name == "summary.json" and summary_path.is_file(), output[-2000:]
    try:
        assert summary_path.is_relative_to(REPO_ROOT / "runs"), "a cell's run lands in the root's runs/"
        summary = json.loads(summary_path.read_text())
        config = json.loads(summary_path.with_name("config.json").read_text())
        assert config["timesteps"] == int(edits["TIMESTEPS"])
        if script in TRAINS:
            assert summary["timesteps"] >= int(edits["TIMESTEPS"])
            before, _, after = output.partition("steps to train")
            assert after and f"{int(edits['TIMESTEPS']):,}" in before.splitlines()[-1], output[-2000:]
            assert "--resume" in after.splitlines()[0]
            assert "step " not in before.split("run folder:")[-1], "the expected time came after training began"
    finally:
        shutil.rmtree(summary_path.parent, ignore_errors=True)
