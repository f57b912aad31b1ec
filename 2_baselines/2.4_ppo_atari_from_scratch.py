"""2.4 PPO from scratch: the nine Atari details, written out in one file, beside SB3's PPO.

What you learn: what stable-baselines3's PPO (2.3) actually does on Atari. This file
rebuilds it top to bottom: config, env thunk, agent, rollout, GAE, update. Each of the
nine Atari-specific details is marked ``# Atari detail N`` where it happens; the general
PPO details (GAE, advantage normalisation, clipped value loss, entropy bonus, gradient
clipping, learning-rate annealing) are marked ``# PPO detail``. With the same seed and
step budget its TensorBoard curves sit on the same chart as 2.3's: the tags mean the same.

Credit: a close reading of CleanRL's ``ppo_atari.py`` (Huang et al., MIT licence) and of
"The 37 Implementation Details of Proximal Policy Optimization" (Huang et al., ICLR blog
track 2022), adapted to gymnasium 1.x and to this tutorial's conventions.

Speed (this is the tutorial's fastest path): ``--backend ale_vector`` steps the games in
ale-py's C++ vector env, which applies the same Atari details in C++; ``--precision bf16``
runs the network's convolutions in bfloat16 where the hardware has it. Always on: uint8
frames go straight to the convolutions' dtype, Adam is fused, and glibc keeps freed memory
for reuse (``rlbreakout.allocator``).

Run it:  python 2_baselines/2.4_ppo_atari_from_scratch.py --timesteps 10000000
         python 2_baselines/2.4_ppo_atari_from_scratch.py --backend ale_vector   # faster
Read:    2_baselines/README.md (section 2.4)
"""

# %% Imports
from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
from stable_baselines3.common.atari_wrappers import (
    ClipRewardEnv,
    EpisodicLifeEnv,
    FireResetEnv,
    MaxAndSkipEnv,
    NoopResetEnv,
)
from torch.distributions.categorical import Categorical
from torch.utils.tensorboard import SummaryWriter

from rlbreakout.allocator import keep_freed_memory
from rlbreakout.cli import common_parser, resolve_device, run_main
from rlbreakout.envs import check_env_id, env_settings, register_ale
from rlbreakout.errors import ConfigError
from rlbreakout.fast import FUSED_ADAM_DEVICES, configure_threads, resolve_precision
from rlbreakout.runs import create_run_dir, save_run_config, score_stats, script_name, seed_everything, write_summary

# %% Constants: the numbers of the Atari recipe, named once
NOOP_MAX = 30  # Atari detail 1: up to 30 no-op frames at reset
SCREEN_SIZE = 84  # Atari detail 6: 84x84 grey frames
FRAME_STACK = 4  # Atari detail 7: the last 4 frames form one observation
PIXEL_SCALE = 1.0 / 255.0  # Atari detail 9: uint8 pixels -> [0, 1], inside the network
HIDDEN_STD = math.sqrt(2)  # Atari detail 8: orthogonal init gain of the trunk (ReLU layers)
POLICY_HEAD_STD = 0.01  # Atari detail 8: tiny policy head -> initial policy close to uniform
VALUE_HEAD_STD = 1.0  # Atari detail 8: value head
NATURE_CNN_FEATURES = 512  # width of the Nature-CNN's last hidden layer
ADAM_EPS = 1e-5  # Adam's epsilon in CleanRL, openai/baselines and SB3 (torch's default is 1e-8)
ADV_NORM_EPS = 1e-8  # keeps advantage normalisation finite when all advantages are equal
SCORE_WINDOW = 100  # rollout/ep_rew_mean averages the last 100 games, as SB3's ep_info_buffer does
EVAL_SEED_OFFSET = 10_000  # evaluation games are not replays of training games
MAX_EVAL_ENVS = 5  # evaluation games are played on at most this many envs at once
MAX_EVAL_STEPS = 200_000  # safety cap on agent steps of one evaluation (games are cut at 108k frames anyway)
PRINT_EVERY_ITERATIONS = 10  # one progress line per this many rollouts
MODEL_FILE = "model.pt"
REPLAY_GIF = "replay.gif"
BACKEND_CHOICES = ("classic", "ale_vector")
PRECISION_CHOICES = ("bf16", "fp32")


