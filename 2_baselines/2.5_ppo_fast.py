"""2.5 PPO fast: 2.4's algorithm with every speed lever on, the games stepping while the network acts.

What you learn: how to make the from-scratch PPO fast without changing what it computes.
The algorithm is 2.4's, not a copy: this script loads 2.4's definitions (its Agent, GAE, loss,
update and env factory; ``rlbreakout.definitions.load_definitions`` runs the file's imports,
constants, functions and classes, not its training), so the one you read in 2.4 is the one
that runs here. What 2.5 adds:

* the levers of rlbreakout/speed/scratch_speed.py, on by default: ale-py's C++ vector env
  (``--backend ale_vector``), bf16 autocast where the hardware has it (``--precision``),
  fused Adam, torch and ALE threads from the free cores, glibc keeping freed memory, the
  faster layout, and for runs long enough a ``torch.compile``-d update where it measured faster;
* ``--overlap``, written out below: envpool's asynchronous pattern. On by default where the
  free cores can run the network and one half's games at the same time; on 2 cores the two
  thread pools would share the cores, and it costs more than it hides there
  (``rlbreakout.speed.scratch_speed.overlap_pays``). The games are two vector envs of n_envs / 2.
  ``send`` hands one half its actions and returns at once; while ale-py's C++ threads step
  that half, the network acts for the other half; ``recv``
  waits for a half's results. Every env still gets its action from the current policy on its
  own current observation, and the actions are sampled in 2.4's order (half A, then half B,
  step by step), so for a fixed seed the rollout is 2.4's, observation for observation
  (tests/test_ppo_fast.py). Why two vector envs and not ale-py's own ``batch_size=n/2``: in
  that mode ``recv`` returns whichever half of the envs finished first, so which games step
  together, and so the rollout, would change from run to run.

Run it:    python 2_baselines/2.5_ppo_fast.py --timesteps 1000000
           python 2_baselines/2.5_ppo_fast.py --overlap       # overlap whatever the cores
           python 2_baselines/2.5_ppo_fast.py --no-overlap    # the levers without the overlap
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return);
           env (the halves), model and the rollout buffers stay in the Variable Explorer.
Read:      2_baselines/README.md (section 2.5)
"""

# %% Imports
import argparse
from pathlib import Path

import torch

from rlbreakout.cli import parse_script_args
from rlbreakout.definitions import load_definitions
from rlbreakout.env_ids import EVAL_BACKEND
from rlbreakout.errors import ConfigError
from rlbreakout.scratch_run import ScratchRun
from rlbreakout.speed.scratch_speed import overlap_pays, speed_levers, with_send_recv

#: 2.4's agent, GAE, loss, update and env factory (its definitions, not its training).
ppo = load_definitions(Path(__file__).with_name("2.4_ppo_atari_from_scratch.py"), "ppo_atari_from_scratch")


# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env
TIMESTEPS = 10_000_000  # --timesteps: the zoo's budget; 1_000_000 for a first run
SEED = 0  # --seed
N_ENVS = 8  # --n-envs: even, so the two halves hold as many games


def parse_args():
    """2.4's flags with the fast defaults (--backend ale_vector, --precision bf16), plus --overlap."""
    parser = ppo.ppo_parser(__doc__.splitlines()[0], backend="ale_vector", precision="bf16")
    parser.set_defaults(env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=N_ENVS)
    parser.add_argument("--overlap", action=argparse.BooleanOptionalAction, default=None,
                        help="step one half of the games while the network acts for the other (ale_vector only; "
                             "default: on where the free cores hold torch's threads and one half's ALE threads at once)")
    return parse_script_args(parser)


args = parse_args()
device = ppo.validate(args)
overlap_possible = args.backend == "ale_vector" and args.n_envs % 2 == 0
if args.overlap and not overlap_possible:
    raise ConfigError("--overlap needs --backend ale_vector (the classic envs step in this thread, so nothing "
                      f"overlaps) and an even --n-envs (got {args.backend}, {args.n_envs}); or pass --no-overlap.")
speed = speed_levers(device, args.backend, args.precision, args.n_envs, args.torch_threads, measure_layout=True,
                     batch_size=args.n_envs * args.num_steps // args.num_minibatches, timesteps=args.timesteps,
                     n_epochs=args.update_epochs)  # layout measured; compiled update for long runs where it pays
