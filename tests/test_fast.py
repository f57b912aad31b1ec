"""bf16 / channels_last extractors, the forced and real bf16 check, the measured levers, fast_settings."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.policies import ActorCriticCnnPolicy
from stable_baselines3.common.torch_layers import NatureCNN

from rlbreakout.errors import ConfigError
from rlbreakout.speed import allocator, fast, hardware, measure, policies

IMAGE_SPACE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACTIONS = gym.spaces.Discrete(4)
FEATURES = 512
#: bf16 keeps 8 mantissa bits: relative rounding ~0.4 % per operation, a few % after a deep net.
BF16_RELATIVE_TOLERANCE = 0.05
NOFRAMESKIP = "BreakoutNoFrameskip-v4"
#: Minibatch seconds of a fake measurement in which bf16 channels_last is fastest.
BF16_WINS = {"fp32 NCHW": 0.40, "fp32 channels_last": 0.30, "bf16 NCHW": 0.20, "bf16 channels_last": 0.10}


@pytest.fixture(autouse=True)
def restore_threads() -> Any:
    """One torch thread while testing (a shared machine), the old count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def compile_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """RLBREAKOUT_COMPILE unset: compile is measured, whatever the shell running the tests says."""
    monkeypatch.delenv(measure.COMPILE_ENV, raising=False)


@pytest.fixture
def bf16(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """``bf16(True)`` / ``bf16(False)``: the hardware check answers so, whatever this machine has
    (and RLBREAKOUT_FORCE_NO_BF16 is cleared, so "supported" holds even in a forced-off run)."""
    def force(supported: bool) -> None:
        monkeypatch.delenv(hardware.FORCE_NO_BF16_ENV, raising=False)
        monkeypatch.setattr(hardware, "bf16_hardware", lambda device: supported)

    return force


def fake_timer(monkeypatch: pytest.MonkeyPatch, seconds: Mapping[str, float]) -> list[str]:
    """Replace the real minibatch timing by ``seconds`` per candidate label; returns the labels timed."""
    timed: list[str] = []

    def time_minibatch(levers: Mapping[str, Any], device: str, batch_size: int, **_: Any) -> float:
        timed.append(measure.lever_label(levers))
        return seconds[measure.lever_label(levers)]

    monkeypatch.setattr(fast, "time_minibatch", time_minibatch)
    return timed


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
    assert hardware.cpu_flags(str(cpuinfo)) & hardware.CPU_BF16_FLAGS == {"avx512_bf16"}
    assert hardware.cpu_flags(str(tmp_path / "missing")) == set()


def test_bf16_hardware_follows_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert hardware.bf16_hardware("cpu")
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2"})
    assert not hardware.bf16_hardware("cpu")
    assert not hardware.bf16_hardware("mps")


def test_bf16_does_not_count_when_torch_runs_avx2_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    # ATEN_CPU_CAPABILITY=avx2 on a bf16 CPU: the flag is there, but bf16 would be emulated
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512_bf16", "amx_bf16"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not hardware.bf16_hardware("cpu")


def test_the_environment_variable_forces_bf16_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "bf16_hardware", lambda device: True)
    monkeypatch.delenv(hardware.FORCE_NO_BF16_ENV, raising=False)
    assert hardware.bf16_supported("cpu")
    monkeypatch.setenv(hardware.FORCE_NO_BF16_ENV, "0")
    assert hardware.bf16_supported("cpu")
    monkeypatch.setenv(hardware.FORCE_NO_BF16_ENV, "1")
    assert not hardware.bf16_supported("cpu") and not hardware.bf16_supported("cuda")
    assert measure.lever_candidates("cpu") == [{"precision": "fp32", "channels_last": False, "compile": False},
                                            {"precision": "fp32", "channels_last": True, "compile": False}]


def test_resolve_precision(bf16: Callable[[bool], None], capsys: pytest.CaptureFixture[str]) -> None:
    assert hardware.resolve_precision("fp32", "cpu") == "fp32"
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        hardware.resolve_precision("fp16", "cpu")
    bf16(True)
    assert hardware.resolve_precision("bf16", "cpu") == "bf16"
    assert capsys.readouterr().err == ""
    bf16(False)
    assert hardware.resolve_precision("bf16", "cpu") == "fp32"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning:") and "fp32" in err