# %% Config
@dataclass
class Config:
    """Everything a run depends on; the defaults are the tutorial run (CleanRL's ppo_atari defaults)."""

    env_id: str = "BreakoutNoFrameskip-v4"
    """gymnasium id of the Atari game"""
    total_timesteps: int = 10_000_000
    """env steps to train (summed over the envs)"""
    seed: int = 0
    """seed of python, numpy, torch, the envs and their action spaces"""
    num_envs: int = 8
    """games stepped side by side"""
    device: str = "auto"
    """torch device (auto: cuda if present, else cpu)"""
    logdir: str = "runs"
    """root of the run folders (TensorBoard logdir)"""
    backend: str = "classic"
    """classic: gymnasium + SB3 wrappers, every detail visible; ale_vector: the same details in C++"""
    precision: str = "bf16"
    """bf16 autocast of the network where the hardware has it (else fp32, with a warning), or fp32"""
    torch_threads: int = 0
    """torch CPU threads (0: chosen from the cores free now)"""
    num_steps: int = 128
    """steps per env per rollout (8 envs x 128 = 1024 samples per update)"""
    learning_rate: float = 2.5e-4
    """Adam's learning rate at the start"""
    anneal_lr: bool = True
    """PPO detail: the learning rate falls linearly to 0 over the run"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """PPO detail: lambda of generalised advantage estimation"""
    num_minibatches: int = 4
    """minibatches per epoch (1024 / 4 = 256 samples each)"""
    update_epochs: int = 4
    """passes over each rollout"""
    norm_adv: bool = True
    """PPO detail: normalise advantages per minibatch"""
    clip_coef: float = 0.1
    """PPO's surrogate clipping coefficient"""
    clip_vloss: bool = True
    """PPO detail: clip the value loss like the policy loss"""
    ent_coef: float = 0.01
    """PPO detail: weight of the entropy bonus"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    max_grad_norm: float = 0.5
    """PPO detail: global gradient-norm clipping"""
    eval_games: int = 10
    """whole games of the final evaluation"""
    gif_games: int = 1
    """grid side of the replay gif (3 -> 9 games side by side); 0: no gif"""
    gif_max_steps: int = 2_000
    """agent steps recorded in the gif at most"""

    @property
    def batch_size(self) -> int:
        """Samples per rollout."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """Samples per gradient step."""
        return self.batch_size // self.num_minibatches

    @property
    def num_iterations(self) -> int:
        """Rollout-then-update rounds in the run."""
        return self.total_timesteps // self.batch_size


def validate(config: Config) -> None:
    """Catch impossible settings before any work starts, one clear line each."""
    for name in ("num_envs", "num_steps", "num_minibatches", "update_epochs"):
        if getattr(config, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(config, name)}.")
    if config.batch_size % config.num_minibatches != 0:
        raise ConfigError(f"--num-minibatches {config.num_minibatches} must divide n_envs * num_steps = "
                          f"{config.batch_size}; try 4.")
    if config.total_timesteps < config.batch_size:
        raise ConfigError(f"--timesteps {config.total_timesteps} is less than one rollout "
                          f"(n_envs * num_steps = {config.batch_size}); raise it or shrink --num-steps.")
    if config.backend not in BACKEND_CHOICES:
        raise ConfigError(f"unknown backend {config.backend!r}; choose one of: {', '.join(BACKEND_CHOICES)}.")
    if config.eval_games < 0 or config.gif_games < 0:
        raise ConfigError("--eval-games and --gif-games must be >= 0 (0 turns them off).")
    if config.torch_threads < 0:
        raise ConfigError(f"--torch-threads must be >= 0 (0: chosen from the free cores), got {config.torch_threads}.")
    check_env_id(config.env_id)
    if config.backend == "ale_vector" and not isinstance(env_settings(config.env_id).emulator_frameskip, int):
        raise ConfigError(f"{config.env_id} skips a random number of frames, which the ALE vector env cannot do; "
                          f"use --backend classic, or BreakoutNoFrameskip-v4 / ALE/Breakout-v5.")
    resolve_device(config.device)  # an unknown or absent device fails here, before any run folder exists


# %% Env thunk (backend "classic"): every Atari detail is one visible wrapper
def make_env(env_id: str, seed: int, idx: int, render_mode: str | None = None) -> Callable[[], gym.Env]:
    """A thunk building env number ``idx``: the Atari wrapper stack, bottom to top."""
    settings = env_settings(env_id)  # frameskip in exactly one place; v5's sticky actions kept (rlbreakout.envs)

    def thunk() -> gym.Env:
        register_ale()
        env = gym.make(env_id, render_mode=render_mode, **settings.make_kwargs())
        # Below every Atari detail, so it sees the raw, unclipped reward of the whole game
        # (all lives): info["episode"] = {"r": score, "l": frames}, like SB3's Monitor in 2.3.
        env = gym.wrappers.RecordEpisodeStatistics(env)
        # Atari detail 1: NoopReset. A random number (1..30) of no-op frames at reset, so
        # the 8 games do not all start from the same state.
        env = NoopResetEnv(env, noop_max=NOOP_MAX)
        # Atari detail 2: MaxAndSkip. Repeat each action for 4 frames and return the pixel-wise
        # max of the last 2, because the Atari draws some sprites only every other frame.
        # (ids like ALE/Breakout-v5 already skip 4 frames inside the emulator: no wrapper then)
        if settings.wrapper_frame_skip > 1:
            env = MaxAndSkipEnv(env, skip=settings.wrapper_frame_skip)
        # Atari detail 3: EpisodicLife. A lost life ends PPO's episode (done, no bootstrap),
        # but the game goes on: a real reset happens only at game over.
        env = EpisodicLifeEnv(env)
        # Atari detail 4: FireReset. Press FIRE (then action 2) after each reset, for games that
        # wait for it. Its origin is unclear: no DeepMind paper or code does it (openai/baselines
        # issue #240); it came with openai/baselines. Without it the agent learns to press FIRE.
        if "FIRE" in env.unwrapped.get_action_meanings():
            env = FireResetEnv(env)
        # Atari detail 5: reward clipping. PPO learns from sign(reward) in {-1, 0, +1}, so one
        # set of hyperparameters fits games with scores of 21 and of 10,000.
        env = ClipRewardEnv(env)
        # Atari detail 6: 84x84 grey frames (resized first, then made grey, as CleanRL does).
        env = gym.wrappers.ResizeObservation(env, (SCREEN_SIZE, SCREEN_SIZE))
        env = gym.wrappers.GrayscaleObservation(env)
        # Atari detail 7: stack the last 4 frames, so one observation shows motion.
        # Zero padding after a reset, as SB3's VecFrameStack and the ALE vector env do.
        env = gym.wrappers.FrameStackObservation(env, FRAME_STACK, padding_type="zero")
        env.action_space.seed(seed + idx)
        return env

    return thunk


# %% Env thunk (backend "ale_vector"): the same details, applied in C++
class ClipRewardKeepScore(gym.vector.VectorWrapper):
    """Atari detail 5 for the ALE vector env, in Python, after adding up the unclipped score.

    ale-py could clip rewards itself, but then no one would see the real score. So its
    clipping is off; this wrapper sums the raw rewards per game and clips what PPO gets.
    It reports a finished game like the classic stack does (``final_info["episode"]``).
    """

    def __init__(self, env: gym.vector.VectorEnv, frames_per_action: int, frames_per_base_step: int) -> None:
        super().__init__(env)
        self.frames_per_action = frames_per_action
        self.frames_per_base_step = frames_per_base_step  # 1 for NoFrameskip ids, 4 for v5 (matches Monitor's count)
        self.game_return = np.zeros(self.num_envs, dtype=np.float64)
        self.game_frames = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.game_return[:] = 0.0
        self.game_frames[:] = info["episode_frame_number"]
        return obs, info

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self.game_return += reward
        frames = info["episode_frame_number"]
        # With life_loss_info a lost life is "terminated" too; only a game over makes ale-py
        # start a new game at once (same-step autoreset), which restarts its frame counter.
        game_over = (terminated | truncated) & (frames < self.game_frames)
        if game_over.any():
            lengths = (self.game_frames + self.frames_per_action) // self.frames_per_base_step
            info = {**info, "final_info": {"episode": {"r": np.where(game_over, self.game_return, 0.0),
                                                       "l": np.where(game_over, lengths, 0)},
                                           "_episode": game_over}}
            self.game_return[game_over] = 0.0
        self.game_frames = frames.astype(np.int64)
        return obs, np.sign(reward).astype(np.float32), terminated, truncated, info


def make_ale_vector_env(env_id: str, num_envs: int, ale_threads: int) -> gym.vector.VectorEnv:
    """``num_envs`` games in ale-py's C++ vector env, with the classic stack's Atari details."""
    settings = env_settings(env_id)
    if not isinstance(settings.emulator_frameskip, int):
        raise ConfigError(f"{env_id} skips a random number of frames, which the ALE vector env cannot do; "
                          f"use --backend classic, or BreakoutNoFrameskip-v4 / ALE/Breakout-v5.")
    from ale_py.vector_env import AtariVectorEnv

    wrapper_skips = settings.wrapper_frame_skip > 1
    frames_per_action = settings.wrapper_frame_skip if wrapper_skips else settings.emulator_frameskip
    frames_per_base_step = 1 if wrapper_skips else settings.emulator_frameskip
    envs = AtariVectorEnv(
        gym.spec(env_id).kwargs["game"],
        num_envs,
        num_threads=ale_threads,
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        repeat_action_probability=settings.repeat_action_probability,
        full_action_space=settings.full_action_space,
        max_num_frames_per_episode=settings.max_num_frames_per_episode,
        noop_max=NOOP_MAX * frames_per_base_step,  # Atari detail 1 (ale-py counts no-ops in frames)
        frameskip=frames_per_action, maxpool=wrapper_skips,  # Atari detail 2
        episodic_life=False, life_loss_info=True,  # Atari detail 3 (episodic_life=True would restart the game)
        use_fire_reset=True,  # Atari detail 4 (at game start only: no FIRE after a lost life)
        reward_clipping=False,  # Atari detail 5 happens in ClipRewardKeepScore, after the score is kept
        img_height=SCREEN_SIZE, img_width=SCREEN_SIZE, grayscale=True,  # Atari detail 6
        stack_num=FRAME_STACK,  # Atari detail 7
    )
    return ClipRewardKeepScore(envs, frames_per_action, frames_per_base_step)


def make_vector_env(
    config: Config, num_envs: int, ale_threads: int = 1, render_mode: str | None = None
) -> gym.vector.VectorEnv:
    """The training (or evaluation) envs of ``config.backend``; observations uint8 (num_envs, 4, 84, 84)."""
    if config.backend == "ale_vector":
        return make_ale_vector_env(config.env_id, num_envs, ale_threads)
    # Same-step autoreset (as in SB3 and CleanRL): the step that ends an episode already
    # returns the next episode's first observation, so no step of the rollout is wasted.
    return gym.vector.SyncVectorEnv(
        [make_env(config.env_id, config.seed, i, render_mode) for i in range(num_envs)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
    )


def finished_games(infos: dict[str, Any]) -> list[tuple[float, int]]:
    """(unclipped score, length) of each whole game that ended in this step."""
    final = infos.get("final_info")
    if not final or "episode" not in final:
        return []  # no game over (a lost life ends an episode, not the game)
    mask = final["_episode"]
    return [(float(r), int(n)) for r, n in zip(final["episode"]["r"][mask], final["episode"]["l"][mask])]


# %% Agent: one Nature-CNN trunk shared by actor and critic
def compute_dtype(device: torch.device) -> torch.dtype:
    """The dtype convolutions run in here: autocast's (bf16) inside an autocast block, else float32."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return torch.float32


