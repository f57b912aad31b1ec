"""2_baselines/2.4_ppo_atari_from_scratch.py: each Atari detail is in effect, GAE is right, runs are reproducible.

The script's name starts with a digit, so it is loaded with importlib rather than imported.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.atari_wrappers import (
    ClipRewardEnv,
    EpisodicLifeEnv,
    FireResetEnv,
    MaxAndSkipEnv,
    NoopResetEnv,
)

from rlbreakout.errors import ConfigError
from conftest import REPO_ROOT, run_script, scalar_steps, summary_of

SCRIPT = "2_baselines/2.4_ppo_atari_from_scratch.py"
BREAKOUT = "BreakoutNoFrameskip-v4"
#: Random play ends an Asterix game in ~300 agent steps and scores 50 per item: rewards > 1 come quickly.
BIG_REWARD_GAME = "AsterixNoFrameskip-v4"
ASTERIX_POINTS = 50
#: Every tag the SB3 chapter scripts log that this script logs with the same meaning.
SB3_TAGS = (
    "rollout/ep_rew_mean", "rollout/ep_len_mean", "game/score", "game/length",
    "train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/approx_kl",
    "train/clip_fraction", "train/explained_variance", "train/learning_rate", "time/fps",
)
BACKENDS = ("classic", "ale_vector")


@pytest.fixture(scope="module")
def ppo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ppo_atari_from_scratch", REPO_ROOT / SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


def tiny_config(ppo: ModuleType, **overrides: object) -> object:
    """A run of a few hundred steps; one torch thread so results do not depend on the machine's load."""
    settings = dict(num_envs=2, num_steps=32, total_timesteps=128, update_epochs=2, torch_threads=1,
                    eval_games=0, gif_games=0)
    settings.update(overrides)
    return ppo.Config(**settings)


class RecordingWriter:
    """Stands in for TensorBoard's SummaryWriter and keeps every scalar."""

    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, float(value), int(step)))

    def values(self, tag: str) -> list[float]:
        return [value for t, value, _ in self.scalars if t == tag]


def wrapper_chain(env: gym.Env) -> list[gym.Env]:
    chain = [env]
    while isinstance(chain[-1], gym.Wrapper):
        chain.append(chain[-1].env)
    return chain


# %% The nine Atari details
def test_classic_stack_applies_details_1_to_7_in_order(ppo: ModuleType) -> None:
    env = ppo.make_env(BREAKOUT, seed=0, idx=0)()
    try:
        kinds = [type(w) for w in wrapper_chain(env)]
        expected = [gym.wrappers.FrameStackObservation, gym.wrappers.GrayscaleObservation,
                    gym.wrappers.ResizeObservation, ClipRewardEnv, FireResetEnv, EpisodicLifeEnv,
                    MaxAndSkipEnv, NoopResetEnv, gym.wrappers.RecordEpisodeStatistics]
        assert kinds[:len(expected)] == expected
        by_type = {type(w): w for w in wrapper_chain(env)}
        assert by_type[NoopResetEnv].noop_max == 30
        assert by_type[MaxAndSkipEnv]._skip == 4
        assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    finally:
        env.close()


def test_classic_env_real_frames_show_the_details(ppo: ModuleType) -> None:
    """Real Breakout: zero-padded stack of grey frames, 4 frames per action, a lost life ends the episode only."""
    start_frames = set()
    for seed in range(6):
        # A fresh env each time: a second reset() after FireReset's steps is a life-loss reset, not a new game.
        env = ppo.make_env(BREAKOUT, seed=0, idx=0)()
        env.reset(seed=seed)
        # detail 1 (1-30 no-op frames) + detail 4 (FIRE, then action 2: 2 actions x 4 frames)
        start_frames.add(env.unwrapped.ale.getEpisodeFrameNumber())
        env.close()
    assert min(start_frames) >= 1 + 8 and max(start_frames) <= 30 + 8
    assert len(start_frames) > 1, "the no-op count should vary with the seed"

    env = ppo.make_env(BREAKOUT, seed=0, idx=0)()
    ale = env.unwrapped.ale
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
        assert not obs[:3].any() and obs[3].any(), "after a reset the stack is 3 zero frames + the first frame"

        env.action_space.seed(0)
        lives_at_start = ale.lives()
        before = ale.getEpisodeFrameNumber()
        obs, _, terminated, truncated, _ = env.step(0)
        assert ale.getEpisodeFrameNumber() - before == 4  # detail 2: one action = 4 frames
        for _ in range(2_000):
            obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
        assert terminated and 0 < ale.lives() < lives_at_start  # detail 3: a life lost, the game not over
        frames_at_life_loss = ale.getEpisodeFrameNumber()
        env.reset()
        assert ale.getEpisodeFrameNumber() > frames_at_life_loss, "the game goes on after a lost life"
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_vector_env_observations_are_4x84x84_uint8(ppo: ModuleType, backend: str) -> None:
    envs = ppo.make_vector_env(tiny_config(ppo, backend=backend), num_envs=2)
    try:
        assert envs.single_observation_space.shape == (4, 84, 84)
        assert envs.single_observation_space.dtype == np.uint8
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8
        obs, *_ = envs.step(np.zeros(2, dtype=np.int64))
        assert obs.shape == (2, 4, 84, 84) and obs.dtype == np.uint8 and obs.max() > 0
    finally:
        envs.close()