# %% The extractor
def test_bf16_extractor_returns_float32_features_close_to_fp32() -> None:
    stock = NatureCNN(IMAGE_SPACE)
    mixed = policies.BF16NatureCNN(IMAGE_SPACE)
    mixed.load_state_dict(stock.state_dict())
    x = images(16)
    with torch.no_grad():
        expected, got = stock(x), mixed(x)
    assert got.dtype == torch.float32 and got.shape == (16, FEATURES)
    assert mixed.cnn[0].weight.is_contiguous(memory_format=torch.channels_last)
    relative = (got - expected).norm() / expected.norm()
    assert 0 < relative < BF16_RELATIVE_TOLERANCE  # > 0: bf16 really ran


def test_bf16_off_is_the_stock_extractor_in_another_layout() -> None:
    stock = NatureCNN(IMAGE_SPACE)
    mixed = policies.BF16NatureCNN(IMAGE_SPACE, bf16=False)
    mixed.load_state_dict(stock.state_dict())
    x = images(8)
    with torch.no_grad():
        torch.testing.assert_close(mixed(x), stock(x), rtol=1e-4, atol=1e-5)  # fp32, only the layout differs


def test_gradients_flow_in_float32() -> None:
    mixed = policies.BF16NatureCNN(IMAGE_SPACE)
    mixed(images(4)).sum().backward()
    for name, param in mixed.named_parameters():
        assert param.grad is not None and param.grad.dtype == torch.float32, name


def test_same_parameter_shapes_as_stock_cnn_policy() -> None:
    stock = {n: p.shape for n, p in policy({}).named_parameters()}
    for precision in hardware.PRECISION_CHOICES:
        mixed = {n: p.shape for n, p in policy(policies.cnn_policy_kwargs(precision, channels_last=True)).named_parameters()}
        assert mixed == stock, precision


def test_the_net_arch_trap_is_real() -> None:
    """Without ``net_arch=[]`` a NatureCNN subclass silently gets 64-64 tanh heads (why we pass it)."""
    kwargs = policies.cnn_policy_kwargs("bf16")
    assert kwargs["net_arch"] == [] and kwargs["features_extractor_kwargs"]["bf16"] is True
    trapped = policy({k: v for k, v in kwargs.items() if k != "net_arch"})
    assert len(list(trapped.parameters())) > len(list(policy({}).parameters()))


def test_fp32_without_channels_last_is_stock() -> None:
    assert policies.cnn_policy_kwargs("fp32") == {}
    assert policies.cnn_policy_kwargs("bf16")["features_extractor_kwargs"] == {"bf16": True, "channels_last": False}
    with pytest.raises(ConfigError):
        policies.cnn_policy_kwargs("half")


def test_same_initial_weights_as_stock() -> None:
    """Same seed, same initial network: parity runs start from the same point."""
    stock = policy({}, seed=3).state_dict()
    mixed = policy(policies.cnn_policy_kwargs("bf16"), seed=3).state_dict()
    for name, tensor in stock.items():
        torch.testing.assert_close(mixed[name], tensor)


def test_policy_class_is_stock_unless_the_extractor_is_mixed_precision() -> None:
    assert policies.policy_class({}) == "CnnPolicy"
    assert policies.policy_class(policies.cnn_policy_kwargs("bf16")) is policies.MixedPrecisionCnnPolicy
    assert policies.policy_class(policies.cnn_policy_kwargs("fp32", channels_last=True)) is policies.MixedPrecisionCnnPolicy
    assert policies.policy_class({"features_extractor_class": NatureCNN}) == "CnnPolicy"


@pytest.mark.parametrize("precision", hardware.PRECISION_CHOICES)
def test_mixed_precision_policy_scales_uint8_images_itself_to_the_same_features(precision: str) -> None:
    """The uint8 batch reaches the extractor unscaled, and the features equal SB3's float32 / 255 path."""
    # (fp32 without channels_last is the stock extractor, which this policy leaves alone)
    kwargs = policies.cnn_policy_kwargs(precision, channels_last=precision == "fp32")
    torch.manual_seed(0)
    mixed = policies.MixedPrecisionCnnPolicy(IMAGE_SPACE, ACTIONS, lambda _: 2.5e-4, **kwargs)
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
    mixed = policies.MixedPrecisionCnnPolicy(IMAGE_SPACE, ACTIONS, lambda _: 2.5e-4, **policies.cnn_policy_kwargs("bf16"))
    obs = images(2) * 255
    with torch.no_grad():
        assert torch.equal(mixed.extract_features(obs), mixed.features_extractor(obs / 255.0))


