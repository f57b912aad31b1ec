"""Turn a trained policy into the small stock file that models/ commits.

A ``--fast`` run saves its policy with the mixed-precision extractor (bf16 autocast,
maybe channels_last weights), a class that only rlbreakout can unpickle. The network's
parameters have the stock Nature-CNN names and shapes, so :func:`export_stock_policy`
copies them, as contiguous float32, into SB3's own ``CnnPolicy`` and saves weights only
(no optimiser state): a file stable-baselines3 alone loads, a third of a PPO zip's size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy

from rlbreakout.errors import RLBreakoutError
from rlbreakout.training import load_policy

#: A committed model must stay small (the repository's limit for models/).
MAX_MODEL_BYTES = 10 * 1024 * 1024


def _constant_schedule(_: float) -> float:
    """The optimiser of an exported policy is never stepped; its learning rate is moot."""
    return 0.0


def stock_policy(policy: Any) -> ActorCriticCnnPolicy:
    """SB3's stock ``CnnPolicy`` (fp32, NCHW) holding ``policy``'s weights."""
    stock = ActorCriticCnnPolicy(policy.observation_space, policy.action_space, _constant_schedule, net_arch=[])
    source = policy.state_dict()
    target = stock.state_dict()
    if set(source) != set(target) or any(source[k].shape != target[k].shape for k in target):
        raise RLBreakoutError("the policy's network is not the stock Nature CNN (different parameters); "
                              "only CnnPolicy-shaped policies can be exported.")
    stock.load_state_dict({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in source.items()})
    return stock.eval()


def export_stock_policy(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """Save the policy in ``source`` (a run's model.zip or policy.pt) as a stock fp32 policy file."""
    loaded = load_policy(source, device="cpu")
    stock = stock_policy(getattr(loaded, "policy", loaded))
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    stock.save(str(destination))
    size = destination.stat().st_size
    if size > MAX_MODEL_BYTES:
        destination.unlink()
        raise RLBreakoutError(f"exported policy is {size} bytes, over {MAX_MODEL_BYTES}; it cannot go into models/.")
    return destination
