"""2.1 Parallel envs: the same PPO as 1.3, but stepping 8 Breakout games at once.

What you learn: a VecEnv steps n envs together and hands PPO a batch of observations,
so one rollout holds 8x more (and more varied) experience. Compare this run with
1.3 in TensorBoard: same hyperparameters, same step budget, one env against eight.
`--vec-env subproc` runs each env in its own process (SubprocVecEnv); on a 2-core
machine that is rarely faster and costs ~0.3 GB per env (see 0_setup/0.2_benchmark.py).

Run it:  python 2_baselines/2.1_envs.py --timesteps 100000
Read:    2_baselines/README.md
"""

# %% Imports
from rlbreakout.cli import run_main
from rlbreakout.hyperparams import SB3_DEFAULT_PPO
from rlbreakout.training import parse_ppo_args, ppo_parser, train_ppo

# %% Config: 1.3's PPO, with 8 envs instead of 1
PARALLEL_ENVS = 8
HYPERPARAMS = {**SB3_DEFAULT_PPO, "n_envs": PARALLEL_ENVS}


def main() -> None:
    args = parse_ppo_args(ppo_parser(__doc__.splitlines()[0], HYPERPARAMS, timesteps=100_000))
    # %% Train: the factory builds 8 envs seeded seed, seed+1, ..., seed+7
    train_ppo(args, script=__file__)


if __name__ == "__main__":
    run_main(main)
