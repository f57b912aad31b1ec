"""2.4 PPO from scratch: SB3's PPO on Atari written out in one file, the nine Atari details marked.

What you learn: what 2.3's ``PPO("CnnPolicy", ...)`` computes, in CleanRL's order: settings,
env, agent, rollout, GAE, update, log. Each Atari detail is marked ``# Atari detail N`` where
it happens, the general ones ``# PPO detail``. The hyperparameters are 2.3's (the zoo's), and
the TensorBoard tags are SB3's, so this run's curves overlay 2.3's on one chart.

Which loss (``--loss``):
  sb3 (default): SB3's PPO as the zoo runs it: the clip range falls linearly from 0.1 to 0
      (like the learning rate, both updated after each rollout), no value clipping (SB3's
      ``clip_range_vf=None``), loss = policy loss + 0.01 * entropy loss + 0.5 * MSE(V, returns).
  cleanrl: CleanRL's ``ppo_atari.py``: a constant clip range of 0.1, the value loss clipped like
      the policy ratio and halved: 0.5 * max((V - R)^2, (V_clipped - R)^2), the learning rate
      annealed before each rollout. (With vf_coef 0.5 its value term weighs a quarter.)
Both log SB3's tags; ``train/value_loss`` is the plain MSE in both, so the two curves compare.

Speed: ``--backend ale_vector``, ``--precision bf16``. Run folder, scores, evaluation and gif are one call
each (rlbreakout/scratch_run.py). 2.5 runs this file's agent, GAE, loss and update with every lever.

Credit: a close reading of CleanRL's ``ppo_atari.py`` (Huang et al., MIT licence), of SB3's
``ppo.py`` and of "The 37 Implementation Details of PPO" (Huang et al., ICLR blog track 2022).

Run it:    python 2_baselines/2.4_ppo_atari_from_scratch.py --timesteps 1000000
           python 2_baselines/2.4_ppo_atari_from_scratch.py --loss cleanrl   # CleanRL's loss, same chart
In Spyder: edit the Settings cell (no flag reaches a cell), run it cell by cell (Ctrl+Return);
           env, model and the rollout buffers stay in the Variable Explorer.
Read:      2_baselines/README.md (section 2.4)
"""

# %% Imports
import math

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from stable_baselines3.common.atari_wrappers import (ClipRewardEnv, EpisodicLifeEnv, FireResetEnv, MaxAndSkipEnv,
                                                    NoopResetEnv)
from stable_baselines3.common.utils import explained_variance
from torch.distributions.categorical import Categorical

from rlbreakout.cli import common_parser, parse_script_args, resolve_device
from rlbreakout.env_ids import EVAL_BACKEND, env_settings, register_ale
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import number, whole
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.schedules import constant_schedule, linear_schedule
from rlbreakout.scratch_run import ScratchRun, add_replay_flags
from rlbreakout.speed.scratch_speed import (add_speed_flags, check_backend, make_ale_vector_envs, scale_pixels,
                                           speed_levers)

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env
TIMESTEPS = 10_000_000  # --timesteps: the zoo's budget (2.3's); 1_000_000 for a first run
SEED = 0  # --seed
N_ENVS = 8  # --n-envs: the zoo's 8 envs
NOOP_MAX = 30  # Atari detail 1: up to 30 no-op frames at reset
SCREEN_SIZE = 84  # Atari detail 6: 84x84 grey frames
FRAME_STACK = 4  # Atari detail 7: the last 4 frames form one observation
PIXEL_SCALE = 1.0 / 255.0  # Atari detail 9: uint8 pixels -> [0, 1], inside the network
HIDDEN_STD = math.sqrt(2)  # Atari detail 8: orthogonal init gain of the trunk (ReLU layers)
POLICY_HEAD_STD = 0.01  # Atari detail 8: tiny policy head -> initial policy close to uniform
VALUE_HEAD_STD = 1.0  # Atari detail 8: value head
NATURE_CNN_FEATURES = 512  # width of the Nature-CNN's last hidden layer
ADAM_EPS = 1e-5  # Adam's epsilon in SB3, CleanRL and openai/baselines (torch's default is 1e-8)
ADV_NORM_EPS = 1e-8  # keeps advantage normalisation finite when all advantages are equal
LOSS_CHOICES = ("sb3", "cleanrl")


