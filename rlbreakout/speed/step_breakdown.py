"""Where SB3's PPO training step spends its time: forward, backward, optimiser, and the rest.

Why plain timers around SB3's own calls, not a copy of its loop: the figures must be those
of the ``PPO.train()`` that ``--fast`` runs. :func:`timed_training_parts` wraps, for the time
of a ``with`` block, the four calls each minibatch makes:

* ``policy.evaluate_actions`` (the forward pass): **forward**;
* ``Tensor.backward``: **backward**;
* ``clip_grad_norm_`` and ``optimizer.step``: **optimiser**;
* everything else inside ``train()``: **rest** (sampling the minibatch from the rollout
  buffer and copying it into tensors, the loss arithmetic, SB3's logging and ``.item()``
  calls, Python).

torch.profiler would split the same time by operator; these four buckets are what a
decision needs (is the network the cost, or what surrounds it?). On a GPU each timer
synchronises, so the buckets hold the kernels' time, not their launch.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

#: The buckets, in the order tables print them.
PARTS: tuple[str, ...] = ("forward", "backward", "optimiser", "rest")


@dataclass
class TrainCall:
    """Seconds of one ``train()`` call, and of each measured part inside it."""

    total: float = 0.0
    parts: dict[str, float] = field(default_factory=lambda: {part: 0.0 for part in PARTS if part != "rest"})
    minibatches: int = 0

    @property
    def rest(self) -> float:
        return max(self.total - sum(self.parts.values()), 0.0)

    def as_dict(self) -> dict[str, float]:
        return {**self.parts, "rest": self.rest}


@dataclass
class TrainingParts:
    """Every ``train()`` call timed inside :func:`timed_training_parts`."""

    calls: list[TrainCall] = field(default_factory=list)

    def steady(self) -> list[TrainCall]:
        """The calls after the first (its first-call costs are not the steady state), or the only one."""
        return self.calls[1:] if len(self.calls) > 1 else list(self.calls)

    def per_minibatch_ms(self) -> dict[str, float]:
        """Milliseconds of each part per minibatch, over the steady calls, plus ``total``."""
        calls = self.steady()
        minibatches = sum(call.minibatches for call in calls)
        if not minibatches:
            return {}
        sums = {part: sum(call.as_dict()[part] for call in calls) for part in PARTS}
        sums["total"] = sum(call.total for call in calls)
        return {part: 1000 * seconds / minibatches for part, seconds in sums.items()}


def _timed(function: Callable[..., Any], add: Callable[[float], None], device: torch.device) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            add(time.perf_counter() - start)
    return wrapper


@contextlib.contextmanager
def timed_training_parts(model: Any) -> Iterator[TrainingParts]:
    """Time each ``model.train()`` call and its forward / backward / optimiser parts while the block runs.

    :param model: an SB3 on-policy model (PPO); its methods are wrapped on the instance, and
        ``Tensor.backward`` and ``torch.nn.utils.clip_grad_norm_`` process-wide, all restored on exit
    """
    result = TrainingParts()
    device = torch.device(model.device)
    policy, optimizer = model.policy, model.policy.optimizer

    def adder(part: str) -> Callable[[float], None]:
        def add(seconds: float) -> None:
            if result.calls:  # calls outside train() (the rollout's forward passes) are not counted
                result.calls[-1].parts[part] += seconds
                if part == "forward":
                    result.calls[-1].minibatches += 1
        return add

    inside_train = False
    original_train = model.train
    original_backward = torch.Tensor.backward
    original_clip = torch.nn.utils.clip_grad_norm_

    def train(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside_train
        result.calls.append(TrainCall())
        inside_train = True
        try:
            return _timed(original_train, lambda s: setattr(result.calls[-1], "total", s), device)(*args, **kwargs)
        finally:
            inside_train = False

    def only_in_train(part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        timed = _timed(function, adder(part), device)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return timed(*args, **kwargs) if inside_train else function(*args, **kwargs)
        return wrapper

    model.train = train
    policy.evaluate_actions = only_in_train("forward", policy.evaluate_actions)
    optimizer.step = only_in_train("optimiser", optimizer.step)
    torch.Tensor.backward = only_in_train("backward", original_backward)  # type: ignore[method-assign]
    torch.nn.utils.clip_grad_norm_ = only_in_train("optimiser", original_clip)
    try:
        yield result
    finally:
        torch.Tensor.backward = original_backward  # type: ignore[method-assign]
        torch.nn.utils.clip_grad_norm_ = original_clip
        for instance, name in ((model, "train"), (policy, "evaluate_actions"), (optimizer, "step")):
            with contextlib.suppress(AttributeError):
                delattr(instance, name)