def test_pixels_are_scaled_by_1_over_255_inside_the_network(ppo: ModuleType) -> None:
    """Detail 9: uint8 in, the trunk sees [0, 1]."""
    torch.manual_seed(0)
    agent = ppo.Agent(4)
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    expected = agent.network(obs.float() / 255.0)
    assert torch.allclose(agent.hidden(obs), expected, atol=1e-5)
    assert not torch.allclose(agent.hidden(obs), agent.network(obs.float()), atol=1e-3)
    white = torch.full((1, 4, 84, 84), 255, dtype=torch.uint8)
    assert torch.allclose(agent.hidden(white), agent.network(torch.ones(1, 4, 84, 84)), atol=1e-5)
    # Under bf16 autocast the uint8 pixels go straight to bf16: the same values as scaling in float32 first.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ppo.compute_dtype(torch.device("cpu")) == torch.bfloat16
        assert torch.equal(agent.hidden(obs), agent.network(obs.float() / 255.0).float())
    assert ppo.compute_dtype(torch.device("cpu")) == torch.float32


def test_shared_trunk_with_orthogonal_init(ppo: ModuleType) -> None:
    """Detail 8: one trunk, two heads; orthogonal weights scaled by sqrt(2), 0.01 and 1."""
    torch.manual_seed(0)
    agent = ppo.Agent(4)
    assert agent.actor.in_features == agent.critic.in_features == 512
    convs = [m for m in agent.network if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (4, 32, (8, 8), (4, 4)), (32, 64, (4, 4), (2, 2)), (64, 64, (3, 3), (1, 1))]
    for layer, gain in ((agent.actor, 0.01), (agent.critic, 1.0), (agent.network[7], math.sqrt(2))):
        w = layer.weight.detach()
        rows = w @ w.T  # orthogonal rows of norm `gain` (fewer rows than columns)
        assert torch.allclose(rows, gain**2 * torch.eye(w.shape[0]), atol=1e-4 * max(gain**2, 1))
        assert not layer.bias.any()


def test_initial_policy_is_close_to_uniform(ppo: ModuleType) -> None:
    """Detail 8: the 0.01-std policy head starts every action near 1/4; a std-1 head would not."""
    envs = ppo.make_vector_env(tiny_config(ppo), num_envs=2)
    try:
        obs, _ = envs.reset(seed=0)
        frames = [obs]
        for _ in range(20):
            obs, *_ = envs.step(np.ones(2, dtype=np.int64))
            frames.append(obs)
    finally:
        envs.close()
    batch = torch.as_tensor(np.concatenate(frames))
    torch.manual_seed(0)
    agent = ppo.Agent(4)
    with torch.no_grad():
        probs = torch.softmax(agent.actor(agent.hidden(batch)), dim=-1)
        _, _, entropy, _ = agent.get_action_and_value(batch)
        assert (probs - 0.25).abs().max() < 0.01
        assert torch.allclose(entropy, torch.full_like(entropy, math.log(4)), atol=1e-3)
        ppo.layer_init(agent.actor, std=1.0)  # counterfactual: a normally initialised head
        wide = torch.softmax(agent.actor(agent.hidden(batch)), dim=-1)
    assert (wide - 0.25).abs().max() > 0.05


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_buffer_holds_clipped_rewards_while_unclipped_game_scores_are_logged(ppo: ModuleType, backend: str) -> None:
    """Detail 5 for PPO, the real score for people: Asterix pays 50 per item."""
    config = tiny_config(ppo, env_id=BIG_REWARD_GAME, backend=backend, num_steps=512, total_timesteps=1024,
                         update_epochs=1)
    writer = RecordingWriter()
    result = ppo.train(config, Path("unused"), writer)
    rewards = result.rollout["rewards"]
    assert set(rewards.unique().tolist()) <= {-1.0, 0.0, 1.0} and rewards.max() == 1.0
    scores = writer.values("game/score")
    assert scores, "random play should finish an Asterix game in 512 steps"
    assert scores == result.train_scores
    assert max(scores) >= ASTERIX_POINTS and all(s % ASTERIX_POINTS == 0 for s in scores)
    assert all(length > 0 for length in writer.values("game/length"))
    assert writer.values("rollout/ep_rew_mean")[-1] == pytest.approx(np.mean(scores))


# %% PPO pieces
def test_gae_matches_a_hand_computed_three_step_example(ppo: ModuleType) -> None:
    """gamma 0.9, lambda 0.8; the episode ends at step 1, so step 2 starts a new one.

    t=2: delta = 2 + 0.9 * 0.6 - 0.3 = 2.24;           A2 = 2.24
    t=1: delta = 0 + 0 (done) - 0.4 = -0.4;            A1 = -0.4 (nothing after a done flows back)
    t=0: delta = 1 + 0.9 * 0.4 - 0.5 = 0.86;           A0 = 0.86 + 0.9 * 0.8 * (-0.4) = 0.572
    returns = A + V = [1.072, 0.0, 2.54]
    """
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    dones = torch.tensor([[0.0], [1.0], [0.0]])
    advantages, returns = ppo.compute_gae(rewards, values, dones, torch.tensor([0.6]), gamma=0.9, gae_lambda=0.8)
    assert torch.allclose(advantages[:, 0], torch.tensor([0.572, -0.4, 2.24]), atol=1e-6)
    assert torch.allclose(returns[:, 0], torch.tensor([1.072, 0.0, 2.54]), atol=1e-6)