def ppo_parser(description, backend="classic", precision="fp32"):
    """Every flag of the from-scratch PPO; the PPO defaults are 2.3's (the zoo's)."""
    zoo = ZOO_ATARI_PPO
    parser = common_parser(description, env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=N_ENVS)
    add_speed_flags(parser, backend=backend, precision=precision)  # --backend, --precision, --torch-threads
    ppo = parser.add_argument_group("PPO")
    ppo.add_argument("--loss", choices=LOSS_CHOICES, default="sb3", help="sb3: SB3's loss; cleanrl: CleanRL's")
    ppo.add_argument("--num-steps", type=whole(1, 65_536), default=zoo.n_steps, help="steps per env per rollout")
    ppo.add_argument("--num-minibatches", type=whole(1), default=zoo.n_steps * zoo.n_envs // zoo.batch_size,
                     help="minibatches per epoch")
    ppo.add_argument("--update-epochs", type=whole(1, 1000), default=zoo.n_epochs, help="passes over each rollout")
    ppo.add_argument("--learning-rate", type=number(0, 1, low_open=True), default=zoo.learning_rate, help="initial Adam learning rate")
    ppo.add_argument("--clip-coef", type=number(0, 1, low_open=True), default=zoo.clip_range, help="initial PPO clip range")
    ppo.add_argument("--ent-coef", type=number(0, 1), default=zoo.ent_coef, help="entropy bonus weight")
    ppo.add_argument("--vf-coef", type=number(0, 10), default=zoo.vf_coef, help="value loss weight")
    ppo.add_argument("--max-grad-norm", type=number(0, 1000, low_open=True), default=zoo.max_grad_norm, help="global gradient-norm clip")
    ppo.add_argument("--gamma", type=number(0, 1, low_open=True), default=zoo.gamma, help="discount factor")
    ppo.add_argument("--gae-lambda", type=number(0, 1), default=zoo.gae_lambda, help="GAE lambda")
    add_replay_flags(parser)  # --eval-games, --gif-games, --gif-max-steps
    return parser


def validate(args):
    """Catch impossible settings before any work starts (and before the run folder), one line each;
    each flag's own range (its ``type=``) argparse has checked already."""
    batch = args.n_envs * args.num_steps
    if batch % args.num_minibatches != 0:
        raise ConfigError(f"--num-minibatches {args.num_minibatches} must divide n_envs * num_steps = {batch}; try 4.")
    if args.timesteps < batch:
        raise ConfigError(f"--timesteps {args.timesteps} is less than one rollout (n_envs * num_steps = {batch}); "
                          f"raise it or shrink --num-steps.")
    check_backend(args.env, args.backend)
    return torch.device(resolve_device(args.device))  # an unknown or absent device fails here


args = parse_script_args(ppo_parser(__doc__.splitlines()[0]))
device = validate(args)
speed = speed_levers(device, args.backend, args.precision, args.n_envs, args.torch_threads)
run = ScratchRun(__file__, args, speed)  # run folder, config.json, seeds, TensorBoard writer


# %% Environment: 8 Breakouts, every Atari detail one visible wrapper
def make_env(env_id, seed, idx):
    """A thunk building env number ``idx``: the Atari wrapper stack, bottom to top."""
    settings = env_settings(env_id)  # frameskip in exactly one place; v5's sticky actions kept

    def thunk():
        register_ale()
        env = gym.make(env_id, **settings.make_kwargs())
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
        # wait for it. It came with openai/baselines (no DeepMind paper does it, baselines issue #240).
        if "FIRE" in env.unwrapped.get_action_meanings():
            env = FireResetEnv(env)
        # Atari detail 5: reward clipping. PPO learns from sign(reward) in {-1, 0, +1}, so one
        # set of hyperparameters fits games with scores of 21 and of 10,000.
        env = ClipRewardEnv(env)
        # Atari detail 6: 84x84 grey frames (resized first, then made grey, as CleanRL does).
        env = gym.wrappers.ResizeObservation(env, (SCREEN_SIZE, SCREEN_SIZE))
        env = gym.wrappers.GrayscaleObservation(env)
        # Atari detail 7: stack the last 4 frames, so one observation shows motion; zero
        # padding after a reset, as SB3's VecFrameStack does.
        env = gym.wrappers.FrameStackObservation(env, FRAME_STACK, padding_type="zero")
        env.action_space.seed(seed + idx)
        return env

    return thunk


