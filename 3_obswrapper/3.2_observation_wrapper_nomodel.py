"""3.2 (no model) A scripted aimbot player: no learning, just the wrapper's prediction.

What you learn: the marker carries the skill. A controller that fires to launch and
puts the paddle where the ball will cross its row (or under the ball while it rises)
plays far better than the PPO agents of chapter 2, on deterministic
BreakoutNoFrameskip-v4 and on sticky-action ALE/Breakout-v5 alike. It is the living
proof that the prediction is right, and the ceiling chapter 3.3's agent aims at.
Each game is a whole game (5 lives), cut at ALE's 108,000 frames (27,000 steps).
The gif goes into the run folder; `--save-pictures` also replaces the committed one.

Run it:    python 3_obswrapper/3.2_observation_wrapper_nomodel.py --episodes 10
           python 3_obswrapper/3.2_observation_wrapper_nomodel.py --env ALE/Breakout-v5 --episodes 10
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell (Ctrl+Return
           runs a cell, Shift+Return runs it and moves on); env, player and games stay in the Variable Explorer.
Read:      3_obswrapper/README.md
"""

# %% Imports
from pathlib import Path

from rlbreakout.aimbot.geometry import SCREEN_WIDTH
from rlbreakout.cli import common_parser, parse_script_args
from rlbreakout.env_ids import BACKEND_CHOICES, check_env_id
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_COUNT, MAX_GIF_STEPS, MAX_STEPS, number, output_folder, whole
from rlbreakout.progress import ProgressLine
from rlbreakout.render import copy_picture, write_gif
from rlbreakout.runs import Run
from rlbreakout.scripted_player import (
    DEFAULT_AIM_JITTER,
    DEFAULT_RANDOM_ACTION_PROB,
    make_player_env,
    play_scripted_games,
    player_for,
)

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env: the game and its settings
SEED = 0  # --seed
EPISODES = 10  # --episodes: whole games the scripted player plays
BACKEND = "classic"  # --backend: classic (Python wrappers) or ale_vector (ale-py's C++ vector env, as 3.3 --fast)
#: The repository's committed pictures (written only with --save-pictures).
PICTURES = Path(__file__).resolve().parents[1] / "pictures"
GIF_FILE = "scripted_player.gif"
#: Its name among the committed pictures.
SAVED_GIF_FILE = "3.2_scripted_player.gif"
#: Agent-view frames of the first game kept for the gif (every 2nd step, ~20 s at 15 fps).
GIF_STEPS = 600
GIF_FRAME_EVERY = 2
GIF_FPS = 15
TIMESTEPS = 1_000_000  # --timesteps: step budget; ten games at ALE's cap of 27,000 agent steps each fit


def parse_args():
    parser = common_parser(__doc__.splitlines()[0] + " (--n-envs and --device are unused: one env, no network)",
                           env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=1)
    parser.add_argument("--episodes", type=whole(1, MAX_COUNT), default=EPISODES, help="whole games to play")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=BACKEND,
                        help="the env's backend: classic, or ale_vector (the frames 3.3 --fast trains on)")
    parser.add_argument("--random-action-prob", type=number(0, 1), default=DEFAULT_RANDOM_ACTION_PROB,
                        help="share of random actions (breaks exact loops on deterministic envs)")
    parser.add_argument("--aim-jitter", type=number(0, SCREEN_WIDTH), default=DEFAULT_AIM_JITTER,
                        help="px of random aim offset per falling ball (varies the bounce)")
    parser.add_argument("--max-game-frames", type=whole(1, MAX_STEPS), default=None,
                        help="cut each game after this many emulator frames (default: ALE's 108000)")
    parser.add_argument("--gif-steps", type=whole(0, MAX_GIF_STEPS), default=GIF_STEPS, help="steps of the first game in the gif (0: none)")
    parser.add_argument("--pictures", type=output_folder, default=None, metavar="DIR", help=f"also copy the gif into DIR as {SAVED_GIF_FILE}")
    parser.add_argument("--save-pictures", dest="pictures", action="store_const", const=str(PICTURES),
                        help=f"also replace the committed pictures/{SAVED_GIF_FILE}")
    return parse_script_args(parser)


args = parse_args()
check_env_id(args.env)  # a wrong id fails here, before a run folder is made
if args.episodes < 1:
    raise ConfigError(f"--episodes must be >= 1, got {args.episodes}.")
if args.timesteps < 1:
    raise ConfigError(f"--timesteps must be >= 1, got {args.timesteps}.")
env_kwargs = {} if args.max_game_frames is None else {"max_num_frames_per_episode": args.max_game_frames}
env = make_player_env(args.env, seed=args.seed, env_kwargs=env_kwargs, backend=args.backend)  # Breakout only: fails
run = Run.from_args(__file__, args)  # ... before the run folder is made

# %% Environment and player: raw RGB screens, the factory's frameskip, no life loss (an episode is a whole game)
player = player_for(args.env, seed=args.seed, env_kwargs=env_kwargs, random_action_prob=args.random_action_prob,
                    aim_jitter=args.aim_jitter)
print(f"{args.env}: observation {env.observation_space.shape}, actions {env.unwrapped.get_action_meanings()}; "
      f"the player holds each action {player.frames_per_step:g} frames")

# %% Play: the player reads the raw screen and steers by the aimbot's prediction
with run.training():  # the clock behind summary.json's steps_per_second
    games = play_scripted_games(
        env, player, args.episodes, seed=args.seed, max_steps=args.timesteps, record_steps=args.gif_steps,
        frame_every=GIF_FRAME_EVERY, progress=ProgressLine(args.timesteps),
        on_game_end=lambda game, score, steps: print(f"game {game + 1}: score {score:.0f} in {steps} steps", flush=True),
    )
run.trained_steps += games.steps
env.close()
if games.unfinished:
    print(f"--timesteps {args.timesteps} ran out: the unfinished game is not counted")

# %% Replay: the screen and the agent's view side by side
gif_path = write_gif(games.frames, run.dir / GIF_FILE, fps=GIF_FPS) if games.frames else None
copies = [str(copy_picture(gif_path, Path(args.pictures) / SAVED_GIF_FILE))] if args.pictures and gif_path else []

# %% Summary: summary.json in the run folder, its path printed last
run.finish(timesteps=games.steps, scores=games.scores, lengths=games.lengths, unfinished_game=games.unfinished,
           random_action_prob=args.random_action_prob, aim_jitter=args.aim_jitter, backend=args.backend,
           gif_path=None if gif_path is None else str(gif_path), saved_pictures=copies)
