"""Hyperparameters that the tutorial copies, kept in one place.

``ZOO_ATARI_PPO`` is rl-baselines3-zoo's ``hyperparams/ppo.yml`` entry for Atari
(used for Breakout): AtariWrapper, frame stack 4, 8 envs, and the values below.
"""

from __future__ import annotations

from typing import Any

#: rl-baselines3-zoo PPO for Atari. ``learning_rate`` and ``clip_range`` are linear schedules.
ZOO_ATARI_PPO: dict[str, Any] = {
    "n_envs": 8,
    "frame_stack": 4,
    "n_timesteps": 10_000_000,
    "policy": "CnnPolicy",
    "n_steps": 128,
    "n_epochs": 4,
    "batch_size": 256,
    "learning_rate": 2.5e-4,
    "learning_rate_schedule": "linear",
    "clip_range": 0.1,
    "clip_range_schedule": "linear",
    "vf_coef": 0.5,
    "ent_coef": 0.01,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "max_grad_norm": 0.5,
}

#: Chapter 1's first PPO: SB3 defaults (n_steps 2048, batch 64, 10 epochs, lr 3e-4) on one env.
SB3_DEFAULT_PPO: dict[str, Any] = {
    "n_envs": 1,
    "frame_stack": 4,
    "n_steps": 2048,
    "n_epochs": 10,
    "batch_size": 64,
    "learning_rate": 3e-4,
    "learning_rate_schedule": "constant",
    "clip_range": 0.2,
    "clip_range_schedule": "constant",
    "vf_coef": 0.5,
    "ent_coef": 0.0,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "max_grad_norm": 0.5,
}


def markdown_table(params: dict[str, Any]) -> str:
    """A two-column markdown table, the form TensorBoard's text tab renders."""
    rows = ["| parameter | value |", "|---|---|"]
    rows += [f"| {key} | {value} |" for key, value in params.items()]
    return "\n".join(rows)
