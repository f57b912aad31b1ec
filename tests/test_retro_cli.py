"""Chapter 5's flags: --game and --env are one setting, the defaults, and one-line checks before any emulator."""

from __future__ import annotations

import pytest

from rlbreakout.errors import ConfigError
from rlbreakout.retro.cli import (
    add_run_arguments,
    env_kwargs_from_args,
    retro_parser,
    run_label,
    validate_retro_args,
    validate_run_args,
)
from rlbreakout.retro.envs import CONTEST_STICKY_PROBABILITY, DEFAULT_GAME
from rlbreakout.retro.rewards import PIECEWISE_SCALE, LinearScale


def parser(**options: object):
    return add_run_arguments(retro_parser("test", timesteps=1_000, n_envs=2, **options), eval_freq=500)


def test_game_and_env_are_one_setting_with_the_chapters_defaults() -> None:
    args = parser().parse_args([])
    assert (args.env, args.sticky, args.reward_scale, args.backtracking) == (
        DEFAULT_GAME, CONTEST_STICKY_PROBABILITY, "0.01", True)
    assert (args.timesteps, args.n_envs, args.eval_freq) == (1_000, 2, 500)
    assert parser().parse_args(["--game", "Pong"]).env == "Pong"
    assert parser().parse_args(["--env", "Pong"]).env == "Pong"


def test_jerk_style_parser_has_no_reward_flags() -> None:
    args = retro_parser("jerk", timesteps=10, n_envs=1, sticky=0.0, reward_scale=None).parse_args([])
    assert args.sticky == 0.0 and not hasattr(args, "reward_scale") and not hasattr(args, "backtracking")
    assert env_kwargs_from_args(args) == {"sticky_prob": 0.0, "max_episode_steps": args.max_episode_steps}


def test_env_kwargs_and_label_follow_the_flags() -> None:
    args = parser().parse_args(["--reward-scale", "piecewise", "--no-backtracking", "--sticky", "0.1"])
    kwargs = env_kwargs_from_args(args)
    assert kwargs["reward_scale"] is PIECEWISE_SCALE and kwargs["backtracking"] is False
    assert kwargs["sticky_prob"] == 0.1
    assert env_kwargs_from_args(parser().parse_args([]))["reward_scale"] == LinearScale(0.01)
    assert run_label(args) == f"{DEFAULT_GAME}-scalepiecewise"


@pytest.mark.parametrize("flags", [
    ["--timesteps", "0"], ["--sticky", "1"], ["--max-episode-steps", "0"], ["--reward-scale", "big"],
    ["--eval-freq", "-1"], ["--eval-episodes", "0"], ["--collapse-fraction", "2"], ["--collapse-patience", "0"],
    ["--torch-threads", "0"], ["--n-envs", "0"],
])
def test_bad_flags_are_one_line_errors_naming_the_flag_before_the_game_is_looked_up(flags: list[str], capsys) -> None:
    """A range is checked while parsing (argparse's error line, exit 2), the rest by validation; either way
    the flag is reported, not the game."""
    try:
        args = parser().parse_args([*flags, "--game", "NoSuchGame"])
    except SystemExit as exit:
        assert exit.code == 2
        message = capsys.readouterr().err.strip().splitlines()[-1]
    else:
        with pytest.raises(ConfigError) as error:
            validate_run_args(args)
        message = str(error.value)
        assert "\n" not in message
    assert "NoSuchGame" not in message and flags[0] in message


@pytest.mark.retro
def test_validation_resolves_the_old_game_name() -> None:
    pytest.importorskip("stable_retro")
    args = parser().parse_args(["--game", "Airstriker-Genesis"])
    validate_retro_args(args)
    assert args.env == DEFAULT_GAME