# %% Measuring the levers
def test_fastest_candidate_wins() -> None:
    candidates = measure.lever_candidates("cpu", "fp32") + measure.lever_candidates("cpu", "bf16")
    chosen, timings = fast.choose_levers(candidates, lambda c: BF16_WINS[measure.lever_label(c)])
    assert chosen == {"precision": "bf16", "channels_last": True, "compile": False}
    assert timings == BF16_WINS


def test_stock_is_kept_unless_something_is_faster() -> None:
    candidates = measure.lever_candidates("cpu", "fp32") + measure.lever_candidates("cpu", "bf16")
    slower = {label: 0.5 for label in BF16_WINS} | {"fp32 NCHW": 0.4}
    assert fast.choose_levers(candidates, lambda c: slower[measure.lever_label(c)])[0] == fast.STOCK_LEVERS
    tie = {label: 0.4 for label in BF16_WINS}  # a tie is not faster
    assert fast.choose_levers(candidates, lambda c: tie[measure.lever_label(c)])[0] == fast.STOCK_LEVERS


@pytest.mark.parametrize("supported", [False, True])
def test_bf16_is_a_candidate_only_where_supported(bf16: Callable[[bool], None], supported: bool) -> None:
    bf16(supported)
    candidates = measure.lever_candidates("cpu")
    assert candidates[0] == fast.STOCK_LEVERS
    assert {c["channels_last"] for c in candidates} == {False, True}
    assert ({c["precision"] for c in candidates} == {"fp32", "bf16"}) is supported
    if not supported:
        assert {c["precision"] for c in candidates} == {"fp32"}


@pytest.mark.parametrize("supported", [False, True])
def test_fast_settings_keeps_the_measured_fastest(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str], supported: bool) -> None:
    bf16(supported)
    timed = fake_timer(monkeypatch, BF16_WINS)
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2)
    expected = "bf16" if supported else "fp32"
    assert (speed.precision, speed.channels_last) == (expected, True)
    assert set(timed) == set(speed.timings) == ({*BF16_WINS} if supported else {"fp32 NCHW", "fp32 channels_last"})
    assert speed.policy_class is policies.MixedPrecisionCnnPolicy
    assert speed.policy_kwargs["features_extractor_kwargs"] == {"bf16": supported, "channels_last": True}
    assert speed.policy_kwargs["optimizer_kwargs"] == {"eps": 1e-5, "fused": True}  # SB3's eps kept
    out = capsys.readouterr().out
    assert out.startswith("fast: env backend ale_vector (C++ vector envs), recorded in config.json and summary.json; "
                          "evaluation plays on the classic envs\n")
    assert f"fast: levers {expected} channels_last (ms per training minibatch of 256 on cpu: fp32 NCHW 400" in out
    assert "fast: backend=ale_vector" in out


def test_stock_layout_when_nothing_measures_faster(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch) -> None:
    bf16(True)
    fake_timer(monkeypatch, {label: 0.4 for label in BF16_WINS} | {"fp32 NCHW": 0.3})
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, verbose=False)
    assert speed.levers == fast.STOCK_LEVERS and speed.policy_class == "CnnPolicy"
    assert speed.policy_kwargs == {"optimizer_kwargs": {"eps": 1e-5, "fused": True}}  # the stock network


def test_a_recorded_choice_is_reused_without_measuring(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bf16(True)
    timed = fake_timer(monkeypatch, BF16_WINS)
    first = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, verbose=False)
    timed.clear()
    config = first.to_config()  # what a run folder keeps in config.json
    again = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, levers=config)
    assert timed == [] and again.timings == {}
    assert again.levers == first.levers == {"precision": "bf16", "channels_last": True, "compile": False}
    assert "recorded choice, not measured" in capsys.readouterr().out
    # hardware that lost bf16 since (another machine) falls back to fp32, keeping the layout
    bf16(False)
    moved = fast.fast_settings(True, device="cpu", levers={"precision": "bf16", "channels_last": True}, verbose=False)
    assert moved.levers == {"precision": "fp32", "channels_last": True, "compile": False} and timed == []


