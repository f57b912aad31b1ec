"""Every chapter script's Settings cell: upper-case constants named after their flags, which are the flags' defaults.

Spyder runs a cell with ``sys.argv == ['']``, so no flag reaches a learner who runs a script
cell by cell: the Settings cell's constants are what they edit. These tests read each
constant and the flag its comment names, and check that ``parse_args()`` takes it as that
flag's default, and that a flag given on the command line still wins.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT

#: The chapter scripts that take flags.
SCRIPTS = sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.glob("[0-5]_*/[0-9].[0-9]*.py")
                 if "def parse_args" in p.read_text() or "parse_script_args(" in p.read_text())
#: ``NAME = value  # --flag: ...``: a Settings constant and the flag it is the default of.
CONSTANT = re.compile(r"^([A-Z][A-Z0-9_]*) = .*#\s*(--[a-z][a-z0-9-]*)")
#: A constant whose name is not its flag's (ENV_ID is --env's; the rest are the flag in upper case).
NAME_OF_FLAG = {"--env": "ENV_ID"}
#: 4.1 trains on every id of --train-envs, so it has no --env to set.
NO_ENV_ID = {"4_tuning/4.1_PPO_env_comparison.py"}
#: Edits that must stay valid values (0.2's --parts names tables), where "value-edited" would not.
VALID_EDITS = {"PARTS": ["ppo", "aimbot"]}
#: Constants edited on their own: 0.2's TINY replaces the step counts, so it is checked alone.
EDITED_ALONE = {"TINY"}


def settings_constants(script: str) -> dict[str, str]:
    """``{constant: flag}`` of the script's Settings cell."""
    text = (REPO_ROOT / script).read_text()
    cell = text[text.index("# %% Settings"):text.index("\nargs = ")]
    return {m.group(1): m.group(2) for line in cell.splitlines() if (m := CONSTANT.match(line))}


def edited(value: Any) -> Any:
    """Another value of the same kind, as a learner's edit of the Settings cell."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "-edited"
    return [*value, value[0]]


def parsed(script: str, *flags: str, edits: dict[str, Any] | None = None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """What the script's ``args = ...`` line gives under ``sys.argv = [script, *flags]``, and its namespace.

    The cells above that line run first (imports, constants, the parser), as Spyder runs them;
    ``edits`` then replace Settings constants, as a learner's edit of the cell would.
    """
    path = REPO_ROOT / script
    text = path.read_text()
    top, args_line = text.split("\nargs = ", 1)
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "settings_cell_test"}
    saved_argv, saved_hook = sys.argv, sys.excepthook
    sys.argv = [str(path), *flags]
    try:
        exec(compile(top, str(path), "exec"), namespace)
        namespace.update(edits or {})
        return eval(args_line.splitlines()[0], namespace), namespace
    finally:
        sys.argv, sys.excepthook = saved_argv, saved_hook


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_settings_constant_is_its_flag_s_default_and_a_flag_still_wins(script: str) -> None:
    if "retro" in script or script.startswith("5_"):
        pytest.importorskip("stable_retro", reason="chapter 5 needs the retro extra")
    constants = settings_constants(script)
    args, module = parsed(script)
    flags = {action.option_strings[0]: action.dest for action in parser_actions(script)}
    assert constants, f"{script}: no Settings constant names its flag (NAME = value  # --flag: ...)"
    for name, flag in constants.items():
        assert name == NAME_OF_FLAG.get(flag, flag[2:].upper().replace("-", "_")), f"{script}: {name} for {flag}"
        assert flag in flags, f"{script}: {name}'s comment names {flag}, which the script does not take"
        assert getattr(args, flags[flag]) == module[name], f"{script}: {flag}'s default is not {name}"
    wanted = {"TIMESTEPS": "--timesteps", "SEED": "--seed", "FAST": "--fast", "EVAL_FREQ": "--eval-freq"}
    if script not in NO_ENV_ID:
        wanted["ENV_ID"] = "--env"
    if "--n-envs" in flags and ("--fast" in flags or args.n_envs > 1):
        wanted["N_ENVS"] = "--n-envs"
    missing = [name for name, flag in wanted.items() if flag in flags and name not in constants]
    assert not missing, f"{script}: its Settings cell lacks {missing}"
    changes = {name: VALID_EDITS.get(name, edited(module[name])) for name in constants}
    together = {name: value for name, value in changes.items() if name not in EDITED_ALONE}
    edit_rounds = [together] + [{name: changes[name]} for name in EDITED_ALONE & set(changes)]
    for edits in edit_rounds:  # the learner edits the cell: every flag's default follows
        edited_args, _ = parsed(script, edits=edits)
        for name, value in edits.items():
            assert getattr(edited_args, flags[constants[name]]) == value, f"{script}: editing {name} does not change it"
    if "--timesteps" in flags:  # a flag given in a terminal (or with F5) still overrides the constant
        args, _ = parsed(script, "--timesteps", "1234")
        assert args.timesteps == 1234 != module["TIMESTEPS"]
    options = {option for action in parser_actions(script) for option in action.option_strings}
    for name, flag in constants.items():  # a switch set either way in the cell can be flipped for one run
        if isinstance(module[name], bool):
            for value in (True, False):
                switch = f"--no-{flag[2:]}" if value else flag
                assert switch in options, f"{script}: with {name} = {value} in the cell, no {switch} undoes it"
                flipped, _ = parsed(script, switch, edits={name: value})
                assert getattr(flipped, flags[flag]) is (not value), f"{script}: {switch} does not win over {name}"


def parser_actions(script: str) -> list[argparse.Action]:
    """The actions (flags) of the script's parser, built the way its parse_args builds it."""
    captured: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> argparse.Namespace:
        captured.append(self)
        return original(self, *args, **kwargs)

    argparse.ArgumentParser.parse_args = capture  # type: ignore[method-assign]
    try:
        parsed(script)
    finally:
        argparse.ArgumentParser.parse_args = original  # type: ignore[method-assign]
    return [action for action in captured[-1]._actions if action.option_strings]


def test_the_scripts_found_are_the_chapters() -> None:
    names = {Path(s).name for s in SCRIPTS}
    assert {"1.3_train.py", "2.3_copying_hp_zoo.py", "2.4_ppo_atari_from_scratch.py", "2.5_ppo_fast.py",
            "3.3_aimbot_training.py", "4.2_PPO_tuning_grid.py", "5.2_ppo_sonic.py"} <= names
    assert len(SCRIPTS) >= 20