def layer_init(layer: nn.Module, std: float = HIDDEN_STD, bias_const: float = 0.0) -> nn.Module:
    """Atari detail 8: orthogonal weights with gain ``std``, zero biases."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Atari detail 8: the Nature-DQN CNN (Mnih et al., 2015) as a shared trunk, two linear heads."""

    def __init__(self, n_actions: int, channels_last: bool = False) -> None:
        super().__init__()
        self.network = nn.Sequential(
            layer_init(nn.Conv2d(FRAME_STACK, 32, 8, stride=4)),
            nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)),
            nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)),
            nn.ReLU(),
            nn.Flatten(),
            layer_init(nn.Linear(64 * 7 * 7, NATURE_CNN_FEATURES)),
            nn.ReLU(),
        )
        self.actor = layer_init(nn.Linear(NATURE_CNN_FEATURES, n_actions), std=POLICY_HEAD_STD)
        self.critic = layer_init(nn.Linear(NATURE_CNN_FEATURES, 1), std=VALUE_HEAD_STD)
        self.channels_last = channels_last
        if channels_last:  # NHWC conv weights: what fast GPU convolution kernels want
            self.network.to(memory_format=torch.channels_last)

    def hidden(self, obs: torch.Tensor) -> torch.Tensor:
        """The trunk's 512 features of uint8 observations (float32, whatever precision ran inside)."""
        # Atari detail 9: pixels 0..255 -> [0, 1], converted straight to the dtype the convolutions
        # run in (bf16 under autocast) and scaled in place: one pass over the batch, not three.
        x = obs.to(compute_dtype(obs.device)).mul_(PIXEL_SCALE)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.network(x).float()

    def get_value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs), shape (batch,)."""
        hidden = self.hidden(obs)
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return self.critic(hidden).squeeze(-1)

    def get_action_and_value(
        self, obs: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample an action (or score the given one): action, log-prob, entropy, value."""
        hidden = self.hidden(obs)
        # The two small heads always run in fp32: bf16 logits would add noise to PPO's ratio.
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            logits = self.actor(hidden)
            value = self.critic(hidden).squeeze(-1)
        dist = Categorical(logits=logits)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), value