def make_envs(env_id, num_envs, seed, backend="classic", ale_threads=1):
    """The training (or evaluation) envs; observations uint8 (num_envs, 4, 84, 84)."""
    if backend == "ale_vector":  # speed lever: the same details in C++ threads
        return make_ale_vector_envs(env_id, num_envs, ale_threads=ale_threads, noop_max=NOOP_MAX,
                                    screen_size=SCREEN_SIZE, frame_stack=FRAME_STACK)
    # Same-step autoreset (as in SB3 and CleanRL): the step that ends an episode already
    # returns the next episode's first observation, so no step of the rollout is wasted.
    return gym.vector.SyncVectorEnv([make_env(env_id, seed, i) for i in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


env = make_envs(args.env, args.n_envs, args.seed, args.backend, speed.ale_threads)
print("observation space:", env.single_observation_space, " actions:", env.single_action_space)


# %% Agent: one Nature-CNN trunk shared by actor and critic
def layer_init(layer, std=HIDDEN_STD, bias_const=0.0):
    """Atari detail 8: orthogonal weights with gain ``std``, zero biases."""
    nn.init.orthogonal_(layer.weight, std)
    nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """Atari detail 8: the Nature-DQN CNN (Mnih et al., 2015) as a shared trunk, two linear heads."""

    def __init__(self, n_actions):
        super().__init__()
        self.network = nn.Sequential(
            layer_init(nn.Conv2d(FRAME_STACK, 32, 8, stride=4)), nn.ReLU(),
            layer_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
            layer_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(),
            nn.Flatten(),
            layer_init(nn.Linear(64 * 7 * 7, NATURE_CNN_FEATURES)), nn.ReLU(),
        )
        self.actor = layer_init(nn.Linear(NATURE_CNN_FEATURES, n_actions), std=POLICY_HEAD_STD)
        self.critic = layer_init(nn.Linear(NATURE_CNN_FEATURES, 1), std=VALUE_HEAD_STD)

    def hidden(self, obs):
        """The trunk's 512 features of uint8 observations, as float32."""
        return self.network(scale_pixels(obs, PIXEL_SCALE)).float()  # Atari detail 9: [0, 255] -> [0, 1]

    def get_value(self, obs):
        """V(obs), shape (batch,)."""
        hidden = self.hidden(obs)
        with torch.autocast(hidden.device.type, enabled=False):  # the small heads stay fp32 under bf16
            return self.critic(hidden).squeeze(-1)

    def get_action_and_value(self, obs, action=None):
        """Sample an action (or score the given one): action, log-prob, entropy, value."""
        hidden = self.hidden(obs)
        with torch.autocast(hidden.device.type, enabled=False):  # the small heads stay fp32 under bf16
            logits, value = self.actor(hidden), self.critic(hidden).squeeze(-1)
        dist = Categorical(logits=logits)
        if action is None:
            action = dist.sample()
        return action, dist.log_prob(action), dist.entropy(), value


model = speed.prepare(Agent(int(env.single_action_space.n)))
optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, eps=ADAM_EPS, fused=speed.fused_adam)

# %% Rollout buffer: observations stay uint8 (4x smaller than float32, scaled inside the network)
obs_shape = env.single_observation_space.shape
obs = torch.zeros((args.num_steps, args.n_envs, *obs_shape), dtype=torch.uint8, device=device)
actions = torch.zeros((args.num_steps, args.n_envs), dtype=torch.long, device=device)
logprobs, rewards, dones, values = (torch.zeros((args.num_steps, args.n_envs), device=device) for _ in range(4))


# %% GAE, loss and update: the algorithm
def compute_gae(rewards, values, dones, next_value, gamma, gae_lambda):
    """PPO detail: generalised advantage estimation (Schulman et al., 2016), written out.

    :param rewards: (steps, envs) clipped rewards; ``rewards[t]`` followed the action at step t
    :param values: (steps, envs) V(obs[t])
    :param dones: (steps, envs) 1.0 where the action at step t ended the episode (a lost life
        or a game over): then nothing after it is bootstrapped into step t
    :param next_value: (envs,) V of the observation after the last step
    :return: advantages and returns (= advantages + values, the value head's targets)
    """
    advantages = torch.zeros_like(rewards)
    last_gae = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[0])):
        following_value = next_value if t == rewards.shape[0] - 1 else values[t + 1]
        not_done = 1.0 - dones[t]
        delta = rewards[t] + gamma * following_value * not_done - values[t]  # one-step TD error
        last_gae = delta + gamma * gae_lambda * not_done * last_gae
        advantages[t] = last_gae
    return advantages, advantages + values


