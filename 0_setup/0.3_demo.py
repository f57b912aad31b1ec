"""0.3 The demo behind `make demo`: a short real training, its curves and gif, and two pretrained agents.

What you get in a few minutes on 2 CPU cores: a zoo-PPO run (the fast path of
0.2_benchmark.py) with TensorBoard logs and a gif of the freshly trained agent, which
barely plays yet; then a replay of the pretrained zoo agent in models/, which does; then
the strongest agent we have, chapter 3.3's aimbot PPO, with what it sees (the aimbot
view) beside the screen. The training itself is chapter 2.3's, in one call
(`train_ppo`); 2.3 shows it cell by cell.

Run it:    make demo    (or: python 0_setup/0.3_demo.py --timesteps 40000)
In Spyder: edit the Settings cell (no flag reaches a cell), then run it cell by cell.
Watch:     tensorboard --logdir runs
"""

# %% Imports
from pathlib import Path

from rlbreakout.aimbot import DEFAULT_COLOUR, DEFAULT_CROP, DEFAULT_PREDICTION
from rlbreakout.envs import make_env
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.provenance import REPO_ROOT
from rlbreakout.render import record_gif
from rlbreakout.training import load_policy, parse_ppo_args, ppo_parser, train_ppo

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env
TIMESTEPS = 40_000  # --timesteps: a short real training (make demo's DEMO_TIMESTEPS)
SEED = 0  # --seed
N_ENVS = 8  # --n-envs: the zoo's 8 envs
EVAL_FREQ = 0  # --eval-freq: env steps between whole-game evaluations (0: only the final one)
FAST = True  # --fast: the speed levers of 0_setup/0.2_benchmark.py
PRETRAINED_POLICY = REPO_ROOT / "models" / "ppo_breakout_policy.pt"
PRETRAINED_GIF = "pretrained_replay.gif"
#: Chapter 3.3's best policy (models/README.md says which run made it) and the view it was trained on.
AIMBOT_POLICY = REPO_ROOT / "models" / "ppo_aimbot_policy.pt"
AIMBOT_GIF = "aimbot_replay.gif"
AIMBOT_VIEW = {"colour": DEFAULT_COLOUR, "crop": DEFAULT_CROP, "prediction": DEFAULT_PREDICTION}


def parse_args():
    parser = ppo_parser(__doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=TIMESTEPS, eval_freq=EVAL_FREQ, eval_episodes=5)
    parser.add_argument("--pretrained", default=str(PRETRAINED_POLICY), help="policy weights to replay after training")
    parser.add_argument("--pretrained-aimbot", default=str(AIMBOT_POLICY),
                        help="aimbot policy weights (chapter 3.3) to replay last, its view beside the screen")
    parser.set_defaults(env=ENV_ID, seed=SEED, n_envs=N_ENVS, fast=FAST, gif_games=1)
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
# %% The strongest agent: chapter 3.3's aimbot PPO, the aimbot view beside the screen
aimbot = Path(args.pretrained_aimbot)
if aimbot.is_file():
    aimbot_policy = load_policy(aimbot, device=args.device)
    aimbot_gif, aimbot_recording = record_gif(aimbot_policy, result.run_dir / AIMBOT_GIF, args.env, grid=1,
                                              seed=args.seed, max_steps=args.gif_max_steps, wrapper="aimbot",
                                              wrapper_kwargs=AIMBOT_VIEW, view="agent")
    print(f"aimbot agent ({aimbot}) scored {aimbot_recording.scores[0]:.0f} in its replay: {aimbot_gif}")
    pretrained_fields.update({"aimbot_policy": str(aimbot), "aimbot_gif": str(aimbot_gif),
                              "aimbot_scores": aimbot_recording.scores})
else:
    print(f"no aimbot policy at {aimbot}; skipped its replay")
print(f"TensorBoard logs: tensorboard --logdir {args.logdir}    gif: {result.fields['gif_path']}")
result.run.finish(**result.fields, **pretrained_fields)  # summary.json; its path is the last line
