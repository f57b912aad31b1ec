"""bf16 / channels_last extractors, precision fallback, thread choice and the --fast helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn as nn
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN

from rlbreakout import allocator, fast
from rlbreakout.errors import ConfigError

IMAGE_SPACE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACTIONS = gym.spaces.Discrete(4)
FEATURES = 512
#: bf16 keeps 8 mantissa bits: relative rounding ~0.4 % per operation, a few % after a deep net.
BF16_RELATIVE_TOLERANCE = 0.05


@pytest.fixture(autouse=True)
def restore_threads() -> Any:
    """One torch thread while testing (a shared machine), the old count and no thread choice after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
    fast._chosen_threads.clear()


def images(batch: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.integers(0, 256, (batch, *IMAGE_SPACE.shape)), dtype=torch.float32) / 255.0


def policy(policy_kwargs: dict[str, Any], seed: int = 0) -> ActorCriticCnnPolicy:
    torch.manual_seed(seed)
    return ActorCriticCnnPolicy(IMAGE_SPACE, ACTIONS, lambda _: 2.5e-4, **policy_kwargs)


# %% Hardware checks and precision
def test_cpu_flags_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    assert fast._cpu_flags(str(cpuinfo)) & fast.CPU_BF16_FLAGS == {"avx512_bf16"}
    assert fast._cpu_flags(str(tmp_path / "missing")) == set()