def ppo_loss(new_logprob, entropy, new_value, old_logprob, advantages, returns, old_value, *,
             clip_range, loss="sb3", ent_coef=0.01, vf_coef=0.5):
    """PPO's loss on one minibatch (advantages already normalised); returns (loss, what SB3 logs)."""
    log_ratio = new_logprob - old_logprob
    ratio = log_ratio.exp()
    # Clipped surrogate: the pessimistic (larger) of the unclipped and clipped losses
    pg_loss = torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)).mean()
    mse = F.mse_loss(new_value, returns)  # SB3's value loss (clip_range_vf=None), and what both log
    if loss == "cleanrl":  # PPO detail: the value may move at most clip_range from its rollout value; halved
        clipped_value = old_value + torch.clamp(new_value - old_value, -clip_range, clip_range)
        value_term = 0.5 * torch.max((new_value - returns) ** 2, (clipped_value - returns) ** 2).mean()
    else:
        value_term = mse
    entropy_loss = -entropy.mean()  # PPO detail: entropy bonus (SB3 logs -entropy as entropy_loss)
    total = pg_loss + ent_coef * entropy_loss + vf_coef * value_term
    with torch.no_grad():
        parts = {"policy_gradient_loss": pg_loss, "value_loss": mse, "entropy_loss": entropy_loss,
                 "approx_kl": ((ratio - 1) - log_ratio).mean(),  # the low-variance estimator SB3 logs
                 "clip_fraction": ((ratio - 1).abs() > clip_range).float().mean()}
        if loss == "cleanrl":
            parts["clipped_value_loss"] = value_term
    return total, {key: value.detach() for key, value in parts.items()}


def ppo_update(model, optimizer, batch, args, clip_range, autocast):
    """``args.update_epochs`` passes of minibatch PPO over a flattened rollout; SB3's ``train/*`` means."""
    size = batch["actions"].shape[0]
    minibatch_size = size // args.num_minibatches
    logged = {}
    for _epoch in range(args.update_epochs):
        order = torch.randperm(size, device=batch["actions"].device)
        for start in range(0, size, minibatch_size):
            mb = order[start:start + minibatch_size]
            with autocast():
                _, new_logprob, entropy, new_value = model.get_action_and_value(batch["obs"][mb], batch["actions"][mb])
            advantages = batch["advantages"][mb]
            # PPO detail: advantages normalised per minibatch
            advantages = (advantages - advantages.mean()) / (advantages.std() + ADV_NORM_EPS)
            loss, parts = ppo_loss(new_logprob, entropy, new_value, batch["logprobs"][mb], advantages,
                                   batch["returns"][mb], batch["values"][mb], clip_range=clip_range, loss=args.loss,
                                   ent_coef=args.ent_coef, vf_coef=args.vf_coef)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)  # PPO detail: global gradient clipping
            optimizer.step()
            for key, value in parts.items():
                logged.setdefault(key, []).append(value)
    means = {f"train/{key}": float(torch.stack(values).mean()) for key, values in logged.items()}
    return {"train/loss": float(loss.detach()), **means}  # SB3 logs the last minibatch's loss


