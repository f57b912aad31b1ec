"""2.5 PPO fast: 2.4's algorithm with every speed lever on, the games stepping while the network acts.

What you learn: how to make the from-scratch PPO fast without changing what it computes.
The algorithm is 2.4's, not a copy: this script loads 2.4's definitions (its Agent, GAE, loss,
update and evaluation; ``rlbreakout.definitions.load_definitions`` runs the file's imports,
constants, functions and classes, not its training), so the one you read in 2.4 is the one
that runs here. What 2.5 adds:

* the levers of rlbreakout/scratch_speed.py, on by default: ale-py's C++ vector env
  (``--backend ale_vector``), bf16 autocast where the hardware has it (``--precision``),
  fused Adam, torch and ALE threads from the free cores, glibc keeping freed memory, the
  faster layout, and for runs long enough a ``torch.compile``-d update where it measured faster;
* ``--overlap``, written out below: envpool's asynchronous pattern. On by default where the
  free cores can run the network and one half's games at the same time; on 2 cores the two
  thread pools would share the cores, and it costs more than it hides there
  (``rlbreakout.scratch_speed.overlap_pays``). The games are two vector envs of n_envs / 2.
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
In Spyder: run it cell by cell (Ctrl+Return runs a cell); the defaults apply, and env (the
           halves), model and the rollout buffers stay in the Variable Explorer.
Read:      2_baselines/README.md (section 2.5)
"""

# %% Imports
import argparse
import time
from collections import deque
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from rlbreakout.cli import parse_script_args
from rlbreakout.definitions import load_definitions
from rlbreakout.errors import ConfigError
from rlbreakout.hyperparams import markdown_table
from rlbreakout.progress import ProgressLine
from rlbreakout.render import record_gif
from rlbreakout.runs import Run
from rlbreakout.scratch_speed import finished_games, overlap_pays, speed_levers, with_send_recv

#: 2.4's agent, GAE, loss, update, env factory and evaluation (its definitions, not its training).
ppo = load_definitions(Path(__file__).with_name("2.4_ppo_atari_from_scratch.py"), "ppo_atari_from_scratch")


# %% Settings: 2.4's flags with the fast defaults, plus --overlap
def parse_args():
    parser = ppo.ppo_parser(__doc__.splitlines()[0], backend="ale_vector", precision="bf16")
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
run = Run.from_args(__file__, args, **speed.to_config())  # run folder, config.json, seeds python/numpy/torch

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
    for _, score, length in finished_games(infos):
        recent_games.append((score, length))
        train_scores.append(score)
        writer.add_scalar("game/score", score, global_step)
        writer.add_scalar("game/length", length, global_step)


# %% Train loop: the overlapped rollout, then 2.4's GAE, update and logging
writer = SummaryWriter(str(run.dir))
writer.add_text("hyperparameters", markdown_table(vars(args)))
batch_size = args.n_envs * args.num_steps
num_iterations = args.timesteps // batch_size
recent_games, train_scores = deque(maxlen=ppo.SCORE_WINDOW), []
progress = ProgressLine(args.timesteps, enabled=True)
global_step, first_iteration_seconds = 0, 0.0
for h, cols in enumerate(halves):
    next_obs[h] = torch.as_tensor(env[h].reset(seed=args.seed + cols.start)[0], device=device)
start = time.perf_counter()
try:
    with run.training():
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
            if iteration == 1:
                first_iteration_seconds = time.perf_counter() - start
            ppo.log_iteration(writer, stats, global_step, recent_games, time.perf_counter() - start)
            progress.update(global_step, train_scores)
except KeyboardInterrupt:
    torch.save(model.state_dict(), run.dir / ppo.MODEL_FILE)
    print(f"\ninterrupted at step {global_step}; weights saved to {run.dir / ppo.MODEL_FILE}", flush=True)
    raise
finally:
    run.trained_steps = global_step
    writer.close()
model_path = run.dir / ppo.MODEL_FILE
torch.save(model.state_dict(), model_path)
steady_seconds = run.train_seconds - first_iteration_seconds  # without the first iteration's first-call costs
steady_steps_per_second = (global_step - batch_size) / steady_seconds if num_iterations > 1 else None

# %% Evaluate: 2.4's whole-game evaluation
scores, lengths = [], []
if args.eval_games:
    scores, lengths = ppo.evaluate(ppo.policy_of(model, speed), args.env, args.eval_games,
                                   args.seed + ppo.EVAL_SEED_OFFSET, args.backend)
print(f"scores of {len(scores)} whole games:", scores)

# %% Replay: a gif of the real screen (the C++ vector env keeps no RGB screen: SB3's stack plays it)
gif_path = None
if args.gif_games:
    gif_path, _ = record_gif(ppo.policy_of(model, speed), run.dir / ppo.REPLAY_GIF, args.env, grid=args.gif_games,
                             seed=args.seed + ppo.EVAL_SEED_OFFSET, max_steps=args.gif_max_steps,
                             frame_stack=ppo.FRAME_STACK)
for half in env:
    half.close()
summary_path = run.finish(timesteps=global_step, scores=scores, model_path=model_path, eval_lengths=lengths,
                          gif_path=gif_path, train_game_scores=train_scores[-ppo.SCORE_WINDOW:], n_envs=args.n_envs,
                          steps_per_second_after_first_iteration=steady_steps_per_second, loss=args.loss,
                          overlap=args.overlap, **speed.to_config())