if args.overlap is None:  # the default: overlap only where both thread pools get cores of their own
    args.overlap = overlap_possible and overlap_pays(speed.threads, args.n_envs)
    print(f"overlap: {'on' if args.overlap else 'off'} (torch threads {speed.threads['torch_threads']}, "
          f"ALE threads {speed.ale_threads}, free cores {speed.threads['free_cores']}; --overlap/--no-overlap decide)",
          flush=True)
run = ScratchRun(__file__, args, speed)  # run folder, config.json, seeds, TensorBoard writer (as 2.4)

# %% Environment: the games as two halves (one with --no-overlap), each its own vector env
n_halves = 2 if args.overlap else 1
half_size = args.n_envs // n_halves
halves = [slice(h * half_size, (h + 1) * half_size) for h in range(n_halves)]  # columns of the rollout buffer
# Env i of the run is env i of 2.4: seeded seed + i, whichever half it is in.
env = [with_send_recv(ppo.make_envs(args.env, half_size, args.seed + cols.start, args.backend, speed.ale_threads))
       for cols in halves]

# %% Agent: 2.4's network and Adam (fused where torch has it)
model = speed.prepare(ppo.Agent(int(env[0].single_action_space.n)))
optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate, eps=ppo.ADAM_EPS, fused=speed.fused_adam)

# %% Rollout buffer: 2.4's, filled half by half
obs_shape = env[0].single_observation_space.shape
obs = torch.zeros((args.num_steps, args.n_envs, *obs_shape), dtype=torch.uint8, device=device)
actions = torch.zeros((args.num_steps, args.n_envs), dtype=torch.long, device=device)
logprobs, rewards, dones, values = (torch.zeros((args.num_steps, args.n_envs), device=device) for _ in range(4))
next_obs = [None] * n_halves  # each half's current observation


def act(step, h):
    """The network acts for half ``h`` at ``step``; then its games start stepping (``send`` returns at once)."""
    cols = halves[h]
    obs[step, cols] = next_obs[h]
    with speed.acting():
        actions[step, cols], logprobs[step, cols], _, values[step, cols] = model.get_action_and_value(next_obs[h])
    env[h].send(actions[step, cols].cpu().numpy())


def receive(step, h, global_step):
    """Wait for half ``h``'s games to finish ``step``; keep their rewards, dones and whole-game scores."""
    cols = halves[h]
    obs_np, reward, terminated, truncated, infos = env[h].recv()
    rewards[step, cols] = torch.as_tensor(reward, device=device)  # clipped by Atari detail 5
    dones[step, cols] = torch.as_tensor(terminated | truncated, device=device)
    next_obs[h] = torch.as_tensor(obs_np, device=device)
    run.record_games(infos, global_step)  # whole games, unclipped: game/score in TensorBoard


# %% Train loop: the overlapped rollout, then 2.4's GAE, update and logging
batch_size = args.n_envs * args.num_steps
num_iterations = args.timesteps // batch_size
global_step = 0
for h, cols in enumerate(halves):
    next_obs[h] = torch.as_tensor(env[h].reset(seed=args.seed + cols.start)[0], device=device)
with run.training(model):  # timed; the weights are saved at the end (and on Ctrl-C)
    for iteration in range(1, num_iterations + 1):
        before = global_step
        # --- rollout: half A acts and steps; while it steps, half B acts; B steps while A's
        # results come back and A acts again. The same actions as 2.4, in the same order.
        for step in range(args.num_steps):
            for h in range(n_halves):
                if step > 0:
                    receive(step - 1, h, before + step * args.n_envs)
                act(step, h)
        for h in range(n_halves):
            receive(args.num_steps - 1, h, before + batch_size)
        global_step += batch_size

        with speed.acting():  # --- 2.4's GAE, update and logging
            next_value = model.get_value(torch.cat(next_obs))
        done_before = global_step if args.loss == "sb3" else before
        stats = ppo.learn(model, optimizer, (obs, actions, logprobs, rewards, dones, values), next_value, args,
                          1.0 - done_before / (num_iterations * batch_size), speed.autocast)
        run.log(stats, global_step)

# %% Evaluate: 2.4's whole-game evaluation, on the classic stack whatever trained (FIRE after a lost life)
scores, lengths = run.evaluate(model, lambda n, seed: ppo.make_envs(args.env, n, seed, EVAL_BACKEND))

# %% Replay: a gif of the real screen (the C++ vector env keeps no RGB screen: SB3's stack plays it)
gif_path = run.replay(model, frame_stack=ppo.FRAME_STACK)
for half in env:
    half.close()
summary_path = run.finish(scores, lengths, gif_path, overlap=args.overlap)  # summary.json, its path printed last