def learn(model, optimizer, rollout, next_value, args, progress_remaining, autocast):
    """One iteration's learning: GAE on the rollout, the schedules at ``progress_remaining``, the update.

    :param rollout: the buffers (obs, actions, logprobs, rewards, dones, values), each (steps, envs, ...)
    :return: SB3's ``train/*`` tags and their values
    """
    obs, actions, logprobs, rewards, dones, values = rollout
    advantages, returns = compute_gae(rewards, values, dones, next_value, args.gamma, args.gae_lambda)
    learning_rate = linear_schedule(args.learning_rate)(progress_remaining)  # PPO detail: falls linearly to 0
    clip_schedule = linear_schedule if args.loss == "sb3" else constant_schedule  # the zoo's linear(0.1); CleanRL's 0.1
    clip_range = clip_schedule(args.clip_coef)(progress_remaining)
    optimizer.param_groups[0]["lr"] = learning_rate
    batch = {"obs": obs.flatten(0, 1), "actions": actions.flatten(), "logprobs": logprobs.flatten(),
             "advantages": advantages.flatten(), "returns": returns.flatten(), "values": values.flatten()}
    stats = ppo_update(model, optimizer, batch, args, clip_range, autocast)
    return {**stats, "train/learning_rate": learning_rate, "train/clip_range": clip_range,
            "train/explained_variance": explained_variance(values.flatten().cpu().numpy(),
                                                           returns.flatten().cpu().numpy())}


# %% Train loop: rollout, GAE, update, log
batch_size = args.n_envs * args.num_steps
num_iterations = args.timesteps // batch_size
global_step = 0
next_obs = torch.as_tensor(env.reset(seed=args.seed)[0], device=device)  # env i is seeded with seed + i
with run.training(model):  # timed; the weights are saved at the end (and on Ctrl-C)
    for iteration in range(1, num_iterations + 1):
        for step in range(args.num_steps):  # --- rollout: num_steps steps of n_envs games
            global_step += args.n_envs
            obs[step] = next_obs
            with speed.acting():
                actions[step], logprobs[step], _, values[step] = model.get_action_and_value(next_obs)
            next_obs_np, reward, terminated, truncated, infos = env.step(actions[step].cpu().numpy())
            rewards[step] = torch.as_tensor(reward, device=device)  # clipped by Atari detail 5
            dones[step] = torch.as_tensor(terminated | truncated, device=device)
            next_obs = torch.as_tensor(next_obs_np, device=device)
            run.record_games(infos, global_step)  # whole games, unclipped: game/score in TensorBoard

        with speed.acting():  # --- GAE and update, bootstrapped from V(next_obs)
            next_value = model.get_value(next_obs)
        # SB3 (and the zoo's schedules) measure progress after the rollout, CleanRL before it
        done_before = global_step if args.loss == "sb3" else global_step - batch_size
        stats = learn(model, optimizer, (obs, actions, logprobs, rewards, dones, values), next_value, args,
                      1.0 - done_before / (num_iterations * batch_size), speed.autocast)
        run.log(stats, global_step)  # --- log: SB3's tags at env steps, so 2.3's curves overlay these

# %% Evaluate: whole games (5 lives), unclipped scores, actions sampled as in training, on the classic stack
scores, lengths = run.evaluate(model, lambda n, seed: make_envs(args.env, n, seed, EVAL_BACKEND))

# %% Replay: a gif of the real screen (--gif-games 3 plays 9 games in a 3x3 grid)
gif_path = run.replay(model, frame_stack=FRAME_STACK)
env.close()
summary_path = run.finish(scores, lengths, gif_path)  # summary.json, its path printed last