def test_explicit_precision_wins_over_the_measurement(bf16: Callable[[bool], None],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    bf16(True)
    timed = fake_timer(monkeypatch, BF16_WINS)
    speed = fast.fast_settings(True, "fp32", device="cpu", verbose=False)
    assert speed.precision == "fp32" and set(timed) == {"fp32 NCHW", "fp32 channels_last"}
    recorded = fast.fast_settings(True, "fp32", device="cpu", verbose=False,
                                  levers={"precision": "bf16", "channels_last": False})
    assert recorded.levers == {"precision": "fp32", "channels_last": False, "compile": False}


def test_a_real_tiny_measurement(capsys: pytest.CaptureFixture[str]) -> None:
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, batch_size=8)
    candidates = measure.lever_candidates("cpu")
    assert speed.levers in candidates
    assert list(speed.timings) == [measure.lever_label(c) for c in candidates]
    assert all(seconds > 0 for seconds in speed.timings.values())
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fast: levers"))
    assert re.fullmatch(r"fast: levers (fp32|bf16) (NCHW|channels_last) \(ms per training minibatch of 8 on cpu: "
                        r"[A-Za-z0-9_ ]+ \d+(, [A-Za-z0-9_ ]+ \d+)*\)", line), line
    assert f"fast: levers {measure.lever_label(speed.levers)} (" in line


def test_time_minibatch_leaves_the_random_state_alone() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    assert measure.time_minibatch(fast.STOCK_LEVERS, "cpu", 4, repeats=1) > 0
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_cuda_levers_are_measured_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    speed = fast.fast_settings(True, device="cuda", env_id=NOFRAMESKIP, n_envs=2, batch_size=32)
    candidates = measure.lever_candidates("cuda")
    assert ({c["precision"] for c in candidates} == {"fp32", "bf16"}) is measure.bf16_supported("cuda")
    assert speed.levers in candidates and list(speed.timings) == [measure.lever_label(c) for c in candidates]
    assert "on cuda:" in capsys.readouterr().out
    policy_on_gpu = measure.measurement_policy(speed.levers, "cuda")
    obs = torch.randint(0, 256, (4, *IMAGE_SPACE.shape), dtype=torch.uint8, device="cuda")
    with torch.no_grad():
        assert policy_on_gpu.extract_features(obs).dtype == torch.float32


# %% The one call of the training scripts
def test_stock_settings(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch) -> None:
    bf16(True)
    timed = fake_timer(monkeypatch, BF16_WINS)
    stock = fast.fast_settings(False, device="cpu", env_id=NOFRAMESKIP)
    assert (stock.backend, stock.precision, stock.channels_last, stock.policy_kwargs) == ("classic", "fp32", False, {})
    assert stock.policy_class == "CnnPolicy" and stock.torch_threads is None and stock.keeps_freed_memory is False
    assert timed == []  # stock measures nothing and touches no threads
    asked = fast.fast_settings(False, "bf16", "ale_vector", "cpu", verbose=False)
    assert (asked.backend, asked.precision, asked.channels_last) == ("ale_vector", "bf16", False)
    assert asked.policy_class is policies.MixedPrecisionCnnPolicy and "optimizer_kwargs" not in asked.policy_kwargs


def test_fast_settings_backend_threads_and_config(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_timer(monkeypatch, BF16_WINS)
    quick = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=8, verbose=False)
    assert quick.backend == "ale_vector" and 1 <= quick.ale_threads <= 8 and quick.torch_threads >= 1
    assert quick.keeps_freed_memory is allocator.uses_glibc()
    config = quick.to_config()
    assert config["timings_ms"] == {k: round(v * 1000, 2) for k, v in quick.timings.items()}
    assert {"backend", "precision", "channels_last", "torch_threads", "ale_threads"} <= set(config)
    with pytest.raises(Exception):
        quick.precision = "fp32"  # type: ignore[misc]  # frozen
    v4 = fast.fast_settings(True, device="cpu", env_id="Breakout-v4", verbose=False)
    assert v4.backend == "classic" and "random 2-4 frames" in v4.notes[0]
    assert fast.fast_settings(True, device="cpu", wrapper="aimbot", env_id=NOFRAMESKIP, verbose=False).backend == \
        "ale_vector"  # the batched aimbot view (rlbreakout.aimbot.batched)
    raw = fast.fast_settings(True, device="cpu", wrapper="none", env_id=NOFRAMESKIP, verbose=False)
    assert raw.backend == "classic" and "not 'none'" in raw.notes[0]
    explicit = fast.fast_settings(True, "fp32", "classic", "cpu", verbose=False)
    assert (explicit.backend, explicit.precision) == ("classic", "fp32")
    with pytest.raises(ConfigError, match="unknown backend"):
        fast.fast_settings(True, backend="gpu", verbose=False)


