"""1.3 Train a first agent: PPO with a CNN policy on one Breakout env.

What you learn: how little code a first deep-RL agent takes with stable-baselines3,
where its TensorBoard curves go, and why a few minutes of training on one env
barely moves the score (chapter 2 fixes that with 8 envs and tuned hyperparameters).

Run it:  python 1_gym/1.3_train.py --timesteps 100000
Watch:   tensorboard --logdir runs
Read:    1_gym/README.md
"""

# %% Imports
from rlbreakout.cli import run_main
from rlbreakout.hyperparams import SB3_DEFAULT_PPO
from rlbreakout.training import parse_ppo_args, ppo_parser, train_ppo


# %% Config: SB3's default PPO hyperparameters on a single env (n_envs=1)
def parse_args():
    parser = ppo_parser(__doc__.splitlines()[0], SB3_DEFAULT_PPO, timesteps=100_000)
    return parse_ppo_args(parser)


# %% Train, evaluate and replay
def main() -> None:
    args = parse_args()
    # The env is BreakoutNoFrameskip-v4 under SB3's AtariWrapper (84x84 grey, frameskip 4,
    # a lost life ends a training episode, rewards clipped to -1/0/+1), 4 frames stacked.
    # train_ppo prints the final scores and, as its last line, the path of summary.json.
    train_ppo(args, script=__file__)


if __name__ == "__main__":
    run_main(main)
