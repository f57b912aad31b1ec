"""CLI conventions: common flags, one-line errors, device checks."""

from __future__ import annotations

import pytest

from rlbreakout.cli import EXIT_BAD_INPUT, common_parser, resolve_device, run_main
from rlbreakout.errors import ConfigError, RLBreakoutError


def test_common_flags_and_defaults() -> None:
    args = common_parser("x", timesteps=5, n_envs=3).parse_args(["--seed", "4"])
    assert (args.env, args.timesteps, args.seed, args.n_envs, args.device, args.logdir) == (
        "BreakoutNoFrameskip-v4", 5, 4, 3, "auto", "runs")


def test_run_main_turns_user_errors_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def main() -> None:
        raise ConfigError("batch size 3 does not divide 256; try 64.")

    with pytest.raises(SystemExit) as exit_info:
        run_main(main)
    assert exit_info.value.code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.strip() == "error: batch size 3 does not divide 256; try 64."


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(RLBreakoutError, match="unknown device"):
        resolve_device("tpu")
