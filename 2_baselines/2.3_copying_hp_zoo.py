"""2.3 Copying the zoo: rl-baselines3-zoo's tuned Atari PPO, exactly.

What you learn: hyperparameters matter more than anything so far. The zoo's Atari
setup (AtariWrapper, 4 stacked frames, 8 envs, n_steps 128, 4 epochs, batch 256,
learning rate linear from 2.5e-4, clip range linear from 0.1, vf_coef 0.5,
ent_coef 0.01) reaches ~400 points after 1e7 steps in the zoo's benchmark.
The values live once, in rlbreakout/hyperparams.py, and are logged to TensorBoard's
text tab. `--resume RUN_DIR` continues an interrupted run; `--fast` turns on the speed
levers of 0_setup/0.2_benchmark.py.

Run it:  python 2_baselines/2.3_copying_hp_zoo.py --timesteps 1000000 --fast
Read:    2_baselines/README.md
"""

# %% Imports
from rlbreakout.cli import run_main
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.training import parse_ppo_args, ppo_parser, train_ppo

# %% Config: the zoo's values; 1e7 steps reproduces the zoo (--timesteps shortens it)
EVAL_EVERY_STEPS = 100_000


def main() -> None:
    parser = ppo_parser(
        __doc__.splitlines()[0], ZOO_ATARI_PPO, timesteps=ZOO_ATARI_PPO["n_timesteps"], eval_freq=EVAL_EVERY_STEPS
    )
    args = parse_ppo_args(parser)
    # %% Train (Ctrl-C saves a checkpoint; --resume continues it)
    train_ppo(args, script=__file__)


if __name__ == "__main__":
    run_main(main)