@pytest.mark.slow
@pytest.mark.parametrize("supported", [False, True])
def test_ppo_learns_saves_and_loads(tmp_path: Path, bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch,
                                    supported: bool) -> None:
    from stable_baselines3 import PPO

    from rlbreakout.envs import make_env

    bf16(supported)
    fake_timer(monkeypatch, BF16_WINS)
    settings = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, verbose=False)
    assert settings.precision == ("bf16" if supported else "fp32")
    venv = make_env(NOFRAMESKIP, 2, seed=0, backend=settings.backend, ale_threads=settings.ale_threads)
    torch.set_num_threads(1)
    model = PPO(settings.policy_class, venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs=settings.policy_kwargs)
    assert model.policy.optimizer.defaults["fused"] is True and model.policy.optimizer.defaults["eps"] == 1e-5
    before = {n: p.detach().clone() for n, p in model.policy.named_parameters()}
    model.learn(64)
    assert any(not torch.equal(before[n], p) for n, p in model.policy.named_parameters())
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", device="cpu")
    assert type(loaded.policy) is type(model.policy)
    assert loaded.policy.features_extractor.bf16 is supported
    obs = venv.reset()
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    venv.close()


def test_the_shipped_policy_loads_with_stable_baselines3_alone() -> None:
    """models/ppo_breakout_policy.pt is a stock-architecture CnnPolicy: SB3 loads it without rlbreakout."""
    import subprocess
    import sys

    path = Path(__file__).resolve().parents[1] / "models" / "ppo_breakout_policy.pt"
    check = (
        "import sys; import numpy as np\n"
        "from stable_baselines3.common.policies import ActorCriticPolicy\n"
        f"policy = ActorCriticPolicy.load({str(path)!r}, device='cpu')\n"
        "actions, _ = policy.predict(np.zeros((2, 4, 84, 84), np.uint8), deterministic=True)\n"
        "assert not [m for m in sys.modules if m.startswith('rlbreakout')]\n"
        "print(type(policy.features_extractor).__name__, list(actions))\n"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    name, *_ = result.stdout.split()
    assert name == "NatureCNN"


def test_paired_gradients_agree_with_fp32() -> None:
    """Same weights, same minibatch: bf16 gradients point where fp32's do (a paired check, not proof)."""
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.integers(0, 256, (64, *IMAGE_SPACE.shape)), dtype=torch.uint8)
    actions = torch.as_tensor(rng.integers(0, ACTIONS.n, 64))
    advantages = torch.as_tensor(rng.normal(size=64), dtype=torch.float32)
    grads = []
    for kwargs in ({}, policies.cnn_policy_kwargs("bf16")):
        model = policy(kwargs, seed=1)
        values, log_prob, entropy = model.evaluate_actions(obs, actions)
        loss = -(log_prob * advantages).mean() + 0.5 * values.pow(2).mean() - 0.01 * entropy.mean()
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.995  # measured 1.0000 on AVX-512-BF16
    assert (grads[1].norm() / grads[0].norm() - 1).abs() < 0.02


# %% torch.compile of the training step: when it is tried, when it is kept, what it computes
#: A run long enough to try compiling at BF16_WINS' speed: 15,625 minibatches of 256 x 0.1 s.
LONG_RUN = 1_000_000
ZOO_BATCH = 256


def fake_compile(monkeypatch: pytest.MonkeyPatch, compile_seconds: float, compiled_seconds: float) -> list[str]:
    """Replace the real compile measurement; returns the labels it was asked to compile."""
    compiled: list[str] = []

    def time_compiled_minibatch(levers: Mapping[str, Any], device: str, batch_size: int, **_: Any) -> tuple[float, float]:
        compiled.append(measure.lever_label(levers))
        return compile_seconds, compiled_seconds

    monkeypatch.setattr(fast, "time_compiled_minibatch", time_compiled_minibatch)
    monkeypatch.setattr(fast, "compiled_step_mismatch", lambda levers, device, batch_size: None)
    monkeypatch.delenv(measure.COMPILE_ENV, raising=False)
    monkeypatch.setattr(fast, "compile_unavailable_reason", lambda device: None)
    return compiled


def test_training_minibatches_and_when_compiling_pays() -> None:
    assert fast.training_minibatches(1_000_000, 4, 256) == 15_625
    assert fast.training_minibatches(0, 4, 256) == 0
    # 15,625 minibatches saving 10 ms each: 156 s saved, against a 20 s compile
    assert fast.compile_pays(0.10, 0.09, 20.0, 15_625)
    assert not fast.compile_pays(0.10, 0.0999, 20.0, 15_625)  # 1.6 s saved
    assert not fast.compile_pays(0.10, 0.11, 0.0, 15_625)  # slower compiled
    assert not fast.compile_pays(0.10, 0.05, 20.0, 100)  # a short run: 5 s saved


