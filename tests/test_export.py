"""Exporting a --fast policy to SB3's stock CnnPolicy: same network, same actions, SB3 alone loads it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy, ActorCriticPolicy
from stable_baselines3.common.torch_layers import NatureCNN

from conftest import TINY_PPO_FLAGS, run_script, summary_of
from rlbreakout.errors import RLBreakoutError
from rlbreakout.results.export import export_stock_policy
from rlbreakout.speed.measure import MEASURE_ACTION_SPACE, MEASURE_OBS_SPACE
from rlbreakout.speed.policies import cnn_policy_kwargs, policy_class
from rlbreakout.training import load_policy

#: bf16 keeps 8 bits of mantissa: logits of the bf16 and fp32 forward passes agree to about this.
BF16_LOGIT_TOLERANCE = 0.05


def assert_acts_alike(trained: ActorCriticPolicy, exported: Path, tolerance: float) -> None:
    saved = torch.load(exported, map_location="cpu", weights_only=False)
    assert "rlbreakout" not in repr(saved["data"])  # SB3's classes only: stable-baselines3 alone loads it
    stock = ActorCriticPolicy.load(str(exported), device="cpu")
    assert type(stock.features_extractor) is NatureCNN and not stock.mlp_extractor.policy_net
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in stock.parameters())
    observations = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (8, 4, 84, 84), dtype=np.uint8))
    with torch.no_grad():
        trained_logits = trained.get_distribution(observations).distribution.logits
        stock_logits = stock.get_distribution(observations).distribution.logits
        trained_values, stock_values = trained.predict_values(observations), stock.predict_values(observations)
    assert torch.allclose(trained_logits.float(), stock_logits, atol=tolerance)
    assert torch.allclose(trained_values.float(), stock_values, atol=tolerance)


# Every precision and layout branch, forced: bf16 autocast runs (emulated) on any CPU.
@pytest.mark.parametrize("precision,channels_last", [("bf16", True), ("bf16", False), ("fp32", True), ("fp32", False)])
def test_each_fast_policy_exports_to_a_stock_one(tmp_path: Path, precision: str, channels_last: bool) -> None:
    kwargs = cnn_policy_kwargs(precision, channels_last=channels_last)
    policy_type = policy_class(kwargs)
    policy_type = ActorCriticCnnPolicy if policy_type == "CnnPolicy" else policy_type
    trained = policy_type(MEASURE_OBS_SPACE, MEASURE_ACTION_SPACE, lambda _: 2.5e-4, **kwargs).eval()
    with torch.no_grad():  # a forward pass switches channels_last weights to their layout
        trained.get_distribution(torch.zeros((1, 4, 84, 84), dtype=torch.uint8))
    source = tmp_path / "policy.pt"
    trained.save(str(source))
    out = export_stock_policy(source, tmp_path / "models" / "stock.pt")
    assert_acts_alike(trained, out, BF16_LOGIT_TOLERANCE if precision == "bf16" else 1e-5)


@pytest.mark.slow
def test_a_trained_fast_run_exports_from_its_model_zip(tmp_path: Path) -> None:
    result = run_script("2_baselines/2.3_copying_hp_zoo.py", *TINY_PPO_FLAGS, "--fast", "--gif-games", "0",
                        "--logdir", str(tmp_path / "runs"))
    _, summary = summary_of(result)
    out = export_stock_policy(summary["model_path"], tmp_path / "models" / "policy.pt")
    assert out.stat().st_size < 10 * 1024 * 1024
    assert_acts_alike(load_policy(summary["model_path"], device="cpu").policy, out, BF16_LOGIT_TOLERANCE)


def test_export_of_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RLBreakoutError, match="does not exist"):
        export_stock_policy(tmp_path / "nothing.zip", tmp_path / "out.pt")
