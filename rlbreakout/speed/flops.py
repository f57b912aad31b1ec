"""The physical limit: this machine's matrix-multiply peak, and the FLOPs of PPO's network.

Why: "392 env steps/s" says nothing about how close a training loop is to what the CPU can
do. Dividing the FLOPs a training step really performs by its time, and that by the peak of
a large matrix multiply in the same precision, does: it is the share of the arithmetic units
the step keeps busy. ``0_setup/0.2_benchmark.py`` prints these shares.

* The peak is measured, not taken from a data sheet: the best of a few ``torch.mm`` of two
  large square matrices, in fp32 and (where the hardware has it) bf16, with the threads the
  caller set. That is the ceiling of any convolution, which oneDNN also runs as matrix work.
* The FLOPs are counted by torch itself (:class:`torch.utils.flop_counter.FlopCounterMode`,
  which counts the matrix multiplies and convolutions of a forward and a backward pass;
  elementwise ops and Adam are left out, as is usual). :func:`nature_cnn_forward_flops`
  counts the Nature CNN by hand, and the tests check torch's count against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

#: Side of the square matrices of the peak measurement: large enough that the multiply,
#: not the call, is timed (2 x 2048^3 = 17 GFLOP, ~0.1 s on 2 cores), small enough for seconds.
PEAK_MATRIX_SIZE = 2048
PEAK_REPEATS = 5
PEAK_WARMUP = 1
#: A multiply-add counts as two floating-point operations.
FLOPS_PER_MAC = 2
#: Nature CNN (Mnih et al., 2015), as SB3's NatureCNN builds it: (out channels, kernel, stride).
NATURE_CONVS: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
NATURE_FEATURES = 512
#: Precisions of the peak measurement, by name.
PEAK_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(precision: str = "fp32", *, size: int = PEAK_MATRIX_SIZE, repeats: int = PEAK_REPEATS,
                device: str = "cpu") -> float:
    """FLOP/s of the fastest of ``repeats`` ``size`` x ``size`` matrix products in ``precision``."""
    where = torch.device(device)
    dtype = PEAK_DTYPES[precision]
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(where, dtype)
    b = torch.randn(size, size, generator=generator).to(where, dtype)
    best = float("inf")
    for index in range(PEAK_WARMUP + repeats):
        _synchronize(where)
        start = time.perf_counter()
        torch.mm(a, b)
        _synchronize(where)
        if index >= PEAK_WARMUP:
            best = min(best, time.perf_counter() - start)
    return FLOPS_PER_MAC * size**3 / best


def count_flops(work: Callable[[], Any]) -> int:
    """FLOPs torch counts while ``work()`` runs (matrix multiplies and convolutions, forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        work()
    return int(counter.get_total_flops())


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def nature_cnn_forward_flops(obs_shape: tuple[int, int, int] = (4, 84, 84), n_actions: int = 4,
                             value_head: bool = True) -> int:
    """FLOPs of one observation through the Nature CNN and its heads, counted by hand.

    A convolution costs 2 x in-channels x kernel^2 FLOPs per output value; a linear layer
    2 x inputs x outputs. For 4 x 84 x 84 frames: 6.6 + 5.3 + 3.6 MFLOP of convolutions, 3.2 of
    the 512-unit layer, a few thousand in the heads: about 19 MFLOP.
    """
    channels, height, width = obs_shape
    flops = 0
    for out_channels, kernel, stride in NATURE_CONVS:
        height, width = _conv_out(height, kernel, stride), _conv_out(width, kernel, stride)
        flops += FLOPS_PER_MAC * channels * kernel * kernel * out_channels * height * width
        channels = out_channels
    flops += FLOPS_PER_MAC * channels * height * width * NATURE_FEATURES
    flops += FLOPS_PER_MAC * NATURE_FEATURES * (n_actions + (1 if value_head else 0))
    return flops


def policy_flops(policy: Any, batch_size: int) -> dict[str, int]:
    """FLOPs of an SB3 actor-critic policy on ``batch_size`` uint8 observations.

    ``inference``: one forward pass as the rollout makes it (actions, values, log-probs);
    ``training``: one PPO minibatch, ``evaluate_actions`` plus the backward pass of a loss on
    its outputs. Parameters' gradients are left as they were.
    """
    shape = policy.observation_space.shape
    obs = torch.randint(0, 256, (batch_size, *shape), dtype=torch.uint8, device=policy.device)
    actions = torch.zeros(batch_size, dtype=torch.long, device=policy.device)

    def infer() -> None:
        with torch.no_grad():
            policy(obs)

    def train() -> None:
        values, log_prob, entropy = policy.evaluate_actions(obs, actions)
        (values.mean() + log_prob.mean() + entropy.mean()).backward()

    saved = [None if p.grad is None else p.grad.clone() for p in policy.parameters()]
    counts = {"inference": count_flops(infer), "training": count_flops(train)}
    for parameter, grad in zip(policy.parameters(), saved):
        parameter.grad = grad
    return counts