def test_a_long_run_compiles_the_eager_winner_when_it_pays(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    bf16(True)
    fake_timer(monkeypatch, BF16_WINS)
    compiled = fake_compile(monkeypatch, compile_seconds=20.0, compiled_seconds=0.05)
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=LONG_RUN)
    assert compiled == ["bf16 channels_last"]
    assert speed.levers == {"precision": "bf16", "channels_last": True, "compile": True}
    assert speed.policy_class is policies.MixedPrecisionCnnPolicy and speed.policy_kwargs["compile_training"] is True
    assert speed.timings["bf16 channels_last compiled"] == 0.05
    config = speed.to_config()
    assert config["compile"] is True and config["compile_seconds"] == 20.0
    assert config["timings_ms"]["bf16 channels_last compiled"] == 50.0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fast: levers"))
    assert line.startswith("fast: levers bf16 channels_last compiled (") and "compiling took 20 s" in line


def test_compiling_is_measured_but_not_kept_when_it_cannot_pay(bf16: Callable[[bool], None],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bf16(True)
    fake_timer(monkeypatch, BF16_WINS)
    compiled = fake_compile(monkeypatch, compile_seconds=20.0, compiled_seconds=0.0999)  # 1.6 s saved in the run
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=LONG_RUN, verbose=False)
    assert compiled == ["bf16 channels_last"] and speed.compile is False
    assert "compile_training" not in speed.policy_kwargs and speed.timings["bf16 channels_last compiled"] == 0.0999
    assert speed.compile_seconds == 20.0


@pytest.mark.parametrize("timesteps", [None, 10_000])
def test_short_runs_do_not_try_compiling(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch,
                                         timesteps: int | None) -> None:
    bf16(True)
    fake_timer(monkeypatch, BF16_WINS)
    compiled = fake_compile(monkeypatch, compile_seconds=1.0, compiled_seconds=0.01)
    # 10,000 steps: 156 minibatches x 0.1 s = 16 s of training, under COMPILE_MIN_TRAINING_SECONDS
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=timesteps, verbose=False)
    assert compiled == [] and speed.compile is False and speed.compile_seconds is None
    assert speed.to_config()["compile_seconds"] is None


def test_compile_turned_off_or_impossible_is_one_note(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    bf16(True)
    fake_timer(monkeypatch, BF16_WINS)
    compiled: list[str] = []  # the real availability check; a compile that would pay, were it tried
    monkeypatch.setattr(fast, "time_compiled_minibatch", lambda *a, **k: compiled.append("called") or (1.0, 0.01))
    monkeypatch.setenv(measure.COMPILE_ENV, "0")  # turned off: no note, nothing measured
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=LONG_RUN)
    assert compiled == [] and speed.compile is False and speed.notes == ()
    assert measure.compile_unavailable_reason("cpu") == f"{measure.COMPILE_ENV}=0"
    monkeypatch.setenv(measure.COMPILE_ENV, "yes")
    with pytest.raises(ConfigError, match=f"{measure.COMPILE_ENV}='yes' is not understood; set it to 1"):
        fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=LONG_RUN)
    monkeypatch.delenv(measure.COMPILE_ENV)
    monkeypatch.setattr(measure.shutil, "which", lambda name: None)
    assert measure.compile_unavailable_reason("cpu") == "no C++ compiler on PATH (inductor builds its CPU kernels with one)"
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=LONG_RUN, verbose=False)
    assert compiled == [] and speed.compile is False and any("no C++ compiler" in note for note in speed.notes)
    monkeypatch.setattr(measure.importlib.util, "find_spec", lambda name: None)
    assert measure.compile_unavailable_reason("cuda") == "triton is not installed (inductor's GPU kernels need it)"


def test_compile_forced_on_skips_the_measurement(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch) -> None:
    bf16(True)
    fake_timer(monkeypatch, BF16_WINS)
    compiled = fake_compile(monkeypatch, compile_seconds=1.0, compiled_seconds=0.5)  # would not pay
    monkeypatch.setenv(measure.COMPILE_ENV, "1")
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=1_000, verbose=False)
    assert compiled == [] and speed.compile is True and speed.compile_seconds is not None  # checked, not timed
    assert speed.notes == (f"note: {measure.COMPILE_ENV}=1: the training step is compiled (checked against eager), "
                           "not timed",)


