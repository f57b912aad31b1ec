"""0.3 The demo behind `make demo`: a short real training, its curves and gif, and a pretrained agent.

What you get in a few minutes on 2 CPU cores: a zoo-PPO run (the fast path of
0.2_benchmark.py) with TensorBoard logs and a gif of the freshly trained agent, which
barely plays yet, then a replay of the pretrained agent in models/, which does.

Run it:  make demo    (or: python 0_setup/0.3_demo.py --timesteps 40000)
Watch:   tensorboard --logdir runs
"""

# %% Imports
from pathlib import Path

from rlbreakout.cli import run_main
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.render import record_gif
from rlbreakout.runs import score_stats, write_summary
from rlbreakout.training import load_policy, parse_ppo_args, ppo_parser, train_ppo

PRETRAINED_POLICY = Path("models") / "ppo_breakout_policy.pt"
PRETRAINED_GIF = "pretrained_replay.gif"


def main() -> None:
    parser = ppo_parser(__doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=40_000, eval_episodes=5)
    parser.add_argument("--pretrained", default=str(PRETRAINED_POLICY), help="policy weights to replay after training")
    parser.set_defaults(fast=True, gif_games=1)
    args = parse_ppo_args(parser)

    # %% A short real training (zoo hyperparameters, fast path)
    result = train_ppo(args, script=__file__)

    # %% The pretrained agent plays, for comparison
    summary = dict(result.summary)
    pretrained = Path(args.pretrained)
    if pretrained.is_file():
        policy = load_policy(pretrained, device=args.device)
        gif, recording = record_gif(policy, result.run_dir / PRETRAINED_GIF, args.env, grid=1, seed=args.seed,
                                    max_steps=args.gif_max_steps)
        summary.update({"pretrained_policy": str(pretrained), "pretrained_gif": str(gif),
                        "pretrained_scores": recording.scores,
                        "pretrained_mean_reward": score_stats(recording.scores)["mean_reward"]})
        print(f"pretrained agent ({pretrained}) scored {recording.scores[0]:.0f} in its replay: {gif}")
    else:
        print(f"no pretrained policy at {pretrained}; skipped its replay")
    print(f"TensorBoard logs: tensorboard --logdir {args.logdir}    gif: {summary['gif_path']}")
    write_summary(result.run_dir, summary)


if __name__ == "__main__":
    run_main(main)