# %% GAE: advantages from one rollout
def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO detail: generalised advantage estimation (Schulman et al., 2016), written out.

    :param rewards: (steps, envs) clipped rewards; ``rewards[t]`` followed the action at step t
    :param values: (steps, envs) V(obs[t])
    :param dones: (steps, envs) 1.0 where the action at step t ended the episode (a lost life
        or a game over): then nothing after it is bootstrapped into step t
    :param next_value: (envs,) V of the observation after the last step
    :return: advantages and returns (= advantages + values, the value head's targets)
    """
    num_steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(next_value)
    for t in reversed(range(num_steps)):
        following_value = next_value if t == num_steps - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * following_value * not_done - values[t]  # one-step TD error
        last_gae = delta + gamma * gae_lambda * not_done * last_gae
        advantages[t] = last_gae
    return advantages, advantages + values


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var(target - predicted) / Var(target), as SB3 logs it (1: perfect, 0: no better than the mean)."""
    var_target = float(target.var(unbiased=False))
    return float("nan") if var_target == 0 else 1.0 - float((target - predicted).var(unbiased=False)) / var_target


# %% Update: 4 epochs of clipped PPO over 4 minibatches
def ppo_update(
    agent: Agent,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    config: Config,
    autocast: Callable[[], Any],
) -> dict[str, float]:
    """One PPO update over a flattened rollout; returns SB3's ``train/*`` statistics."""
    stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("pg", "value", "entropy", "kl", "clip")}
    loss = torch.zeros(())
    for _epoch in range(config.update_epochs):
        order = torch.randperm(config.batch_size, device=batch["obs"].device)
        for start in range(0, config.batch_size, config.minibatch_size):
            mb = order[start:start + config.minibatch_size]
            with autocast():
                _, new_logprob, entropy, new_value = agent.get_action_and_value(batch["obs"][mb], batch["actions"][mb])
            log_ratio = new_logprob - batch["logprobs"][mb]
            ratio = log_ratio.exp()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - log_ratio).mean()  # the low-variance estimator SB3 and CleanRL log
                clip_fraction = ((ratio - 1.0).abs() > config.clip_coef).float().mean()

            advantages = batch["advantages"][mb]
            if config.norm_adv:  # PPO detail: per-minibatch advantage normalisation
                advantages = (advantages - advantages.mean()) / (advantages.std() + ADV_NORM_EPS)

            # Clipped surrogate policy loss
            pg_loss = torch.max(
                -advantages * ratio,
                -advantages * torch.clamp(ratio, 1 - config.clip_coef, 1 + config.clip_coef),
            ).mean()

            # PPO detail: clipped value loss (squared error; SB3's train/value_loss is the same quantity)
            returns, old_values = batch["returns"][mb], batch["values"][mb]
            value_error = (new_value - returns) ** 2
            if config.clip_vloss:
                clipped_value = old_values + torch.clamp(new_value - old_values, -config.clip_coef, config.clip_coef)
                value_error = torch.max(value_error, (clipped_value - returns) ** 2)
            value_loss = value_error.mean()

            # PPO detail: entropy bonus (SB3 logs -entropy as train/entropy_loss)
            entropy_loss = -entropy.mean()
            # The 0.5 * value loss of CleanRL and openai/baselines (SB3 omits the 0.5).
            loss = pg_loss + config.ent_coef * entropy_loss + config.vf_coef * 0.5 * value_loss

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)  # PPO detail: global grad clipping
            optimizer.step()

            for key, value in (("pg", pg_loss), ("value", value_loss), ("entropy", entropy_loss),
                               ("kl", approx_kl), ("clip", clip_fraction)):
                stats[key].append(value.detach())
    mean = {key: float(torch.stack(values).mean()) for key, values in stats.items()}
    return {
        "train/policy_gradient_loss": mean["pg"],
        "train/value_loss": mean["value"],
        "train/entropy_loss": mean["entropy"],
        "train/approx_kl": mean["kl"],
        "train/clip_fraction": mean["clip"],
        "train/loss": float(loss.detach()),
        "train/explained_variance": explained_variance(batch["values"], batch["returns"]),
        "train/clip_range": config.clip_coef,
    }


