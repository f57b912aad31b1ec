"""The physical limit: the matrix-multiply peak and the FLOPs of PPO's network."""

from __future__ import annotations

import time

import pytest
import torch

from rlbreakout.speed.measure import measurement_policy
from rlbreakout.speed.flops import count_flops, matmul_peak, nature_cnn_forward_flops, policy_flops

#: The Nature CNN by hand for 4 x 84 x 84 frames and 4 actions (2 FLOPs per multiply-add):
#: convs 4*8*8*32*20*20 + 32*4*4*64*9*9 + 64*3*3*64*7*7 MACs, then 3136*512, then 512*(4+1).
NATURE_CNN_FLOPS = 2 * (4 * 64 * 32 * 400 + 32 * 16 * 64 * 81 + 64 * 9 * 64 * 49 + 3136 * 512 + 512 * 5)
LEVERS = [{"precision": "fp32", "channels_last": False}, {"precision": "fp32", "channels_last": True}]


def test_hand_count_of_the_nature_cnn() -> None:
    assert nature_cnn_forward_flops() == NATURE_CNN_FLOPS == 18_691_072
    assert nature_cnn_forward_flops(value_head=False) == NATURE_CNN_FLOPS - 2 * 512


def test_torch_counts_a_known_matrix_product() -> None:
    a, b = torch.ones(3, 5), torch.ones(5, 7)
    assert count_flops(lambda: a @ b) == 2 * 3 * 5 * 7


@pytest.mark.parametrize("levers", LEVERS, ids=["NCHW", "channels_last"])
def test_policy_flops_match_the_hand_count(levers: dict) -> None:
    policy = measurement_policy(levers, "cpu")
    before = [None if p.grad is None else p.grad.clone() for p in policy.parameters()]
    counts = policy_flops(policy, batch_size=3)
    assert counts["inference"] == 3 * NATURE_CNN_FLOPS
    # backward: every weight gradient (as much as the forward) and every input gradient but the
    # first convolution's (the pixels need none): 2.65x the forward in all
    first_conv = 2 * 4 * 64 * 32 * 400
    assert counts["training"] == 3 * (3 * NATURE_CNN_FLOPS - first_conv)
    assert all(p.grad is None for p in policy.parameters()) and all(g is None for g in before)


def test_matmul_peak_is_the_counted_work_over_the_time_of_one_product() -> None:
    size = 256
    rate = matmul_peak("fp32", size=size, repeats=5)
    a, b = torch.randn(size, size), torch.randn(size, size)
    work = count_flops(lambda: a @ b)  # 2 x 256^3, as torch counts it
    seconds = []
    for _ in range(8):  # the fastest of several products, timed here apart from matmul_peak
        start = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - start)
    # rate x time = work, within the noise of a busy CPU (a factor 64 either way; a wrong power
    # of the size is a factor 256 off)
    assert 1 / 64 < rate * min(seconds) / work < 64
    with pytest.raises(KeyError):
        matmul_peak("fp8", size=8)
