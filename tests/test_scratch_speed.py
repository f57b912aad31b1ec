"""rlbreakout/speed/scratch_speed.py: the from-scratch PPO's speed levers change speed, not results.

No test depends on the CPU's bf16 support: the bf16 branch is forced on or off by
monkeypatching ``rlbreakout.speed.hardware.bf16_supported``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlbreakout.errors import ConfigError
from rlbreakout.speed import hardware, scratch_speed
from rlbreakout.speed.measure import compile_unavailable_reason
from rlbreakout.speed.scratch_speed import (
    SpeedLevers,
    StepAtRecv,
    compute_dtype,
    finished_games,
    make_ale_vector_envs,
    overlap_pays,
    scale_pixels,
    speed_levers,
    with_send_recv,
)

BREAKOUT = "BreakoutNoFrameskip-v4"


@pytest.mark.parametrize("has_bf16", [True, False])
def test_bf16_is_used_only_where_the_hardware_has_it(monkeypatch: pytest.MonkeyPatch, has_bf16: bool,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(hardware, "bf16_supported", lambda device: has_bf16)
    levers = speed_levers("cpu", "classic", "bf16", n_envs=2, torch_threads=1)
    assert levers.precision == ("bf16" if has_bf16 else "fp32")
    assert ("training runs in fp32" in capsys.readouterr().err) == (not has_bf16)
    with levers.autocast():
        assert compute_dtype(torch.device("cpu")) == (torch.bfloat16 if has_bf16 else torch.float32)
    assert speed_levers("cpu", "classic", "fp32", n_envs=2, torch_threads=1).precision == "fp32"


def test_uint8_pixels_go_straight_to_the_compute_dtype_with_the_same_values() -> None:
    obs = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    assert torch.allclose(scale_pixels(obs, 1 / 255), obs.float() / 255, rtol=1e-6, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # emulated where the CPU lacks bf16: only values checked
        scaled = scale_pixels(obs, 1 / 255)
    assert scaled.dtype == torch.bfloat16
    assert torch.equal(scaled, (obs.float() / 255).to(torch.bfloat16))


def test_fused_adam_and_acting_mode() -> None:
    assert SpeedLevers(torch.device("cpu")).fused_adam
    assert not SpeedLevers(torch.device("meta")).fused_adam
    layer = torch.nn.Linear(2, 1)
    with SpeedLevers(torch.device("cpu")).acting():
        out = layer(torch.ones(1, 2))
    assert not out.requires_grad and torch.is_inference(out)
    model = SpeedLevers(torch.device("cpu")).prepare(torch.nn.Conv2d(4, 8, 3))
    assert model.weight.is_contiguous()  # channels_last only on CUDA


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_acting_runs_in_the_updates_precision(precision: str) -> None:
    """So the rollout's log-probs are the ones the update recomputes (bf16 emulated where the CPU lacks it)."""
    conv = torch.nn.Conv2d(4, 8, 3)
    levers = SpeedLevers(torch.device("cpu"), precision=precision)
    frames = torch.rand(2, 4, 9, 9)
    with levers.acting():
        acted = conv(frames)
    with levers.autocast():
        updated = conv(frames)
    assert acted.dtype == updated.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
    assert torch.equal(acted, updated.detach())


def test_overlap_only_where_both_thread_pools_get_cores_of_their_own() -> None:
    two_cores = {"torch_threads": 2, "ale_threads": 2, "free_cores": 2}
    assert not overlap_pays(two_cores, 8)  # 2 torch + 2 ALE threads on 2 cores
    assert overlap_pays({**two_cores, "torch_threads": 1, "ale_threads": 1}, 8)  # 1 + 1 on 2
    assert overlap_pays({"torch_threads": 4, "ale_threads": 8, "free_cores": 8}, 8)  # 4 + one half's 4 on 8
    assert not overlap_pays({"torch_threads": 4, "ale_threads": 8, "free_cores": 7}, 8)
    assert overlap_pays({"torch_threads": 1, "ale_threads": 2, "free_cores": 2}, 2)  # a half of 1 env: 1 ALE thread


