"""5.1 JERK: a scripted agent that memorises its best run, and why that needs a deterministic emulator.

What you learn: the Retro Contest's JERK baseline ("Just Enough Retained Knowledge") has
no neural network. It runs right with random jumps, backtracks when running earns
nothing, keeps the action sequence of each episode's best moment, and replays the best
sequence more and more often as training goes on. It logs its scores to TensorBoard and
writes a gif of its best run. Then the chapter-4 link, measured: a recorded action
sequence replayed on BreakoutNoFrameskip-v4 scores the same every time, on ALE/Breakout-v5
(sticky actions) it does not; `--sticky 0.25` does the same to the retro emulator.

Run it:    python 5_sonic/5.1_jerk.py --game Airstriker-Genesis-v0 --timesteps 20000
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, agent and scores stay in the Variable Explorer.
           stable-retro allows one emulator per process: run env.close() before running
           the Environment cell again.
Read:      5_sonic/README.md
"""

# %% Imports
import argparse

from stable_baselines3.common.logger import configure

from rlbreakout.callbacks import tensorboard_writer
from rlbreakout.cli import parse_script_args
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_COUNT, whole
from rlbreakout.progress import ProgressLine
from rlbreakout.render import write_gif
from rlbreakout.retro.cli import retro_parser, validate_retro_args
from rlbreakout.retro.envs import make_retro_gym_env
from rlbreakout.retro.jerk import DEFAULT_BREAKOUT_ACTIONS, Episode, JerkAgent, jerk_combos, replay, replay_spread
from rlbreakout.retro.render import GIF_FPS
from rlbreakout.runs import Run

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "Airstriker-Genesis-v0"  # --env (or --game): stable-retro's free game; Sonic once its ROM is imported
SEED = 0  # --seed
TIMESTEPS = 100_000  # --timesteps: JERK's budget of env steps
EVAL_REPLAYS = 5
BREAKOUT_REPLAYS = 5
GIF_FILE = "jerk_best.gif"
#: Seed offset of the final replays, so they are not the training episodes' seeds.
EVAL_SEED_OFFSET = 10_000


def parse_args():
    """JERK plays one env, deterministic by default (sticky 0) so that its replays work."""
    parser = retro_parser(__doc__.splitlines()[0], timesteps=TIMESTEPS, n_envs=1, sticky=0.0, reward_scale=None)
    parser.set_defaults(env=ENV_ID, seed=SEED)
    parser.add_argument("--eval-replays", type=whole(1, MAX_COUNT), default=EVAL_REPLAYS,
                        help="replays of the best sequence at the end")
    parser.add_argument("--breakout-replays", type=whole(0, MAX_COUNT), default=BREAKOUT_REPLAYS,
                        help="replays of one recorded action sequence on each Breakout id (0: skip)")
    parser.add_argument("--breakout-actions", type=whole(1), default=DEFAULT_BREAKOUT_ACTIONS,
                        help="length of the recorded Breakout action sequence")
    parser.add_argument("--gif", action=argparse.BooleanOptionalAction, default=True,
                        help="write a gif of the best run")
    return parse_script_args(parser)


args = parse_args()
if args.eval_replays < 1 or args.breakout_replays < 0 or args.breakout_actions < 1:
    raise ConfigError("--eval-replays and --breakout-actions must be >= 1, --breakout-replays >= 0.")
validate_retro_args(args)  # the game and state exist, the ROM is imported: before any run folder
# The run folder is named by game and sticky probability, so TensorBoard tells the runs apart.
run = Run(__file__, env_id=args.env, folder_label=f"{args.env}-sticky{args.sticky:g}", seed=args.seed, logdir=args.logdir, config=vars(args))

# %% Environment: four moves (right, right+jump, left, left+jump) on the raw screen
env = make_retro_gym_env(args.env, args.state, combos=jerk_combos(), warp=False, sticky_prob=args.sticky,
                         max_episode_steps=args.max_episode_steps)
print("actions:", env.get_wrapper_attr("action_meanings")(), " screen:", env.observation_space.shape)

# %% Train: explore or replay, episode after episode; every episode goes to TensorBoard
logger = configure(str(run.dir / "JERK_1"), ["tensorboard"])
tensorboard_writer(logger)  # each jerk/* chart shows its meaning (rlbreakout/tags.py)
progress = ProgressLine(args.timesteps)


def log_episode(agent: JerkAgent, episode: Episode) -> None:
    """Called by JerkAgent.learn after each episode: TensorBoard scalars and one line."""
    best = agent.best_solution()
    logger.record("jerk/episode_score", episode.score)
    logger.record("jerk/replayed", float(episode.replayed))
    logger.record("jerk/best_mean_score", best.mean_score)
    logger.record("jerk/exploit_probability", agent.exploit_probability())
    logger.record("jerk/solutions", len(agent.solutions))
    logger.dump(agent.steps_done)
    kind = "replay " if episode.replayed else "explore"
    print(f"{kind} {len(agent.episodes):4d}: score {episode.score:8.1f} in {episode.steps:5d} steps; "
          f"best mean {best.mean_score:8.1f}", flush=True)
    progress.update(agent.steps_done, [e.score for e in agent.episodes])


with run.training():  # a hand-written loop: the steps are added to run.trained_steps below
    agent = JerkAgent(env, args.timesteps, seed=args.seed).learn(log_episode)
run.trained_steps += agent.steps_done
logger.close()

# %% Evaluate: replay the best sequence; a deterministic emulator gives its score every time
best = agent.best_solution()
replays = [replay(env, best.actions, seed=args.seed + EVAL_SEED_OFFSET + i) for i in range(args.eval_replays)]
scores = [r.score for r in replays]
print(f"best sequence: {len(best.actions)} actions, found with {best.scores[0]:.1f}; replayed now: {scores}")

# %% Replay: a gif of the best run
gif_path = None
if args.gif:
    shown = replay(env, best.actions, seed=args.seed + EVAL_SEED_OFFSET, keep_frames=True)
    gif_path = write_gif(shown.frames, run.dir / GIF_FILE, fps=GIF_FPS)
env.close()

# %% Chapter 4 again: the same recorded actions on a deterministic and a sticky Breakout
breakout = None
if args.breakout_replays > 0:
    breakout = replay_spread(n_replays=args.breakout_replays, n_actions=args.breakout_actions, seed=args.seed)
    for env_id, result in breakout.items():
        print(f"{env_id:24s} replay scores {result['scores']}  lengths {result['lengths']}")

# %% Summary: summary.json in the run folder, its path printed last
run.finish(timesteps=agent.steps_done, scores=scores, state=args.state, sticky=args.sticky,
           episodes=len(agent.episodes), replayed_episodes=sum(e.replayed for e in agent.episodes),
           training_scores=[e.score for e in agent.episodes], best_sequence_length=len(best.actions),
           best_sequence_scores=best.scores, gif_path=None if gif_path is None else str(gif_path),
           breakout_replays=breakout)
