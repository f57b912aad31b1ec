"""3.2 (no model) A scripted aimbot player: no learning, just the wrapper's prediction.

What you learn: the marker carries the skill. A controller that fires to launch and
puts the paddle where the ball will cross its row (or under the ball while it rises)
plays far better than the PPO agents of chapter 2, on deterministic
BreakoutNoFrameskip-v4 and on sticky-action ALE/Breakout-v5 alike. It is the living
proof that the prediction is right, and the ceiling chapter 3.3's agent aims at.
Each game is a whole game (5 lives), cut at ALE's 108,000 frames (27,000 steps).

Run it:  python 3_obswrapper/3.2_observation_wrapper_nomodel.py --episodes 10
         python 3_obswrapper/3.2_observation_wrapper_nomodel.py --env ALE/Breakout-v5 --episodes 10
Read:    3_obswrapper/README.md
"""

# %% Imports
import shutil
from pathlib import Path

from rlbreakout.cli import common_parser, run_main
from rlbreakout.envs import check_env_id
from rlbreakout.errors import ConfigError
from rlbreakout.render import write_gif
from rlbreakout.runs import create_run_dir, save_run_config, score_stats, script_name, write_summary
from rlbreakout.scripted_player import DEFAULT_AIM_JITTER, DEFAULT_RANDOM_ACTION_PROB, play_scripted_games

PICTURES = Path("pictures")
#: Agent-view frames of the first game kept for the gif (every 2nd step, ~20 s at 15 fps).
GIF_STEPS = 600
GIF_FRAME_EVERY = 2
GIF_FPS = 15
#: Total step budget: ten games at ALE's cap of 27,000 agent steps each fit comfortably.
DEFAULT_TIMESTEPS = 1_000_000


def main() -> None:
    parser = common_parser(__doc__.splitlines()[0], timesteps=DEFAULT_TIMESTEPS, n_envs=1)
    parser.add_argument("--episodes", type=int, default=10, help="whole games to play")
    parser.add_argument("--random-action-prob", type=float, default=DEFAULT_RANDOM_ACTION_PROB,
                        help="share of random actions (breaks exact loops on deterministic envs)")
    parser.add_argument("--aim-jitter", type=float, default=DEFAULT_AIM_JITTER,
                        help="px of random aim offset per falling ball (varies the bounce)")
    parser.add_argument("--max-game-frames", type=int, default=None,
                        help="cut each game after this many emulator frames (default: ALE's 108000)")
    parser.add_argument("--gif-steps", type=int, default=GIF_STEPS, help="steps of the first game in the gif (0: none)")
    parser.add_argument("--pictures", default=str(PICTURES),
                        help="also copy the gif here ('' to skip); --n-envs and --device are unused (one env, no network)")
    args = parser.parse_args()
    check_env_id(args.env)
    if args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}.")
    run_dir = create_run_dir(args.logdir, script_name(__file__), args.env, args.seed)
    save_run_config(run_dir, vars(args))

    # %% Play: the player reads the raw screen and steers by the aimbot's prediction
    env_kwargs = {} if args.max_game_frames is None else {"max_num_frames_per_episode": args.max_game_frames}
    games = play_scripted_games(
        args.env, args.episodes, args.seed,
        random_action_prob=args.random_action_prob, aim_jitter=args.aim_jitter, env_kwargs=env_kwargs,
        max_steps=args.timesteps, record_steps=args.gif_steps, frame_every=GIF_FRAME_EVERY,
        on_game_end=lambda game, score, steps: print(f"game {game + 1}: score {score:.0f} in {steps} steps", flush=True),
    )
    stats = score_stats(games.scores)
    print(f"{args.env}: mean {stats['mean_reward']:.1f}, median {stats['median_reward']:.1f} "
          f"over {stats['n_games']} games ({games.steps} steps, {games.wall_seconds:.0f} s)")
    if games.unfinished:
        print(f"--timesteps {args.timesteps} ran out: the unfinished game is not counted")

    # %% Replay: the screen and the agent's view side by side
    gif_path = None
    if games.frames:
        gif_path = write_gif(games.frames, run_dir / "scripted_player.gif", fps=GIF_FPS)
        if args.pictures:
            Path(args.pictures).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(gif_path, Path(args.pictures) / "3.2_scripted_player.gif")

    write_summary(run_dir, {
        "script": script_name(__file__), "env_id": args.env, "timesteps": games.steps, "seed": args.seed,
        "run_dir": str(run_dir), "wall_seconds": round(games.wall_seconds, 2),
        "steps_per_second": round(games.steps / max(games.wall_seconds, 1e-9), 1),
        **stats, "scores": games.scores, "lengths": games.lengths, "unfinished_game": games.unfinished,
        "random_action_prob": args.random_action_prob, "aim_jitter": args.aim_jitter,
        "gif_path": None if gif_path is None else str(gif_path),
    })


if __name__ == "__main__":
    run_main(main)