def test_bf16_supported_follows_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast, "_cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert fast.bf16_supported("cpu")
    monkeypatch.setattr(fast, "_cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not fast.bf16_supported("cpu")
    assert not fast.bf16_supported("mps")


def test_resolve_precision(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert fast.resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        fast.resolve_precision("fp16", "cpu")
    monkeypatch.setattr(fast, "bf16_supported", lambda device: True)
    assert fast.resolve_precision("bf16", "cpu") == "bf16"
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(fast, "bf16_supported", lambda device: False)
    assert fast.resolve_precision("bf16", "cpu") == "fp32"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning:") and "fp32" in err


# %% The extractor
def test_bf16_extractor_returns_float32_features_close_to_fp32() -> None:
    stock = NatureCNN(IMAGE_SPACE)
    mixed = fast.BF16NatureCNN(IMAGE_SPACE, autocast_min_batch=1)
    mixed.load_state_dict(stock.state_dict())
    x = images(16)
    with torch.no_grad():
        expected, got = stock(x), mixed(x)
    assert got.dtype == torch.float32 and got.shape == (16, FEATURES)
    assert mixed.cnn[0].weight.is_contiguous(memory_format=torch.channels_last)
    relative = (got - expected).norm() / expected.norm()
    assert 0 < relative < BF16_RELATIVE_TOLERANCE  # > 0: bf16 really ran


def test_small_batches_skip_autocast() -> None:
    stock = NatureCNN(IMAGE_SPACE)
    mixed = fast.BF16NatureCNN(IMAGE_SPACE, autocast_min_batch=32)
    mixed.load_state_dict(stock.state_dict())
    x = images(8)
    with torch.no_grad():
        torch.testing.assert_close(mixed(x), stock(x), rtol=1e-4, atol=1e-5)  # fp32, only the layout differs


def test_gradients_flow_in_float32() -> None:
    mixed = fast.BF16NatureCNN(IMAGE_SPACE, autocast_min_batch=1)
    mixed(images(4)).sum().backward()
    for name, param in mixed.named_parameters():
        assert param.grad is not None and param.grad.dtype == torch.float32, name


def test_same_parameter_shapes_as_stock_cnn_policy() -> None:
    stock = {n: p.shape for n, p in policy({}).named_parameters()}
    for precision in fast.PRECISION_CHOICES:
        mixed = {n: p.shape for n, p in policy(fast.cnn_policy_kwargs(precision, channels_last=True)).named_parameters()}
        assert mixed == stock, precision


def test_the_net_arch_trap_is_real() -> None:
    """Without ``net_arch=[]`` a NatureCNN subclass silently gets 64-64 tanh heads (why we pass it)."""
    kwargs = fast.cnn_policy_kwargs("bf16")
    assert kwargs["net_arch"] == [] and kwargs["features_extractor_kwargs"]["bf16"] is True
    trapped = policy({k: v for k, v in kwargs.items() if k != "net_arch"})
    assert len(list(trapped.parameters())) > len(list(policy({}).parameters()))


def test_fp32_without_channels_last_is_stock() -> None:
    assert fast.cnn_policy_kwargs("fp32") == {}
    with pytest.raises(ConfigError):
        fast.cnn_policy_kwargs("half")


def test_same_initial_weights_as_stock() -> None:
    """Same seed, same initial network: parity runs start from the same point."""
    stock = policy({}, seed=3).state_dict()
    mixed = policy(fast.cnn_policy_kwargs("bf16"), seed=3).state_dict()
    for name, tensor in stock.items():
        torch.testing.assert_close(mixed[name], tensor)


def test_policy_class_is_stock_unless_the_extractor_is_mixed_precision() -> None:
    assert fast.policy_class({}) == "CnnPolicy"
    assert fast.policy_class(fast.cnn_policy_kwargs("bf16")) is fast.MixedPrecisionCnnPolicy
    assert fast.policy_class(fast.cnn_policy_kwargs("fp32", channels_last=True)) is fast.MixedPrecisionCnnPolicy
    assert fast.policy_class({"features_extractor_class": NatureCNN}) == "CnnPolicy"


@pytest.mark.parametrize("precision", fast.PRECISION_CHOICES)
def test_mixed_precision_policy_scales_uint8_images_itself_to_the_same_features(precision: str) -> None:
    """The uint8 batch reaches the extractor unscaled, and the features equal SB3's float32 / 255 path."""
    # (fp32 without channels_last is the stock extractor, which this policy leaves alone)
    kwargs = fast.cnn_policy_kwargs(precision, channels_last=precision == "fp32", autocast_min_batch=1)
    torch.manual_seed(0)
    mixed = fast.MixedPrecisionCnnPolicy(IMAGE_SPACE, ACTIONS, lambda _: 2.5e-4, **kwargs)
    seen: list[torch.dtype] = []
    mixed.features_extractor.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    obs = (images(8, seed=1) * 255).round().to(torch.uint8)
    with torch.no_grad():
        ours = mixed.extract_features(obs)
        sb3_path = ActorCriticCnnPolicy.extract_features(mixed, obs)  # float32 / 255, then the extractor
    assert seen == [torch.uint8, torch.float32]
    assert ours.dtype == torch.float32 and ours.shape == (8, FEATURES)
    assert torch.equal(ours, sb3_path)
    with torch.no_grad():  # and the scaling really happens: unscaled pixels give other features
        assert not torch.allclose(ours, mixed.features_extractor(obs.float()), atol=1e-3)
    stock_shapes = {n: p.shape for n, p in policy({}).named_parameters()}
    assert {n: p.shape for n, p in mixed.named_parameters()} == stock_shapes


def test_mixed_precision_policy_leaves_float_images_to_sb3() -> None:
    """Float observations (already scaled, or a wrapper's own) take SB3's preprocessing unchanged."""
    mixed = fast.MixedPrecisionCnnPolicy(IMAGE_SPACE, ACTIONS, lambda _: 2.5e-4, **fast.cnn_policy_kwargs("bf16"))
    obs = images(2) * 255
    with torch.no_grad():
        assert torch.equal(mixed.extract_features(obs), mixed.features_extractor(obs / 255.0))


class TinyExtractor(BaseFeaturesExtractor):
    """Stands in for chapter 3's extractor: any BaseFeaturesExtractor can be made mixed-precision."""

    def __init__(self, observation_space: gym.Space, features_dim: int = 16) -> None:
        super().__init__(observation_space, features_dim)
        self.conv = nn.Conv2d(observation_space.shape[0], 4, kernel_size=8, stride=8)
        self.linear = nn.Linear(4 * 10 * 10, features_dim)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.relu(self.conv(observations)).flatten(1))


def test_any_extractor_can_be_made_mixed_precision() -> None:
    kwargs = fast.cnn_policy_kwargs("bf16", features_extractor_class=TinyExtractor,
                                    features_extractor_kwargs={"features_dim": 16}, autocast_min_batch=1)
    assert "net_arch" not in kwargs  # stock default heads for a non-NatureCNN extractor, as in stock SB3
    extractor = kwargs["features_extractor_class"](IMAGE_SPACE, **kwargs["features_extractor_kwargs"])
    assert isinstance(extractor, TinyExtractor)
    out = extractor(images(4))
    assert out.dtype == torch.float32 and out.shape == (4, 16)
    stock_shapes = {n: p.shape for n, p in policy({"features_extractor_class": TinyExtractor,
                                                   "features_extractor_kwargs": {"features_dim": 16}}).named_parameters()}
    assert {n: p.shape for n, p in policy(kwargs).named_parameters()} == stock_shapes


@pytest.mark.slow
def test_ppo_learns_saves_and_loads(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    from rlbreakout.envs import make_env

    torch.set_num_threads(1)
    venv = make_env("BreakoutNoFrameskip-v4", 2, seed=0, backend="ale_vector")
    settings = fast.fast_settings(True, device="cpu", env_id="BreakoutNoFrameskip-v4", n_envs=2, verbose=False)
    torch.set_num_threads(1)
    model = PPO(settings["policy"], venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs=settings["policy_kwargs"])
    assert model.policy.optimizer.defaults["fused"] is True and model.policy.optimizer.defaults["eps"] == 1e-5
    before = {n: p.detach().clone() for n, p in model.policy.named_parameters()}
    model.learn(64)
    assert any(not torch.equal(before[n], p) for n, p in model.policy.named_parameters())
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert isinstance(loaded.policy, fast.MixedPrecisionCnnPolicy)
    obs = venv.reset()
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    venv.close()


# %% Threads
def test_configure_threads_uses_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(fast, "busy_cores", lambda cpus, path: 0.2)
    quiet = fast.configure_threads(8)
    assert (quiet["torch_threads"], quiet["ale_threads"], quiet["free_cores"]) == (2, 2, 2)
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(fast, "busy_cores", lambda cpus, path: 1.3)  # another process holds a core
    busy = fast.configure_threads(8)
    assert (busy["torch_threads"], busy["ale_threads"], busy["busy_cores"]) == (1, 1, 1.3)
    assert torch.get_num_threads() == 1
    assert fast.chosen_ale_threads(8) == 1
    monkeypatch.setattr(fast, "busy_cores", lambda cpus, path: 7.0)
    assert fast.configure_threads(1, apply=False)["free_cores"] == 1  # never below one
    explicit = fast.configure_threads(1, torch_threads=3, ale_threads=4, apply=False)
    assert (explicit["torch_threads"], explicit["ale_threads"]) == (3, 1)  # ALE: at most one per env


def _proc_stat(cpu0: tuple[int, int], cpu1: tuple[int, int]) -> str:
    """A /proc/stat with (busy user ticks, idle ticks) per CPU; the aggregate line must be ignored."""
    lines = ["cpu  999999 0 0 1 0 0 0 0 0 0"]
    for index, (user, idle) in enumerate((cpu0, cpu1)):
        lines.append(f"cpu{index} {user} 0 0 {idle} 0 0 0 0 0 0")
    return "\n".join(lines + ["intr 12345", "ctxt 678"]) + "\n"


def test_busy_cores_counts_only_the_sample_window(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # Since boot cpu0 was mostly busy (a load average would still say so) ...
    stat.write_text(_proc_stat((90_000, 10_000), (50_000, 50_000)))
    # ... but during the window cpu0 is fully busy and cpu1 idle: one core busy now.
    monkeypatch.setattr(fast.time, "sleep", lambda seconds: stat.write_text(_proc_stat((90_025, 10_000), (50_000, 50_025))))
    assert fast.busy_cores({0, 1}, path=str(stat)) == pytest.approx(1.0)
    stat.write_text(_proc_stat((90_000, 10_000), (50_000, 50_000)))
    assert fast.busy_cores({1}, path=str(stat)) == pytest.approx(0.0)  # only the CPUs we may use count


def test_free_cores_falls_back_to_the_load_average(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fast, "PROC_STAT_PATH", str(tmp_path / "missing"))
    monkeypatch.setattr(fast.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(fast.os, "getloadavg", lambda: (1.3, 0.0, 0.0))
    assert fast.free_cores() == (2, 1.3, 1)


def test_busy_cores_on_this_machine_is_within_its_cores() -> None:
    cpus = fast._affinity()
    busy = fast.busy_cores(cpus, sample_seconds=0.05)
    if Path(fast.PROC_STAT_PATH).exists():
        assert busy is not None and 0.0 <= busy <= len(cpus)
    else:
        assert busy is None


# %% The one call of the training scripts
def test_fast_settings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(fast, "bf16_supported", lambda device: True)
    stock = fast.fast_settings(False, device="cpu", env_id="BreakoutNoFrameskip-v4")
    assert (stock["backend"], stock["precision"], stock["policy_kwargs"], stock["threads"]) == ("classic", "fp32", {}, {})
    assert stock["policy"] == "CnnPolicy"

    quick = fast.fast_settings(True, device="cpu", env_id="BreakoutNoFrameskip-v4", n_envs=8)
    assert (quick["backend"], quick["precision"]) == ("ale_vector", "bf16")
    assert quick["policy_kwargs"]["features_extractor_class"] is fast.BF16NatureCNN
    assert quick["policy"] is fast.MixedPrecisionCnnPolicy
    assert quick["policy_kwargs"]["optimizer_kwargs"] == {"eps": 1e-5, "fused": True}  # SB3's eps kept
    assert quick["keeps_freed_memory"] is allocator.uses_glibc() and stock["keeps_freed_memory"] is False
    assert quick["policy_kwargs"]["features_extractor_kwargs"]["channels_last"] is False  # slower on CPU
    cuda = fast.fast_settings(True, device="cuda", env_id="BreakoutNoFrameskip-v4", verbose=False)
    assert cuda["policy_kwargs"]["features_extractor_kwargs"]["channels_last"] is True
    assert quick["threads"]["ale_threads"] >= 1
    assert "fast: backend=ale_vector precision=bf16" in capsys.readouterr().out

    v4 = fast.fast_settings(True, device="cpu", env_id="Breakout-v4")
    assert v4["backend"] == "classic" and "random 2-4 frames" in v4["notes"][0]
    assert fast.fast_settings(True, device="cpu", wrapper="aimbot", verbose=False)["backend"] == "classic"
    explicit = fast.fast_settings(True, "fp32", "classic", "cpu", verbose=False)
    assert (explicit["backend"], explicit["precision"]) == ("classic", "fp32")
    assert explicit["policy_kwargs"] == {"optimizer_kwargs": {"eps": 1e-5, "fused": True}}  # the stock network
    assert fast.fast_settings(False, "fp32", "classic", "cpu", verbose=False)["policy_kwargs"] == {}
    with pytest.raises(ConfigError, match="unknown backend"):
        fast.fast_settings(True, backend="gpu", verbose=False)


def test_paired_gradients_agree_with_fp32() -> None:
    """Same weights, same minibatch: bf16 gradients point where fp32's do (a paired check, not proof)."""
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.integers(0, 256, (64, *IMAGE_SPACE.shape)), dtype=torch.uint8)
    actions = torch.as_tensor(rng.integers(0, ACTIONS.n, 64))
    advantages = torch.as_tensor(rng.normal(size=64), dtype=torch.float32)
    grads = []
    for kwargs in ({}, fast.cnn_policy_kwargs("bf16")):
        model = policy(kwargs, seed=1)
        values, log_prob, entropy = model.evaluate_actions(obs, actions)
        loss = -(log_prob * advantages).mean() + 0.5 * values.pow(2).mean() - 0.01 * entropy.mean()
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.995  # measured 1.0000 on AVX-512-BF16
    assert (grads[1].norm() / grads[0].norm() - 1).abs() < 0.02