def test_levers_are_recorded_for_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "bf16_supported", lambda device: False)
    config = speed_levers("cpu", "ale_vector", "fp32", n_envs=2, torch_threads=1).to_config()
    assert config["backend"] == "ale_vector" and config["precision"] == "fp32" and config["torch_threads"] == 1
    assert 1 <= config["ale_threads"] <= 2


def test_backend_problems_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        scratch_speed.check_backend(BREAKOUT, "gpu")
    with pytest.raises(ConfigError, match="random"):
        make_ale_vector_envs("Breakout-v4", 2)
    with pytest.raises(ConfigError, match="unknown Atari env id"):
        scratch_speed.check_backend("Breakout-v9", "classic")


def test_send_then_recv_is_step_on_the_ale_vector_env() -> None:
    stepped, sent = make_ale_vector_envs(BREAKOUT, 2), make_ale_vector_envs(BREAKOUT, 2)
    try:
        first_a, _ = stepped.reset(seed=3)
        first_b, _ = sent.reset(seed=3)
        assert np.array_equal(first_a, first_b) and first_a.shape == (2, 4, 84, 84)
        rng = np.random.default_rng(0)
        for _ in range(40):
            actions = rng.integers(0, 4, size=2)
            a = stepped.step(actions)
            sent.send(actions)
            b = sent.recv()
            for x, y in zip(a[:4], b[:4]):
                assert np.array_equal(x, y)
    finally:
        stepped.close()
        sent.close()