@pytest.mark.parametrize("forced", [False, True])
def test_a_compiled_step_that_computes_otherwise_is_not_used(bf16: Callable[[bool], None],
                                                             monkeypatch: pytest.MonkeyPatch, forced: bool) -> None:
    bf16(True)
    fake_timer(monkeypatch, BF16_WINS)
    compiled = fake_compile(monkeypatch, 1.0, 0.01)  # would pay, were it right
    monkeypatch.setattr(fast, "compiled_step_mismatch", lambda levers, device, batch_size: "the loss differs")
    if forced:
        monkeypatch.setenv(measure.COMPILE_ENV, "1")
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=LONG_RUN, verbose=False)
    assert speed.compile is False and compiled == [] and "compile_training" not in speed.policy_kwargs
    assert speed.notes == ("note: torch.compile is not used here: the loss differs; the step stays eager",)


@pytest.mark.parametrize("wrong", ["scaled", "nan"])
def test_the_check_catches_a_compiled_step_that_computes_otherwise(monkeypatch: pytest.MonkeyPatch, wrong: str) -> None:
    """torch.compile replaced by a 'compiler' whose function returns other values: the check says so."""
    def miscompile(function: Callable[..., Any]) -> Callable[..., Any]:
        def compiled(obs: torch.Tensor, actions: torch.Tensor) -> Any:
            values, log_prob, entropy = function(obs, actions)
            return (values * 2 + 1 if wrong == "scaled" else values * float("nan")), log_prob, entropy
        return compiled

    monkeypatch.setattr(measure.torch, "compile", miscompile)
    reason = measure.compiled_step_mismatch(fast.STOCK_LEVERS, "cpu", 4)
    expected = "differs from the eager step's" if wrong == "scaled" else "gave a non-finite loss or gradient"
    assert reason is not None and expected in reason
    monkeypatch.setattr(measure.torch, "compile", lambda function: function)  # a faithful "compiler"
    assert measure.compiled_step_mismatch(fast.STOCK_LEVERS, "cpu", 4) is None


def test_a_restricted_aten_capability_rules_compile_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure.shutil, "which", lambda name: "/usr/bin/cc")
    monkeypatch.setenv(measure.ATEN_CAPABILITY_ENV, "avx2")
    assert measure.compile_unavailable_reason("cpu") == ("ATEN_CPU_CAPABILITY=avx2 restricts torch's kernels, and the "
                                                      "compiled step gave inf/NaN under it")
    monkeypatch.delenv(measure.ATEN_CAPABILITY_ENV)
    assert measure.compile_unavailable_reason("cpu") is None


def test_a_failing_compile_leaves_the_eager_choice(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch) -> None:
    bf16(True)
    fake_timer(monkeypatch, BF16_WINS)
    fake_compile(monkeypatch, 1.0, 0.01)

    def broken(*_: Any, **__: Any) -> tuple[float, float]:
        raise RuntimeError("C++ compile error\nsecond line")

    monkeypatch.setattr(fast, "time_compiled_minibatch", broken)
    speed = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=LONG_RUN, verbose=False)
    assert speed.levers == {"precision": "bf16", "channels_last": True, "compile": False}
    assert speed.notes == ("note: torch.compile failed here (RuntimeError: C++ compile error); the step stays eager",)


def test_a_recorded_compile_is_reused_where_it_can_run(bf16: Callable[[bool], None], monkeypatch: pytest.MonkeyPatch) -> None:
    bf16(True)
    timed = fake_timer(monkeypatch, BF16_WINS)
    recorded = {"precision": "bf16", "channels_last": False, "compile": True}
    monkeypatch.setattr(fast, "compile_unavailable_reason", lambda device: None)
    again = fast.fast_settings(True, device="cpu", levers=recorded, verbose=False)
    assert again.levers == recorded and again.policy_kwargs["compile_training"] is True and timed == []
    monkeypatch.setattr(fast, "compile_unavailable_reason", lambda device: "no C++ compiler on PATH")
    moved = fast.fast_settings(True, device="cpu", levers=recorded, verbose=False)
    assert moved.levers == {**recorded, "compile": False} and "compile_training" not in moved.policy_kwargs
    assert moved.notes == ("note: the recorded choice compiled the training step; not here: no C++ compiler on PATH",)
    # config.json written before compile was a lever: eager
    old = fast.fast_settings(True, device="cpu", levers={"precision": "fp32", "channels_last": True}, verbose=False)
    assert old.compile is False


