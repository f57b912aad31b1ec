"""rlbreakout.tune.flags: the study flags and their one-line checks."""

from __future__ import annotations

import pytest

from rlbreakout.errors import ConfigError
from rlbreakout.tune.flags import add_study_flags, study_settings, tuning_parser, validate_tuning_args


def parser(**kwargs: object):
    return tuning_parser(None, study_name="s", n_trials=5, timesteps=1000, n_envs=2, env="Breakout-v4",
                         eval_env=None, eval_episodes=3, **kwargs)


def test_tuning_flags_and_their_defaults() -> None:
    args = parser().parse_args(["--storage", "sqlite:///x.db", "--sampler", "random", "--pruner", "halving"])
    assert (args.storage, args.study_name, args.n_trials, args.sampler, args.pruner) == ("sqlite:///x.db", "s", 5,
                                                                                        "random", "halving")
    assert (args.eval_env, args.eval_episodes, args.evals_per_trial) == (None, 3, 4)


def test_scripts_without_a_sampler_choice_have_no_sampler_flag() -> None:
    with pytest.raises(SystemExit):
        parser(sampler=None).parse_args(["--sampler", "tpe"])
    import argparse

    plain = add_study_flags(argparse.ArgumentParser(), study_name="x", n_trials=None)
    assert vars(plain.parse_args([])) == {"storage": None, "study_name": "x", "n_trials": None}


@pytest.mark.parametrize("flags, message", [
    (["--n-trials", "0"], "argument --n-trials: 0 is out of range"),
    (["--timesteps", "0"], "argument --timesteps: 0 is out of range"),
    (["--n-envs", "0"], "argument --n-envs: 0 is out of range"),
    (["--eval-episodes", "0"], "argument --eval-episodes: 0 is out of range"),
    (["--evals-per-trial", "2000"], "--evals-per-trial must be between 1 and --timesteps"),
    (["--eval-env", "NoSuchGame-v9"], "NoSuchGame-v9"),
])
def test_bad_study_flags_are_refused_before_any_storage(flags: list[str], message: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A flag's own range is checked while parsing (exit 2), the rest by validate_tuning_args."""
    with pytest.raises((ConfigError, SystemExit)) as info:
        validate_tuning_args(parser().parse_args([*flags, "--device", "cpu"]))
    assert message in (str(info.value) if isinstance(info.value, ConfigError) else capsys.readouterr().err)


def test_study_settings_hold_the_per_trial_budget() -> None:
    args = parser().parse_args(["--eval-env", "ALE/Breakout-v5", "--evals-per-trial", "2"])
    assert study_settings(args, "4.3", grid=[1]) == {"script": "4.3", "timesteps_per_trial": 1000,
                                                      "eval_env": "ALE/Breakout-v5", "eval_episodes": 3,
                                                      "evals_per_trial": 2, "grid": [1]}
