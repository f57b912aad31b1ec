"""CLI conventions: common flags, resume through argparse's defaults, one-line errors, device checks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rlbreakout.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, common_parser, parse_script_args, resolve_device
from rlbreakout.errors import RLBreakoutError
from rlbreakout.provenance import REPO_ROOT


def test_common_flags_and_defaults() -> None:
    args = common_parser("x", timesteps=5, n_envs=3).parse_args(["--seed", "4"])
    assert (args.env, args.timesteps, args.seed, args.n_envs, args.device, args.logdir) == (
        "BreakoutNoFrameskip-v4", 5, 4, 3, "auto", str(REPO_ROOT / "runs"))


def test_a_run_started_in_a_chapter_folder_lands_in_the_repository_s_runs() -> None:
    """Spyder's console works in the script's folder; the run must still go where TensorBoard looks."""
    script = REPO_ROOT / "1_gym" / "1.2_wrapper.py"
    result = subprocess.run([sys.executable, str(script), "--timesteps", "20"], cwd=script.parent,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = Path(result.stdout.strip().splitlines()[-1]).parent
    try:
        assert run_dir.is_absolute() and run_dir.parent.parent == REPO_ROOT / "runs"
        assert not (script.parent / "runs").exists()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def resumable_parser() -> "argparse.ArgumentParser":  # noqa: F821
    parser = common_parser("x", timesteps=100)
    parser.add_argument("--resume", default=None)
    parser.add_argument("--fast", action="store_true")
    return parser


def test_resume_takes_the_saved_settings_and_explicit_flags_win_even_abbreviated(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"timesteps": 500, "seed": 3, "fast": True, "n_envs": 2,
                                                      "not_a_flag": 1}))
    args = parse_script_args(resumable_parser(), ["--resume", str(tmp_path)])
    assert (args.timesteps, args.seed, args.fast, args.n_envs) == (500, 3, True, 2)
    assert not hasattr(args, "not_a_flag")
    args = parse_script_args(resumable_parser(), ["--resume", str(tmp_path), "--times", "900", "--seed=5"])
    assert (args.timesteps, args.seed, args.resume) == (900, 5, str(tmp_path))


def test_resume_of_a_folder_without_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RLBreakoutError, match="cannot resume .*: no config.json in it. Pass --resume the run folder"):
        parse_script_args(resumable_parser(), ["--resume", str(tmp_path)])


SCRIPT = """
import sys
from rlbreakout.cli import common_parser, parse_script_args
from rlbreakout.errors import ConfigError
args = parse_script_args(common_parser("x"), sys.argv[2:])
print("parsed", flush=True)
if sys.argv[1] == "user-error":
    raise ConfigError("--batch-size 3 must divide the rollout; try 64.")
if sys.argv[1] == "ctrl-c":
    raise KeyboardInterrupt
raise ValueError("a bug, not bad input")
"""


@pytest.mark.parametrize(
    ("case", "code", "stderr_first_line"),
    [("user-error", EXIT_BAD_INPUT, "error: --batch-size 3 must divide the rollout; try 64."),
     ("ctrl-c", EXIT_INTERRUPTED, "interrupted"),
     ("bug", 1, "Traceback (most recent call last):")],
)
def test_a_script_ends_with_one_line_for_user_errors_and_a_traceback_for_bugs(
        tmp_path: Path, case: str, code: int, stderr_first_line: str) -> None:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(SCRIPT))
    result = subprocess.run([sys.executable, str(script), case], capture_output=True, text=True, timeout=120)
    assert result.returncode == code
    assert result.stdout.strip() == "parsed"
    assert result.stderr.strip().splitlines()[0] == stderr_first_line
    if code != 1:
        assert len(result.stderr.strip().splitlines()) == 1


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(RLBreakoutError, match="--device 'tpu' is unknown"):
        resolve_device("tpu")


def test_a_bad_flag_value_is_one_line_naming_the_flag_and_its_range(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's usage block is left out: one line, exit 2 (--help shows the usage)."""
    for argv, words in [(["--n-envs", "0"], "argument --n-envs: 0 is out of range; give a whole number from 1 to 1,024"),
                        (["--timesteps", "lots"], "argument --timesteps: 'lots' is not a whole number"),
                        (["--seed", str(2**32)], "argument --seed: 4294967296 is out of range"),
                        (["--nope"], "unrecognized arguments: --nope (see ")]:
        with pytest.raises(SystemExit) as exit_info:
            parse_script_args(common_parser("x", timesteps=100), argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == EXIT_BAD_INPUT and err.startswith(f"error: {words}")
        assert err.count("\n") == 1 and "usage" not in err


def test_a_bad_device_is_refused_while_parsing() -> None:
    with pytest.raises(RLBreakoutError, match="^--device 'gpu0' is unknown; use auto, cpu"):
        parse_script_args(common_parser("x", timesteps=100), ["--device", "gpu0"])