def test_classic_envs_get_send_and_recv_that_step_at_recv() -> None:
    def thunk() -> gym.Env:
        return gym.make("CartPole-v1")

    envs = gym.vector.SyncVectorEnv([thunk, thunk], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    wrapped = with_send_recv(envs)
    assert isinstance(wrapped, StepAtRecv)
    reference = gym.vector.SyncVectorEnv([thunk, thunk], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    wrapped.reset(seed=1)
    reference.reset(seed=1)
    wrapped.send(np.array([0, 1]))
    got, want = wrapped.recv(), reference.step(np.array([0, 1]))
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    ale = make_ale_vector_envs(BREAKOUT, 1)
    assert with_send_recv(ale) is ale
    ale.close()


def test_finished_games_reads_the_whole_game_scores() -> None:
    assert finished_games({}) == []
    infos = {"final_info": {"episode": {"r": np.array([0.0, 7.0, 3.0]), "l": np.array([0, 90, 40])},
                            "_episode": np.array([False, True, True])}}
    assert finished_games(infos) == [(1, 7.0, 90), (2, 3.0, 40)]


@pytest.mark.slow
def test_ale_vector_clips_rewards_but_keeps_the_real_score() -> None:
    """Asterix pays 50 per item: PPO gets +1, the game's score keeps the 50s."""
    envs = make_ale_vector_envs("AsterixNoFrameskip-v4", 2)
    rng = np.random.default_rng(0)
    rewards, games = set(), []
    try:
        envs.reset(seed=0)
        for _ in range(1_500):
            _, reward, _, _, infos = envs.step(rng.integers(0, envs.single_action_space.n, size=2))
            rewards |= set(reward.tolist())
            games += finished_games(infos)
            if games:
                break
    finally:
        envs.close()
    assert rewards <= {-1.0, 0.0, 1.0} and 1.0 in rewards
    assert games and all(score % 50 == 0 and score >= 50 and length > 0 for _, score, length in games)


def test_the_measured_layout_is_the_faster_one(monkeypatch) -> None:
    from rlbreakout.speed import scratch_speed

    seconds = {False: 0.2, True: 0.1}  # channels_last faster: chosen
    monkeypatch.setattr(scratch_speed, "time_minibatch", lambda levers, device, batch: seconds[levers["channels_last"]])
    levers = speed_levers("cpu", "ale_vector", "fp32", n_envs=2, torch_threads=1, measure_layout=True)
    assert levers.channels_last and set(levers.layout_timings) == {"fp32 NCHW", "fp32 channels_last"}
    model = levers.prepare(torch.nn.Conv2d(4, 8, 3))
    assert model.weight.is_contiguous(memory_format=torch.channels_last)
    seconds[True] = 0.2  # a tie keeps stock's NCHW
    assert not speed_levers("cpu", "ale_vector", "fp32", n_envs=2, torch_threads=1, measure_layout=True).channels_last


# %% torch.compile of the update (the rule itself is tested in tests/test_fast.py)
class TinyAgent(torch.nn.Module):
    """2.4's Agent interface on a 4-pixel observation: action, log-prob, entropy, value."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(4, 3)

    def get_action_and_value(self, obs: torch.Tensor, action: torch.Tensor | None = None) -> tuple:
        logits = self.body(obs)
        dist = torch.distributions.Categorical(logits=logits[:, :2])
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), logits[:, 2]


def test_a_long_run_compiles_the_update_where_it_pays(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from rlbreakout.speed import fast

    monkeypatch.setattr(scratch_speed, "time_minibatch", lambda levers, device, batch: 0.1)
    monkeypatch.setattr(fast, "time_compiled_minibatch", lambda levers, device, batch: (20.0, 0.05))
    monkeypatch.setattr(fast, "compile_unavailable_reason", lambda device: None)
    monkeypatch.setattr(fast, "compiled_step_mismatch", lambda levers, device, batch_size: None)
    levers = speed_levers("cpu", "ale_vector", "fp32", n_envs=2, torch_threads=1, measure_layout=True,
                          timesteps=1_000_000, n_epochs=4)
    assert levers.compile and levers.compile_seconds == 20.0
    assert levers.to_config()["compile"] is True and levers.to_config()["layout_timings_ms"]["fp32 NCHW compiled"] == 50.0
    assert "compiled update (compiling took 20 s)" in capsys.readouterr().out
    short = speed_levers("cpu", "ale_vector", "fp32", n_envs=2, torch_threads=1, measure_layout=True, timesteps=10_000)
    assert not short.compile and short.compile_seconds is None
    capsys.readouterr()
    monkeypatch.setenv(fast.COMPILE_ENV, "1")  # forced: compiled, nothing measured, one note
    forced = speed_levers("cpu", "ale_vector", "fp32", n_envs=2, torch_threads=1, measure_layout=True, timesteps=10_000)
    assert forced.compile and forced.compile_seconds is not None  # the check compiled it
    out = capsys.readouterr().out
    assert f"note: {fast.COMPILE_ENV}=1: the training step is compiled (checked against eager), not timed" in out
    assert "layout NCHW, compiled update (compiling took 0 s) (measured ms:" in out


def test_only_the_update_runs_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def recording_compile(function):  # stands in for torch.compile: same function, calls recorded
        def compiled(*args):
            calls.append("compiled")
            return function(*args)
        return compiled

    monkeypatch.setattr(scratch_speed.torch, "compile", recording_compile)
    levers = SpeedLevers(torch.device("cpu"), compile=True)
    model = levers.prepare(TinyAgent())
    obs = torch.randn(5, 4)
    with levers.acting():
        action, *_ = model.get_action_and_value(obs)  # the rollout: eager
    assert calls == []
    _, log_prob, _, value = model.get_action_and_value(obs, action.clone())  # the update
    assert calls == ["compiled"]
    (log_prob.sum() + value.sum()).backward()
    assert model.body.weight.grad is not None
    assert "get_action_and_value" not in vars(SpeedLevers(torch.device("cpu")).prepare(TinyAgent()))  # not compiled


@pytest.mark.slow
@pytest.mark.skipif(compile_unavailable_reason("cpu") is not None,
                    reason=f"torch.compile is not used here: {compile_unavailable_reason('cpu')}")
def test_the_compiled_update_computes_what_the_eager_one_does() -> None:
    torch.manual_seed(0)
    eager, compiled = TinyAgent(), TinyAgent()
    compiled.load_state_dict(eager.state_dict())
    scratch_speed.compile_update_path(compiled)
    obs, action = torch.randn(16, 4), torch.randint(0, 2, (16,))
    for got, expected in zip(compiled.get_action_and_value(obs, action), eager.get_action_and_value(obs, action)):
        torch.testing.assert_close(got, expected)
