"""PPOConfig: every field reaches the model, the flags are derived from the fields, presets are instances."""

from __future__ import annotations

import argparse
import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from rlbreakout.errors import ConfigError
from rlbreakout.hyperparams import SB3_DEFAULT_PPO, ZOO_ATARI_PPO, PPOConfig, add_ppo_flags, markdown_table
from rlbreakout.schedules import DEFAULT_HALF_LIFE, ExponentialSchedule
from rlbreakout.training import build_ppo

TOTAL_STEPS = 1_000
#: The smallest square screen the Nature CNN's three convolutions accept.
NATURE_CNN_MIN_SIDE = 36


def tiny_pixel_env(frame_stack: int) -> gym.Env:
    """A channel-first uint8 screen of ``frame_stack`` planes, enough to build a CnnPolicy on."""

    class PixelEnv(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (frame_stack, NATURE_CNN_MIN_SIDE, NATURE_CNN_MIN_SIDE), np.uint8)
        action_space = gym.spaces.Discrete(4)

        def reset(self, *, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 0.0, False, False, {}

    return PixelEnv()

#: A value for each field that differs from both presets (n_steps * n_envs stays divisible by batch_size).
CHANGED: dict[str, object] = {
    "n_envs": 3, "frame_stack": 2, "n_steps": 20, "batch_size": 12, "n_epochs": 7, "learning_rate": 1.25e-3,
    "lr_schedule": "exponential", "clip_range": 0.33, "clip_schedule": "exponential", "half_life": 123.0,
    "ent_coef": 0.042, "vf_coef": 0.77, "gamma": 0.91, "gae_lambda": 0.81, "max_grad_norm": 1.7,
}


def model_value(model, field: str, env) -> object:
    """What the built PPO holds for ``field`` (schedules read at the start of training)."""
    readers = {
        "n_envs": lambda: model.n_envs,
        "frame_stack": lambda: env.observation_space.shape[0],
        "learning_rate": lambda: model.lr_schedule(1.0),
        "lr_schedule": lambda: type(model.learning_rate).__name__,
        "clip_range": lambda: model.clip_range(1.0),
        # SB3 wraps the clip-range schedule in its FloatSchedule
        "clip_schedule": lambda: type(getattr(model.clip_range, "value_schedule", model.clip_range)).__name__,
        "half_life": lambda: getattr(model.clip_range, "value_schedule", model.clip_range).half_life,
    }
    return readers[field]() if field in readers else getattr(model, field)


def expected_value(field: str, value: object) -> object:
    names = {"exponential": ExponentialSchedule.__name__}
    return names.get(value, value) if field in ("lr_schedule", "clip_schedule") else value


def test_every_field_is_covered_by_the_test() -> None:
    assert set(CHANGED) == {f.name for f in dataclasses.fields(PPOConfig)}
    for name, value in CHANGED.items():
        assert value != getattr(ZOO_ATARI_PPO, name) and value != getattr(SB3_DEFAULT_PPO, name), name


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_each_field_reaches_the_model(field: str) -> None:
    base = ZOO_ATARI_PPO.replace(n_envs=2, n_steps=16, batch_size=32)
    changes = {field: CHANGED[field]}
    if field == "half_life":  # a half-life shows only in an exponential schedule
        base = base.replace(clip_schedule="exponential", half_life=500.0)
    if field in ("n_steps", "batch_size", "n_envs"):  # keep the rollout divisible by the batch
        changes = {"n_envs": 3, "n_steps": 20, "batch_size": 12}
    config = base.replace(**changes)
    config.validate()
    env = DummyVecEnv([lambda: tiny_pixel_env(config.frame_stack)] * config.n_envs)
    model = build_ppo(config, env, timesteps=TOTAL_STEPS, device="cpu")
    assert model_value(model, field, env) == pytest.approx(expected_value(field, getattr(config, field)))
    baseline = build_ppo(base, DummyVecEnv([lambda: tiny_pixel_env(base.frame_stack)] * base.n_envs),
                         timesteps=TOTAL_STEPS, device="cpu")
    assert model_value(baseline, field, baseline.env) != model_value(model, field, env)


def test_flags_are_derived_from_the_fields() -> None:
    parser = add_ppo_flags(argparse.ArgumentParser(), ZOO_ATARI_PPO)
    parser.add_argument("--n-envs", type=int, default=ZOO_ATARI_PPO.n_envs)  # the common parser's flag
    flags = [f"--{name.replace('_', '-')}" for name in CHANGED]
    argv = [str(part) for name, value in CHANGED.items() for part in (f"--{name.replace('_', '-')}", value)]
    assert PPOConfig.from_args(parser.parse_args(argv)) == PPOConfig(**CHANGED)
    group = next(g for g in parser._action_groups if g.title == "PPO hyperparameters")
    derived = {action.dest for action in group._group_actions}
    assert derived == set(CHANGED) - {"n_envs"}
    assert all(flag in parser.format_help() for flag in flags)


def test_presets_are_configs_with_the_zoo_and_sb3_values() -> None:
    assert isinstance(ZOO_ATARI_PPO, PPOConfig) and isinstance(SB3_DEFAULT_PPO, PPOConfig)
    assert (ZOO_ATARI_PPO.n_envs, ZOO_ATARI_PPO.n_steps, ZOO_ATARI_PPO.batch_size, ZOO_ATARI_PPO.clip_range) == (8, 128, 256, 0.1)
    assert (SB3_DEFAULT_PPO.n_steps, SB3_DEFAULT_PPO.batch_size, SB3_DEFAULT_PPO.n_epochs) == (2048, 64, 10)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [({"batch_size": 100}, "must divide the rollout"), ({"gamma": 1.5}, "--gamma"),
     ({"gae_lambda": -0.1}, "--gae-lambda"), ({"max_grad_norm": 0.0}, "--max-grad-norm"),
     ({"n_epochs": 0}, "--n-epochs"), ({"learning_rate": 0.0}, "--learning-rate")],
)
def test_validate_names_the_flag(changes: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ZOO_ATARI_PPO.replace(**changes).validate()


def test_default_exponential_schedules_agree_at_the_same_step_for_1e6_and_1e7_step_runs() -> None:
    """The default half-life is a number of env steps, not a share of the run (issue 35)."""
    config = ZOO_ATARI_PPO.replace(lr_schedule="exponential", clip_schedule="exponential")
    step, short, long = 500_000, 1_000_000, 10_000_000
    for schedule in ("learning_rate_schedule", "clip_range_schedule"):
        at_short = getattr(config, schedule)(short)(1 - step / short)
        at_long = getattr(config, schedule)(long)(1 - step / long)
        assert at_short == pytest.approx(at_long)
        assert at_short == pytest.approx(getattr(config, schedule.split("_schedule")[0]) * 0.5 ** (step / DEFAULT_HALF_LIFE))


def test_flag_defaults_come_from_the_preset_passed() -> None:
    """A chapter's preset sets what a learner gets without flags, --n-envs included."""
    parser = add_ppo_flags(argparse.ArgumentParser(), ZOO_ATARI_PPO)
    assert PPOConfig.from_args(parser.parse_args([])) == ZOO_ATARI_PPO
    parser = add_ppo_flags(argparse.ArgumentParser(), SB3_DEFAULT_PPO)
    assert PPOConfig.from_args(parser.parse_args([])) == SB3_DEFAULT_PPO != ZOO_ATARI_PPO


def test_a_schedule_flag_refuses_a_name_outside_its_choices(capsys: pytest.CaptureFixture[str]) -> None:
    parser = add_ppo_flags(argparse.ArgumentParser(), ZOO_ATARI_PPO)
    with pytest.raises(SystemExit):
        parser.parse_args(["--lr-schedule", "cosine"])
    assert "invalid choice: 'cosine' (choose from" in capsys.readouterr().err
    assert parser.parse_args(["--clip-schedule", "exponential"]).clip_schedule == "exponential"


def test_as_dict_gives_every_field_and_its_value() -> None:
    params = ZOO_ATARI_PPO.as_dict()
    assert params == {spec.name: getattr(ZOO_ATARI_PPO, spec.name) for spec in dataclasses.fields(PPOConfig)}
    assert type(params) is dict


def test_markdown_table_has_a_header_and_one_row_per_parameter() -> None:
    assert markdown_table({"learning_rate": 0.00025, "lr_schedule": "linear"}) == (
        "| parameter | value |\n|---|---|\n| learning_rate | 0.00025 |\n| lr_schedule | linear |")


@pytest.mark.parametrize("changes", [
    {"n_envs": 1, "n_steps": 1, "n_epochs": 1, "frame_stack": 1, "batch_size": 1},  # the smallest settings
    {"gamma": 1.0, "gae_lambda": 0.0},  # no discount; one-step advantages
    {"gae_lambda": 1.0},  # Monte Carlo advantages
])
def test_validate_accepts_the_edges_of_each_range(changes: dict) -> None:
    ZOO_ATARI_PPO.replace(**changes).validate()


@pytest.mark.parametrize("changes", [{"gamma": 0.0}, {"gae_lambda": 1.5}])
def test_validate_refuses_just_past_the_edges(changes: dict) -> None:
    with pytest.raises(ConfigError, match=f"--{next(iter(changes)).replace('_', '-')} must be in"):
        ZOO_ATARI_PPO.replace(**changes).validate()


@pytest.mark.parametrize(("n_steps", "n_envs", "suggested"), [
    (128, 8, [32, 64, 128, 256, 512, 1024]),  # rollout 1024: every suggested size divides it
    (64, 1, [32, 64]),  # a rollout that is itself a suggested size is suggested
    (96, 1, [32]),  # 64 is smaller than 96 but does not divide it
    (3, 1, [3]),  # none divides 3: the rollout itself
])
def test_a_batch_size_that_does_not_divide_the_rollout_gets_the_sizes_that_do(n_steps: int, n_envs: int,
                                                                             suggested: list[int]) -> None:
    with pytest.raises(ConfigError) as refused:
        ZOO_ATARI_PPO.replace(n_steps=n_steps, n_envs=n_envs, batch_size=100).validate()
    assert str(refused.value).endswith(f"= {n_steps * n_envs}; try one of {suggested}.")


def test_a_half_life_left_unset_is_the_default_number_of_steps() -> None:
    config = ZOO_ATARI_PPO.replace(half_life=None, lr_schedule="exponential", clip_schedule="exponential")
    for schedule in (config.learning_rate_schedule(10**6), config.clip_range_schedule(10**6)):
        assert isinstance(schedule, ExponentialSchedule) and schedule.half_life == DEFAULT_HALF_LIFE