def test_gae_with_lambda_0_is_the_td_error_and_with_lambda_1_the_discounted_return(ppo: ModuleType) -> None:
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [1.5]])
    dones = torch.zeros(3, 1)
    next_value = torch.tensor([2.0])
    td, _ = ppo.compute_gae(rewards, values, dones, next_value, gamma=0.5, gae_lambda=0.0)
    assert torch.allclose(td[:, 0], torch.tensor([1 + 0.5 * 1.0 - 0.5, 2 + 0.5 * 1.5 - 1.0, 3 + 0.5 * 2.0 - 1.5]))
    _, returns = ppo.compute_gae(rewards, values, dones, next_value, gamma=0.5, gae_lambda=1.0)
    assert returns[0, 0].item() == pytest.approx(1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 2.0)


def test_explained_variance(ppo: ModuleType) -> None:
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert ppo.explained_variance(target, target) == 1.0
    assert ppo.explained_variance(torch.full_like(target, 2.5), target) == 0.0
    assert math.isnan(ppo.explained_variance(target, torch.ones(4)))


def test_bad_settings_are_one_line_config_errors(ppo: ModuleType) -> None:
    with pytest.raises(ConfigError, match="--num-minibatches 3 must divide"):
        ppo.validate(tiny_config(ppo, num_minibatches=3))
    with pytest.raises(ConfigError, match="less than one rollout"):
        ppo.validate(tiny_config(ppo, total_timesteps=10))
    with pytest.raises(ConfigError, match="random number of frames"):
        ppo.validate(tiny_config(ppo, env_id="Breakout-v4", backend="ale_vector"))
    with pytest.raises(ConfigError, match="random number of frames"):
        ppo.make_ale_vector_env("Breakout-v4", 2, ale_threads=1)
    with pytest.raises(ConfigError, match="unknown Atari env id"):
        ppo.validate(tiny_config(ppo, env_id="Breakout-v9"))


def test_a_bad_flag_exits_with_one_line_before_making_a_run_folder(logdir: Path) -> None:
    result = run_script(SCRIPT, "--num-minibatches", "3", "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --num-minibatches 3 must divide")
    assert not logdir.exists()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_gives_bit_identical_parameters(ppo: ModuleType, backend: str) -> None:
    def trained(seed: int) -> dict[str, torch.Tensor]:
        return ppo.train(tiny_config(ppo, seed=seed, backend=backend), Path("unused")).agent.state_dict()

    first, second, other = trained(0), trained(0), trained(1)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


@pytest.mark.slow
def test_tiny_run_end_to_end(ppo: ModuleType, logdir: Path) -> None:
    result = run_script(SCRIPT, "--timesteps", "128", "--n-envs", "2", "--num-steps", "32", "--update-epochs", "1",
                        "--eval-games", "1", "--gif-games", "1", "--gif-max-steps", "20", "--device", "cpu",
                        "--torch-threads", "1", "--logdir", str(logdir))
    _, summary = summary_of(result)
    for key in ("script", "env_id", "timesteps", "seed", "run_dir", "wall_seconds", "steps_per_second",
                "mean_reward", "median_reward", "model_path", "gif_path"):
        assert key in summary, key
    assert summary["script"] == "2.4_ppo_atari_from_scratch" and summary["timesteps"] == 128
    assert summary["steps_per_second"] > 0 and summary["n_games"] == 1
    # 2 rollouts of 64 steps: the second one's speed, without the first's first-call costs
    assert summary["steps_per_second_after_first_iteration"] > 0
    agent = ppo.Agent(4)
    agent.load_state_dict(torch.load(summary["model_path"]))
    assert Path(summary["gif_path"]).stat().st_size > 0
    run_dir = Path(summary["run_dir"])
    for tag in ("train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/approx_kl",
                "train/clip_fraction", "train/explained_variance", "train/learning_rate", "time/fps"):
        assert scalar_steps(run_dir, tag) == [64, 128], tag


@pytest.mark.slow
def test_logs_every_sb3_tag_at_env_steps(ppo: ModuleType) -> None:
    config = tiny_config(ppo, num_steps=256, total_timesteps=1024, update_epochs=1)
    writer = RecordingWriter()
    ppo.train(config, Path("unused"), writer)
    tags = {tag for tag, _, _ in writer.scalars}
    assert set(SB3_TAGS) <= tags
    assert all(step % config.num_envs == 0 and 0 < step <= 1024 for _, _, step in writer.scalars)
    lrs = writer.values("train/learning_rate")
    assert lrs == pytest.approx([2.5e-4, 1.25e-4])  # PPO detail: annealed linearly towards 0