# %% Precision: bf16 autocast where the hardware has it
def autocast_factory(device: torch.device, precision: str) -> Callable[[], Any]:
    """A context-manager factory: bf16 autocast for ``precision == "bf16"``, else a no-op."""
    enabled = precision == "bf16"
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


# %% Training: rollout, GAE, update, repeat
@dataclass
class TrainResult:
    """What :func:`train` leaves behind for evaluation and the summary."""

    agent: Agent
    global_step: int
    train_seconds: float
    first_iteration_seconds: float
    """time of the first rollout + update (first-call costs), which the benchmark leaves out"""
    train_scores: list[float]
    precision: str
    threads: dict[str, Any]
    rollout: dict[str, torch.Tensor]
    """the last rollout's buffers (obs, actions, logprobs, rewards, dones, values), for inspection"""


def train(config: Config, run_dir: Path, writer: SummaryWriter | None = None) -> TrainResult:
    """Train an Agent with PPO as ``config`` says; log to ``writer`` (TensorBoard)."""
    seed_everything(config.seed)  # python, numpy, torch
    device = torch.device(resolve_device(config.device))
    precision = resolve_precision(config.precision, str(device))
    threads = configure_threads(config.num_envs, torch_threads=config.torch_threads or None,
                                apply=device.type == "cpu")
    autocast = autocast_factory(device, precision)
    keep_freed_memory()  # big tensors' memory is reused, not faulted in again every minibatch
    print(f"device {device}, precision {precision}, torch threads {threads['torch_threads']}, "
          f"ALE threads {threads['ale_threads']} (free cores {threads['free_cores']} of {threads['cores']})", flush=True)

    envs = make_vector_env(config, config.num_envs, ale_threads=threads["ale_threads"])
    # channels_last pays off on GPUs; on CPU (oneDNN, bf16) it measured slower, see the README.
    agent = Agent(int(envs.single_action_space.n), channels_last=device.type == "cuda").to(device)
    # fused: one kernel for all parameters instead of a dozen small ops per tensor (same Adam)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=ADAM_EPS,
                                 fused=device.type in FUSED_ADAM_DEVICES)

    # The rollout buffer; observations stay uint8 (4x smaller than float32, scaled inside the network).
    obs_shape = envs.single_observation_space.shape
    obs = torch.zeros((config.num_steps, config.num_envs, *obs_shape), dtype=torch.uint8, device=device)
    actions = torch.zeros((config.num_steps, config.num_envs), dtype=torch.long, device=device)
    logprobs = torch.zeros((config.num_steps, config.num_envs), device=device)
    rewards = torch.zeros((config.num_steps, config.num_envs), device=device)
    dones = torch.zeros((config.num_steps, config.num_envs), device=device)
    values = torch.zeros((config.num_steps, config.num_envs), device=device)

    recent_scores: deque[float] = deque(maxlen=SCORE_WINDOW)
    recent_lengths: deque[int] = deque(maxlen=SCORE_WINDOW)
    train_scores: list[float] = []
    global_step = 0
    next_obs_np, _ = envs.reset(seed=config.seed)  # env i is seeded with seed + i
    next_obs = torch.as_tensor(next_obs_np, device=device)
    start = time.perf_counter()
    first_iteration_seconds = 0.0
    try:
        for iteration in range(1, config.num_iterations + 1):
            # PPO detail: learning-rate annealing, linearly from learning_rate to 0
            if config.anneal_lr:
                optimizer.param_groups[0]["lr"] = config.learning_rate * (1.0 - (iteration - 1) / config.num_iterations)

            # --- Rollout: num_steps steps of num_envs games
            for step in range(config.num_steps):
                global_step += config.num_envs
                obs[step] = next_obs
                with torch.inference_mode(), autocast():
                    action, logprob, _, value = agent.get_action_and_value(obs[step])
                actions[step], logprobs[step], values[step] = action, logprob, value

                next_obs_np, reward, terminated, truncated, infos = envs.step(action.cpu().numpy())
                rewards[step] = torch.as_tensor(reward, device=device)  # clipped by Atari detail 5
                dones[step] = torch.as_tensor(terminated | truncated, device=device)
                next_obs = torch.as_tensor(next_obs_np, device=device)

                for score, length in finished_games(infos):  # unclipped whole games
                    recent_scores.append(score)
                    recent_lengths.append(length)
                    train_scores.append(score)
                    if writer is not None:
                        writer.add_scalar("game/score", score, global_step)
                        writer.add_scalar("game/length", length, global_step)

            elapsed = time.perf_counter() - start
            if writer is not None:
                if recent_scores:
                    writer.add_scalar("rollout/ep_rew_mean", float(np.mean(recent_scores)), global_step)
                    writer.add_scalar("rollout/ep_len_mean", float(np.mean(recent_lengths)), global_step)
                writer.add_scalar("time/fps", int(global_step / elapsed), global_step)

            # --- GAE on the rollout, bootstrapped from V(next_obs)
            with torch.inference_mode(), autocast():
                next_value = agent.get_value(next_obs)
            advantages, returns = compute_gae(rewards, values, dones, next_value, config.gamma, config.gae_lambda)

            # --- Update: flatten (steps, envs) into one batch of 1024 samples
            batch = {
                "obs": obs.reshape(-1, *obs_shape),
                "actions": actions.reshape(-1),
                "logprobs": logprobs.reshape(-1),
                "advantages": advantages.reshape(-1),
                "returns": returns.reshape(-1),
                "values": values.reshape(-1),
            }
            stats = ppo_update(agent, optimizer, batch, config, autocast)
            if iteration == 1:
                first_iteration_seconds = time.perf_counter() - start
            if writer is not None:
                writer.add_scalar("train/learning_rate", optimizer.param_groups[0]["lr"], global_step)
                for tag, value in stats.items():
                    writer.add_scalar(tag, value, global_step)
            if iteration % PRINT_EVERY_ITERATIONS == 0 or iteration == config.num_iterations:
                mean_score = f"{np.mean(recent_scores):.1f}" if recent_scores else "-"
                print(f"step {global_step}/{config.total_timesteps}  games {len(train_scores)}  "
                      f"mean score (last {SCORE_WINDOW}) {mean_score}  "
                      f"{global_step / (time.perf_counter() - start):.0f} steps/s", flush=True)
    except KeyboardInterrupt:
        torch.save(agent.state_dict(), run_dir / MODEL_FILE)
        print(f"\ninterrupted at step {global_step}; weights saved to {run_dir / MODEL_FILE}", flush=True)
        raise
    finally:
        envs.close()
    rollout = {"obs": obs, "actions": actions, "logprobs": logprobs,
               "rewards": rewards, "dones": dones, "values": values}
    return TrainResult(agent, global_step, time.perf_counter() - start, first_iteration_seconds, train_scores,
                       precision, threads, rollout)


