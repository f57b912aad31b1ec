"""PPO hyperparameters as one dataclass, and the presets the tutorial copies.

:class:`PPOConfig` carries every hyperparameter a chapter sets; each field reaches the
model through :meth:`PPOConfig.ppo_kwargs` (tested field by field), and the command-line
flags are derived from the fields (:func:`add_ppo_flags`), so a field cannot exist
without a flag or a flag without a field.

``ZOO_ATARI_PPO`` is rl-baselines3-zoo's ``hyperparams/ppo.yml`` entry for Atari (used
for Breakout); ``SB3_DEFAULT_PPO`` is SB3's own defaults on one env (chapter 1).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_ENVS, MAX_STEPS, number, whole
from rlbreakout.schedules import DEFAULT_HALF_LIFE, SCHEDULE_CHOICES, Schedule, make_schedule

#: The zoo's budget for Atari PPO; chapter scripts shorten it with --timesteps.
ZOO_TIMESTEPS = 10_000_000
#: Batch sizes suggested when --batch-size does not divide the rollout.
SUGGESTED_BATCH_SIZES: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
#: Upper ends of the flags' ranges: past them a run cannot fit in memory or means nothing.
MAX_FRAME_STACK = 16
MAX_ROLLOUT_STEPS = 65_536
MAX_EPOCHS = 1_000
MAX_LOSS_COEF = 10.0
MAX_GRAD_NORM = 1_000.0
#: Fields that are flags of the common parser already (rlbreakout.cli.common_parser).
COMMON_FLAG_FIELDS: tuple[str, ...] = ("n_envs",)


def _hp(default: Any, help: str, type: Any = None, **extra: Any) -> Any:  # noqa: A002 - argparse's name
    """A field with its flag's help and ``type`` (the range its flag accepts)."""
    return field(default=default, metadata={"help": help, "type": type, **extra})


