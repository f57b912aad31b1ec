"""2_baselines/2.4_ppo_atari_from_scratch.py: each Atari detail is in effect, GAE and both losses
are right by hand, the cells run one by one, runs are reproducible.

The script trains at module level (cell by cell, as in Spyder), so its functions are loaded
with :func:`rlbreakout.definitions.load_definitions` and its training is run with
``run_cells`` (tests/cells.py) or as a subprocess.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

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

from cells import run_cells
from conftest import REPO_ROOT, event_files, run_script, scalar_steps, summary_of
from rlbreakout.definitions import load_definitions
from rlbreakout.errors import ConfigError

SCRIPT = "2_baselines/2.4_ppo_atari_from_scratch.py"
BREAKOUT = "BreakoutNoFrameskip-v4"
#: Random play ends an Asterix game in ~300 agent steps and scores 50 per item: rewards > 1 come quickly.
BIG_REWARD_GAME = "AsterixNoFrameskip-v4"
ASTERIX_POINTS = 50
#: Every tag the SB3 chapter scripts log that this script logs with the same meaning.
SB3_TAGS = (
    "rollout/ep_rew_mean", "rollout/ep_len_mean", "game/score", "game/length",
    "train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/approx_kl",
    "train/clip_fraction", "train/explained_variance", "train/learning_rate", "train/clip_range", "time/fps",
)
BACKENDS = ("classic", "ale_vector")
#: Two rollouts of 2 envs x 32 steps, one epoch, no evaluation: a few seconds.
TINY_FLAGS = ("--timesteps", "128", "--n-envs", "2", "--num-steps", "32", "--update-epochs", "1",
              "--eval-games", "0", "--gif-games", "0", "--device", "cpu", "--torch-threads", "1")


@pytest.fixture(scope="module")
def ppo() -> ModuleType:
    return load_definitions(REPO_ROOT / SCRIPT, "ppo_atari_from_scratch")


def scalar_values(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every ``tag`` scalar of a run, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: list[tuple[int, float]] = []
    for path in event_files(run_dir):
        acc = EventAccumulator(str(path))
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            points += [(event.step, event.value) for event in acc.Scalars(tag)]
    return sorted(points, key=lambda point: point[0])  # stable: same-step points keep their logged order


def train_cells(script: str, logdir: Path, *flags: str) -> dict[str, Any]:
    """Run ``script`` cell by cell with TINY_FLAGS, then ``flags`` (later flags win)."""
    return run_cells(script, *TINY_FLAGS, "--logdir", str(logdir), *flags)


def parse(ppo: ModuleType, *flags: str) -> Any:
    return ppo.ppo_parser("test").parse_args([*TINY_FLAGS, *flags])


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
    envs = ppo.make_envs(BREAKOUT, 2, 0, backend)
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
    """Detail 9: uint8 in, the trunk sees [0, 1] (also under bf16 autocast, which CPUs emulate where needed)."""
    torch.manual_seed(0)
    agent = ppo.Agent(4)
    obs = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    expected = agent.network(obs.float() / 255.0)
    assert torch.allclose(agent.hidden(obs), expected, atol=1e-5)
    assert not torch.allclose(agent.hidden(obs), agent.network(obs.float()), atol=1e-3)
    white = torch.full((1, 4, 84, 84), 255, dtype=torch.uint8)
    assert torch.allclose(agent.hidden(white), agent.network(torch.ones(1, 4, 84, 84)), atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # uint8 straight to bf16: the values of scaling in fp32 first
        assert torch.equal(agent.hidden(obs), agent.network(obs.float() / 255.0).float())


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
    envs = ppo.make_envs(BREAKOUT, 2, 0)
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
def test_buffer_holds_clipped_rewards_while_unclipped_game_scores_are_logged(backend: str, tmp_path: Path) -> None:
    """Detail 5 for PPO, the real score for people: Asterix pays 50 per item."""
    ns = train_cells(SCRIPT, tmp_path, "--env", BIG_REWARD_GAME, "--backend", backend, "--num-steps", "512",
                     "--timesteps", "1024")
    rewards = ns["rewards"]
    assert set(rewards.unique().tolist()) <= {-1.0, 0.0, 1.0} and rewards.max() == 1.0
    scores = [value for _, value in scalar_values(ns["run"].dir, "game/score")]
    assert scores, "random play should finish an Asterix game in 1024 steps"
    assert scores == ns["run"].train_scores
    assert max(scores) >= ASTERIX_POINTS and all(s % ASTERIX_POINTS == 0 for s in scores)
    assert all(length > 0 for _, length in scalar_values(ns["run"].dir, "game/length"))
    assert scalar_values(ns["run"].dir, "rollout/ep_rew_mean")[-1][1] == pytest.approx(np.mean(scores))


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


#: A two-sample minibatch worked by hand (clip range 0.2, ent_coef 0.01, vf_coef 0.5):
#: ratios 1.5 and 0.5, advantages +1 and -1 -> policy terms max(-1.5, -1.2) = -1.2 and
#: max(0.5, 0.8) = 0.8, pg_loss -0.2; both ratios outside [0.8, 1.2]: clip_fraction 1;
#: approx_kl = mean((r - 1) - ln r) = mean(0.5 - ln 1.5, -0.5 + ln 2) = 0.143841;
#: values 1.5, 0.1 (rollout 1.0, 0.0), returns 2.0, -1.0 -> MSE (0.25 + 1.21) / 2 = 0.73;
#: entropies 1 and 2 -> entropy_loss -1.5.
LOSS_BATCH = dict(new_logprob=torch.log(torch.tensor([1.5, 0.5])), entropy=torch.tensor([1.0, 2.0]),
                  new_value=torch.tensor([1.5, 0.1]), old_logprob=torch.zeros(2), advantages=torch.tensor([1.0, -1.0]),
                  returns=torch.tensor([2.0, -1.0]), old_value=torch.tensor([1.0, 0.0]))


@pytest.mark.parametrize(("loss", "total"), [
    # SB3: -0.2 + 0.01 * -1.5 + 0.5 * 0.73
    ("sb3", 0.15),
    # CleanRL: value clipped to 1.0 + 0.2 = 1.2 and 0.0 + 0.1 (inside the range) ->
    # 0.5 * mean(max(0.25, 0.64), max(1.21, 1.21)) = 0.4625; -0.2 - 0.015 + 0.5 * 0.4625
    ("cleanrl", 0.01625),
])
def test_each_loss_matches_a_hand_computation(ppo: ModuleType, loss: str, total: float) -> None:
    value, parts = ppo.ppo_loss(*LOSS_BATCH.values(), clip_range=0.2, loss=loss, ent_coef=0.01, vf_coef=0.5)
    assert value.item() == pytest.approx(total, abs=1e-6)
    assert parts["policy_gradient_loss"].item() == pytest.approx(-0.2, abs=1e-6)
    assert parts["value_loss"].item() == pytest.approx(0.73, abs=1e-6)  # the same quantity under both losses
    assert parts["entropy_loss"].item() == pytest.approx(-1.5)
    assert parts["clip_fraction"].item() == 1.0
    assert parts["approx_kl"].item() == pytest.approx(0.143841, abs=1e-6)
    assert ("clipped_value_loss" in parts) == (loss == "cleanrl")


def test_the_loss_gradient_reaches_value_and_policy(ppo: ModuleType) -> None:
    """With CleanRL's loss the clipped value (1.2 instead of 1.5) carries no gradient; SB3's MSE does."""
    grads = {}
    for loss in ("sb3", "cleanrl"):
        batch = {k: v.clone().requires_grad_(k in ("new_logprob", "new_value")) for k, v in LOSS_BATCH.items()}
        value, _ = ppo.ppo_loss(*batch.values(), clip_range=0.2, loss=loss, ent_coef=0.01, vf_coef=0.5)
        value.backward()
        grads[loss] = batch["new_value"].grad
    # SB3: d/dV 0.5 * mean((V - R)^2) = 0.5 * (V - R) = [-0.25, 0.55]
    assert torch.allclose(grads["sb3"], torch.tensor([-0.25, 0.55]))
    # CleanRL: sample 0 takes the clipped branch (no gradient), sample 1: 0.5 * 0.5 * (V - R) = 0.275
    assert torch.allclose(grads["cleanrl"], torch.tensor([0.0, 0.275]))


def test_bad_settings_are_one_line_config_errors(ppo: ModuleType) -> None:
    with pytest.raises(ConfigError, match="--num-minibatches 3 must divide"):
        ppo.validate(parse(ppo, "--num-minibatches", "3"))
    with pytest.raises(ConfigError, match="less than one rollout"):
        ppo.validate(parse(ppo, "--timesteps", "10"))
    with pytest.raises(ConfigError, match="random"):
        ppo.validate(parse(ppo, "--env", "Breakout-v4", "--backend", "ale_vector"))
    with pytest.raises(ConfigError, match="unknown Atari env id"):
        ppo.validate(parse(ppo, "--env", "Breakout-v9"))


def test_a_bad_flag_exits_with_one_line_before_making_a_run_folder(logdir: Path) -> None:
    result = run_script(SCRIPT, "--num-minibatches", "3", "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --num-minibatches 3 must divide")
    assert not logdir.exists()


# %% Whole runs
def test_cells_run_one_by_one_and_leave_env_and_model(tmp_path: Path) -> None:
    ns = train_cells(SCRIPT, tmp_path)
    assert isinstance(ns["model"], torch.nn.Module) and ns["env"].num_envs == 2
    assert ns["global_step"] == 128 and ns["obs"].shape == (32, 2, 4, 84, 84)
    assert (ns["run"].dir / "summary.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_gives_bit_identical_parameters(backend: str, tmp_path: Path) -> None:
    def trained(seed: int) -> dict[str, torch.Tensor]:
        return train_cells(SCRIPT, tmp_path, "--seed", str(seed), "--backend", backend)["model"].state_dict()

    first, second, other = trained(0), trained(0), trained(1)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


@pytest.mark.slow
def test_tiny_run_end_to_end(ppo: ModuleType, logdir: Path) -> None:
    result = run_script(SCRIPT, *TINY_FLAGS, "--eval-games", "1", "--gif-games", "1", "--gif-max-steps", "20",
                        "--backend", "ale_vector", "--logdir", str(logdir))
    _, summary = summary_of(result)
    # trained on the C++ vector envs, evaluated on the classic stack (FIRE after a lost life)
    assert (summary["backend"], summary["eval_backend"]) == ("ale_vector", "classic")
    for key in ("script", "env_id", "timesteps", "seed", "run_dir", "wall_seconds", "steps_per_second",
                "mean_reward", "median_reward", "model_path", "gif_path", "loss", "backend", "precision"):
        assert key in summary, key
    assert summary["script"] == "2.4_ppo_atari_from_scratch" and summary["timesteps"] == 128
    assert summary["steps_per_second"] > 0 and summary["n_games"] == 1 and summary["loss"] == "sb3"
    # 2 rollouts of 64 steps: the second one's speed, without the first's first-call costs
    assert summary["steps_per_second_after_first_iteration"] > 0
    agent = ppo.Agent(4)
    agent.load_state_dict(torch.load(summary["model_path"]))
    assert Path(summary["gif_path"]).stat().st_size > 0
    assert "step 128/128" in result.stdout  # the progress line, with no terminal
    for tag in ("train/policy_gradient_loss", "train/value_loss", "train/entropy_loss", "train/approx_kl",
                "train/clip_fraction", "train/explained_variance", "train/learning_rate", "time/fps"):
        assert scalar_steps(Path(summary["run_dir"]), tag) == [64, 128], tag


@pytest.mark.slow
@pytest.mark.parametrize(("loss", "learning_rates", "clip_ranges"), [
    ("sb3", [1.25e-4, 0.0], [0.05, 0.0]),  # SB3/zoo: both linear, progress measured after each rollout
    ("cleanrl", [2.5e-4, 1.25e-4], [0.1, 0.1]),  # CleanRL: lr annealed before the rollout, constant clip
])
def test_each_loss_logs_every_sb3_tag_with_its_schedules(loss: str, learning_rates: list[float],
                                                         clip_ranges: list[float], tmp_path: Path) -> None:
    ns = train_cells(SCRIPT, tmp_path, "--loss", loss, "--backend", "ale_vector", "--num-steps", "256",
                     "--timesteps", "1024")
    run_dir = ns["run"].dir
    for tag in SB3_TAGS:
        points = scalar_values(run_dir, tag)
        assert points, tag
        assert all(step % 2 == 0 and 0 < step <= 1024 for step, _ in points), tag
    assert [v for _, v in scalar_values(run_dir, "train/learning_rate")] == pytest.approx(learning_rates)
    assert [v for _, v in scalar_values(run_dir, "train/clip_range")] == pytest.approx(clip_ranges)
    assert bool(scalar_values(run_dir, "train/clipped_value_loss")) == (loss == "cleanrl")