# %% Evaluation and replay: whole games, unclipped scores
def evaluate(agent: Agent, config: Config, precision: str, n_games: int) -> tuple[list[float], list[int]]:
    """Play ``n_games`` whole games with the trained policy (sampling, as in training).

    The games are spread evenly over the envs, so the short (bad) games that finish first
    are not over-counted.
    """
    device = next(agent.parameters()).device
    autocast = autocast_factory(device, precision)
    num_envs = min(n_games, MAX_EVAL_ENVS)
    targets = [(n_games + i) // num_envs for i in range(num_envs)]
    counts = [0] * num_envs
    scores: list[float] = []
    lengths: list[int] = []
    envs = make_vector_env(config, num_envs)
    try:
        next_obs, _ = envs.reset(seed=config.seed + EVAL_SEED_OFFSET)
        for _ in range(MAX_EVAL_STEPS):
            if counts == targets:
                break
            with torch.inference_mode(), autocast():
                action, _, _, _ = agent.get_action_and_value(torch.as_tensor(next_obs, device=device))
            next_obs, _, _, _, infos = envs.step(action.cpu().numpy())
            final = infos.get("final_info", {})
            if "episode" in final:
                for i in np.flatnonzero(final["_episode"]):
                    if counts[i] < targets[i]:
                        counts[i] += 1
                        scores.append(float(final["episode"]["r"][i]))
                        lengths.append(int(final["episode"]["l"][i]))
    finally:
        envs.close()
    return scores, lengths


def record_gif(agent: Agent, config: Config, precision: str, path: Path) -> Path:
    """A gif of ``gif_games**2`` games side by side: the real screen, not the 84x84 view."""
    from rlbreakout.render import tile_grid, write_gif

    device = next(agent.parameters()).device
    autocast = autocast_factory(device, precision)
    grid = config.gif_games
    # The C++ vector env keeps no RGB screen, so the replay always uses the classic stack.
    envs = make_vector_env(Config(**{**asdict(config), "backend": "classic"}), grid * grid, render_mode="rgb_array")
    frames: list[np.ndarray] = []
    finished = np.zeros(grid * grid, dtype=bool)
    screens: list[np.ndarray] = []
    try:
        next_obs, _ = envs.reset(seed=config.seed + EVAL_SEED_OFFSET)
        for _ in range(config.gif_max_steps):
            # A finished game holds its last screen while the others play on.
            screens = [held if done else now for now, held, done in
                       zip(envs.call("render"), screens or envs.call("render"), finished)]
            frames.append(tile_grid(screens, grid))
            with torch.inference_mode(), autocast():
                action, _, _, _ = agent.get_action_and_value(torch.as_tensor(next_obs, device=device))
            next_obs, _, _, _, infos = envs.step(action.cpu().numpy())
            final = infos.get("final_info", {})
            if "episode" in final:
                finished |= final["_episode"]
            if finished.all():
                break
    finally:
        envs.close()
    return write_gif(frames, path)


# %% Main: flags -> config -> train -> evaluate -> gif -> summary.json
def parse_config(argv: list[str] | None = None) -> Config:
    """The command line as a Config (defaults: the tutorial run)."""
    defaults = Config()
    parser = common_parser(__doc__.splitlines()[0], env=defaults.env_id, timesteps=defaults.total_timesteps,
                           seed=defaults.seed, n_envs=defaults.num_envs, device=defaults.device, logdir=defaults.logdir)
    speed = parser.add_argument_group("speed")
    speed.add_argument("--backend", choices=BACKEND_CHOICES, default=defaults.backend,
                       help="classic: gymnasium + SB3 wrappers (every detail visible); ale_vector: ale-py's C++ vector env")
    speed.add_argument("--precision", choices=PRECISION_CHOICES, default=defaults.precision,
                       help="bf16 autocast where the hardware has it (falls back to fp32 with a warning), or fp32")
    speed.add_argument("--torch-threads", type=int, default=defaults.torch_threads,
                       help="torch CPU threads (0: from the cores free now)")
    ppo = parser.add_argument_group("PPO")
    ppo.add_argument("--num-steps", type=int, default=defaults.num_steps, help="steps per env per rollout")
    ppo.add_argument("--num-minibatches", type=int, default=defaults.num_minibatches, help="minibatches per epoch")
    ppo.add_argument("--update-epochs", type=int, default=defaults.update_epochs, help="passes over each rollout")
    ppo.add_argument("--learning-rate", type=float, default=defaults.learning_rate, help="initial Adam learning rate")
    ppo.add_argument("--clip-coef", type=float, default=defaults.clip_coef, help="PPO clipping coefficient")
    ppo.add_argument("--ent-coef", type=float, default=defaults.ent_coef, help="entropy bonus weight")
    ppo.add_argument("--vf-coef", type=float, default=defaults.vf_coef, help="value loss weight")
    ppo.add_argument("--gamma", type=float, default=defaults.gamma, help="discount factor")
    ppo.add_argument("--gae-lambda", type=float, default=defaults.gae_lambda, help="GAE lambda")
    run = parser.add_argument_group("evaluation and replay")
    run.add_argument("--eval-games", type=int, default=defaults.eval_games,
                     help="whole games of the final evaluation (0: none)")
    run.add_argument("--gif-games", type=int, default=defaults.gif_games,
                     help="grid side of the replay gif (3 -> 9 games); 0: no gif")
    run.add_argument("--gif-max-steps", type=int, default=defaults.gif_max_steps,
                     help="agent steps recorded in the gif at most")
    args = parser.parse_args(argv)
    return Config(
        env_id=args.env, total_timesteps=args.timesteps, seed=args.seed, num_envs=args.n_envs, device=args.device,
        logdir=args.logdir, backend=args.backend, precision=args.precision, torch_threads=args.torch_threads,
        num_steps=args.num_steps, num_minibatches=args.num_minibatches, update_epochs=args.update_epochs,
        learning_rate=args.learning_rate, clip_coef=args.clip_coef, ent_coef=args.ent_coef, vf_coef=args.vf_coef,
        gamma=args.gamma, gae_lambda=args.gae_lambda, eval_games=args.eval_games, gif_games=args.gif_games,
        gif_max_steps=args.gif_max_steps,
    )


def main(argv: list[str] | None = None) -> Path:
    """Train, evaluate, record, and write summary.json (its path is printed last)."""
    config = parse_config(argv)
    validate(config)
    started = time.perf_counter()
    name = script_name(__file__)
    run_dir = create_run_dir(config.logdir, name, config.env_id, config.seed)
    save_run_config(run_dir, asdict(config))
    print(f"run folder: {run_dir}  (tensorboard --logdir {config.logdir})", flush=True)

    # %% Train
    writer = SummaryWriter(str(run_dir))
    try:
        result = train(config, run_dir, writer)
    finally:
        writer.close()
    model_path = run_dir / MODEL_FILE
    torch.save(result.agent.state_dict(), model_path)
    steps_per_second = result.global_step / result.train_seconds
    # Like the benchmark's SB3 figures: without the first iteration, when there are more.
    steady_steps = result.global_step - config.batch_size
    steady_steps_per_second = (round(steady_steps / (result.train_seconds - result.first_iteration_seconds), 2)
                               if steady_steps > 0 else None)
    print(f"trained {result.global_step} steps in {result.train_seconds:.1f} s ({steps_per_second:.0f} steps/s, "
          f"{config.backend}, {result.precision}, torch threads {result.threads['torch_threads']})", flush=True)

    # %% Evaluate whole games and record a gif
    scores, lengths = ([], []) if not config.eval_games else evaluate(
        result.agent, config, result.precision, config.eval_games)
    final_eval = score_stats(scores)
    gif_path = record_gif(result.agent, config, result.precision, run_dir / REPLAY_GIF) if config.gif_games else None
    print(f"final evaluation: mean {final_eval['mean_reward']:.1f}, median {final_eval['median_reward']:.1f} "
          f"over {final_eval['n_games']} whole games; gif {gif_path}", flush=True)

    # %% Summary
    return write_summary(run_dir, {
        "script": name,
        "env_id": config.env_id,
        "timesteps": result.global_step,
        "seed": config.seed,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "steps_per_second": round(steps_per_second, 2),
        "steps_per_second_after_first_iteration": steady_steps_per_second,
        **final_eval,
        "scores": scores,
        "eval_lengths": lengths,
        "train_game_scores": result.train_scores[-SCORE_WINDOW:],
        "model_path": str(model_path),
        "gif_path": str(gif_path) if gif_path else None,
        "tensorboard_dir": str(run_dir),
        "n_envs": config.num_envs,
        "backend": config.backend,
        "precision": result.precision,
        "torch_threads": result.threads["torch_threads"],
    })


if __name__ == "__main__":
    run_main(main)