@dataclass(frozen=True)
class PPOConfig:
    """Every hyperparameter of an SB3 PPO run on Atari, with the zoo's values as defaults."""

    n_envs: int = _hp(8, "envs stepped in parallel", whole(1, MAX_ENVS))
    frame_stack: int = _hp(4, "frames stacked into one observation", whole(1, MAX_FRAME_STACK))
    n_steps: int = _hp(128, "env steps per env per rollout", whole(1, MAX_ROLLOUT_STEPS))
    batch_size: int = _hp(256, "minibatch size (must divide n_steps * n_envs)", whole(1))
    n_epochs: int = _hp(4, "passes over each rollout", whole(1, MAX_EPOCHS))
    learning_rate: float = _hp(2.5e-4, "initial learning rate", number(0, 1, low_open=True))
    lr_schedule: str = _hp("linear", "learning-rate schedule", str, choices=SCHEDULE_CHOICES)
    clip_range: float = _hp(0.1, "initial PPO clip range", number(0, 1, low_open=True))
    clip_schedule: str = _hp("linear", "clip-range schedule", str, choices=SCHEDULE_CHOICES)
    half_life: float | None = _hp(DEFAULT_HALF_LIFE, "env steps per halving of an exponential schedule, "
                                  "whatever the run's length", number(0, MAX_STEPS, low_open=True))
    ent_coef: float = _hp(0.01, "entropy bonus coefficient", number(0, 1))
    vf_coef: float = _hp(0.5, "value-loss coefficient", number(0, MAX_LOSS_COEF))
    gamma: float = _hp(0.99, "discount factor", number(0, 1, low_open=True))
    gae_lambda: float = _hp(0.95, "GAE lambda (bias-variance trade-off of the advantage)", number(0, 1))
    max_grad_norm: float = _hp(0.5, "gradient-norm clip", number(0, MAX_GRAD_NORM, low_open=True))

    def replace(self, **changes: Any) -> "PPOConfig":
        """A copy with some fields changed (``ZOO_ATARI_PPO.replace(n_envs=16)``)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "PPOConfig":
        """The config the parsed flags describe (flags named as the fields, dashes for underscores)."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def validate(self) -> None:
        """One clear line per problem, before any work starts."""
        for name in ("n_envs", "n_steps", "n_epochs", "frame_stack"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}.")
        rollout = self.n_steps * self.n_envs
        if self.batch_size < 1 or rollout % self.batch_size != 0:
            divisors = [d for d in SUGGESTED_BATCH_SIZES if rollout % d == 0 and d <= rollout]
            raise ConfigError(
                f"--batch-size {self.batch_size} must divide the rollout n_steps * n_envs = "
                f"{self.n_steps} * {self.n_envs} = {rollout}; try one of {divisors or [rollout]}."
            )
        if self.learning_rate <= 0:
            raise ConfigError(f"--learning-rate must be positive, got {self.learning_rate}.")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"--gamma must be in (0, 1], got {self.gamma}.")
        if not 0 <= self.gae_lambda <= 1:
            raise ConfigError(f"--gae-lambda must be in [0, 1], got {self.gae_lambda}.")
        if self.max_grad_norm <= 0:
            raise ConfigError(f"--max-grad-norm must be positive, got {self.max_grad_norm}.")

    def learning_rate_schedule(self, total_timesteps: int) -> Schedule:
        return make_schedule(self.lr_schedule, self.learning_rate, total_timesteps=total_timesteps,
                             half_life=self._half_life())

    def clip_range_schedule(self, total_timesteps: int) -> Schedule:
        return make_schedule(self.clip_schedule, self.clip_range, total_timesteps=total_timesteps,
                             half_life=self._half_life())

    def _half_life(self) -> float:
        """A fixed number of env steps (:data:`~rlbreakout.schedules.DEFAULT_HALF_LIFE` unless set), not a share of the run."""
        return DEFAULT_HALF_LIFE if self.half_life is None else self.half_life

    def ppo_kwargs(self, total_timesteps: int) -> dict[str, Any]:
        """The keyword arguments of ``stable_baselines3.PPO`` this config sets, schedules built.

        ``n_envs`` and ``frame_stack`` shape the env, not the algorithm, so they are not here.
        """
        return {
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "learning_rate": self.learning_rate_schedule(total_timesteps),
            "clip_range": self.clip_range_schedule(total_timesteps),
            "ent_coef": self.ent_coef,
            "vf_coef": self.vf_coef,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "max_grad_norm": self.max_grad_norm,
        }


#: rl-baselines3-zoo PPO for Atari: AtariWrapper, frame stack 4, 8 envs; lr and clip range linear.
ZOO_ATARI_PPO = PPOConfig()

#: Chapter 1's first PPO: SB3's defaults (n_steps 2048, batch 64, 10 epochs, lr 3e-4, clip 0.2) on one env.
SB3_DEFAULT_PPO = PPOConfig(
    n_envs=1, n_steps=2048, batch_size=64, n_epochs=10, learning_rate=3e-4, lr_schedule="constant",
    clip_range=0.2, clip_schedule="constant", ent_coef=0.0,
)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_ppo_flags(parser: argparse.ArgumentParser, defaults: PPOConfig) -> argparse.ArgumentParser:
    """One flag per :class:`PPOConfig` field (``n_envs`` is the common ``--n-envs``), defaults from ``defaults``."""
    group = parser.add_argument_group("PPO hyperparameters")
    for spec in dataclasses.fields(PPOConfig):
        default = getattr(defaults, spec.name)
        if spec.name in COMMON_FLAG_FIELDS:
            parser.set_defaults(**{spec.name: default})
            continue
        kwargs: dict[str, Any] = {"type": spec.metadata["type"], "default": default, "help": spec.metadata["help"], "dest": spec.name}
        if "choices" in spec.metadata:
            kwargs["choices"] = spec.metadata["choices"]
        group.add_argument(_flag(spec.name), **kwargs)
    return parser


def markdown_table(params: dict[str, Any]) -> str:
    """A two-column markdown table, the form TensorBoard's text tab renders."""
    rows = ["| parameter | value |", "|---|---|"]
    rows += [f"| {key} | {value} |" for key, value in params.items()]
    return "\n".join(rows)