def test_fp32_nchw_compiled_is_the_stock_network_in_the_mixed_policy() -> None:
    kwargs = policies.cnn_policy_kwargs("fp32", compile_training=True)
    assert policies.policy_class(kwargs) is policies.MixedPrecisionCnnPolicy
    assert kwargs["features_extractor_kwargs"] == {"bf16": False, "channels_last": False}
    assert measure.lever_label({"precision": "fp32", "channels_last": False, "compile": True}) == "fp32 NCHW compiled"


#: Real compiles need what inductor builds with; the branch without it is forced in the tests above.
needs_inductor = pytest.mark.skipif(measure.compile_unavailable_reason("cpu") is not None,
                                    reason=f"torch.compile is not used here: {measure.compile_unavailable_reason('cpu')}")


@pytest.mark.slow
@needs_inductor
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_compiled_step_computes_stock_loss_and_gradients(precision: str) -> None:
    """One fixed minibatch, the same weights: the compiled update's loss and gradients against
    stock SB3's fp32 ones (bf16 runs on any x86 CPU, emulated where the hardware lacks it)."""
    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.integers(0, 256, (32, *IMAGE_SPACE.shape)), dtype=torch.uint8)
    actions = torch.as_tensor(rng.integers(0, ACTIONS.n, 32))
    advantages = torch.as_tensor(rng.normal(size=32), dtype=torch.float32)
    kwargs = policies.cnn_policy_kwargs(precision, channels_last=precision == "bf16", compile_training=True)
    compiled = policies.MixedPrecisionCnnPolicy(IMAGE_SPACE, ACTIONS, lambda _: 2.5e-4, **kwargs)
    stock = policy({})
    compiled.load_state_dict(stock.state_dict())
    torch._dynamo.utils.counters.clear()
    losses, grads = [], []
    for model in (stock, compiled):
        values, log_prob, entropy = model.evaluate_actions(obs, actions)
        loss = -(log_prob * advantages).mean() + 0.5 * values.pow(2).mean() - 0.01 * entropy.mean()
        loss.backward()
        losses.append(loss.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert compiled._compiled_evaluate_actions is not None  # the compiled path ran
    assert measure.compiled_step_mismatch(measure.lever_candidates("cpu", precision)[0], "cpu", 8) is None
    assert not torch._dynamo.utils.counters["graph_break"]  # one graph: SB3's numpy space check is kept out
    assert ((losses[1] - losses[0]).abs() / losses[0].abs()) < BF16_RELATIVE_TOLERANCE
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0) > 0.995
    if precision == "fp32":  # only the kernels differ: agreement to float32 rounding
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@needs_inductor
def test_ppo_learns_and_resumes_with_a_compiled_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stable_baselines3 import PPO

    from rlbreakout.envs import make_env

    fake_timer(monkeypatch, BF16_WINS | {"fp32 NCHW": 0.05})  # fp32 NCHW eager wins, then it is compiled
    fake_compile(monkeypatch, compile_seconds=1.0, compiled_seconds=0.01)
    monkeypatch.setattr(measure, "bf16_supported", lambda device: False)
    settings = fast.fast_settings(True, device="cpu", env_id=NOFRAMESKIP, n_envs=2, timesteps=LONG_RUN * 10,
                                  verbose=False)
    assert settings.levers == {"precision": "fp32", "channels_last": False, "compile": True}
    venv = make_env(NOFRAMESKIP, 2, seed=0, backend=settings.backend, ale_threads=settings.ale_threads)
    model = PPO(settings.policy_class, venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu",
                policy_kwargs=settings.policy_kwargs)
    before = {n: p.detach().clone() for n, p in model.policy.named_parameters()}
    model.learn(64)
    assert model.policy._compiled_evaluate_actions is not None
    assert any(not torch.equal(before[n], p) for n, p in model.policy.named_parameters())
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", env=venv, device="cpu")
    assert type(loaded.policy) is policies.MixedPrecisionCnnPolicy and loaded.policy.compile_training is True
    obs = venv.reset()
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    resumed = {n: p.detach().clone() for n, p in loaded.policy.named_parameters()}
    loaded.learn(64, reset_num_timesteps=False)  # and it learns again, through a compiled step of its own
    assert loaded.num_timesteps == 128 and loaded.policy._compiled_evaluate_actions is not None
    assert any(not torch.equal(resumed[n], p) for n, p in loaded.policy.named_parameters())
    venv.close()
