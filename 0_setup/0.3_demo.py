"""0.3 The demo behind `make demo`: a short real training, its curves and gif, and a pretrained agent.

What you get in a few minutes on 2 CPU cores: a zoo-PPO run (the fast path of
0.2_benchmark.py) with TensorBoard logs and a gif of the freshly trained agent, which
barely plays yet, then a replay of the pretrained agent in models/, which does. The
training itself is chapter 2.3's, in one call (`train_ppo`); 2.3 shows it cell by cell.

Run it:    make demo    (or: python 0_setup/0.3_demo.py --timesteps 40000)
In Spyder: run it cell by cell; the defaults apply.
Watch:     tensorboard --logdir runs
"""

# %% Imports
from pathlib import Path

from rlbreakout.envs import make_env
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.render import record_gif
from rlbreakout.training import load_policy, parse_ppo_args, ppo_parser, train_ppo

# %% Settings
PRETRAINED_POLICY = Path("models") / "ppo_breakout_policy.pt"
PRETRAINED_GIF = "pretrained_replay.gif"


def parse_args():
    parser = ppo_parser(__doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=40_000, eval_episodes=5)
    parser.add_argument("--pretrained", default=str(PRETRAINED_POLICY), help="policy weights to replay after training")
    parser.set_defaults(fast=True, gif_games=1)
    return parse_ppo_args(parser)


args = parse_args()

# %% Train, evaluate and replay: a short real training with the zoo's hyperparameters
result = train_ppo(args, script=__file__, finish=False)  # finished below, with the replay
model = result.model
env = make_env(args.env, 1, seed=args.seed)  # one env, to look at in the Variable Explorer

# %% The pretrained agent plays, for comparison
pretrained = Path(args.pretrained)
if pretrained.is_file():
    policy = load_policy(pretrained, device=args.device)
    gif, recording = record_gif(policy, result.run_dir / PRETRAINED_GIF, args.env, grid=1, seed=args.seed,
                                max_steps=args.gif_max_steps)
    print(f"pretrained agent ({pretrained}) scored {recording.scores[0]:.0f} in its replay: {gif}")
    pretrained_fields = {"pretrained_policy": str(pretrained), "pretrained_gif": str(gif),
                         "pretrained_scores": recording.scores}
else:
    print(f"no pretrained policy at {pretrained}; skipped its replay")
    pretrained_fields = {}
print(f"TensorBoard logs: tensorboard --logdir {args.logdir}    gif: {result.fields['gif_path']}")
result.run.finish(**result.fields, **pretrained_fields)  # summary.json; its path is the last line
