"""2.2 Callbacks: evaluate whole games on a separate env, and log the real game score.

What you learn: what the training curve hides. PPO trains on per-life episodes with
rewards clipped to +1, so `rollout/ep_rew_mean` and the score a player sees differ.
Two callbacks make the score visible:

* `MultiEnvEvalCallback` (rlbreakout/callbacks.py) plays whole games (all 5 lives) on a
  separate eval env built by the same factory as the training env (same wrappers, so
  the observations match), every `--eval-freq` *env steps*, and keeps `best_model.zip`;
* `GameScoreCallback` writes `game/score`, the unclipped score of every finished
  training game, at the env step where it ended.

Run it:  python 2_baselines/2.2_callbacks.py --timesteps 200000 --eval-freq 25000
Read:    2_baselines/README.md
"""

# %% Imports
from rlbreakout.cli import run_main
from rlbreakout.hyperparams import SB3_DEFAULT_PPO
from rlbreakout.training import parse_ppo_args, ppo_parser, train_ppo

# %% Config: 2.1's PPO with evaluation switched on
PARALLEL_ENVS = 8
EVAL_EVERY_STEPS = 25_000
HYPERPARAMS = {**SB3_DEFAULT_PPO, "n_envs": PARALLEL_ENVS}


def main() -> None:
    parser = ppo_parser(__doc__.splitlines()[0], HYPERPARAMS, timesteps=200_000, eval_freq=EVAL_EVERY_STEPS)
    args = parse_ppo_args(parser)
    # %% Train with callbacks: eval (eval/eval/*), game score (game/*), checkpoints
    train_ppo(args, script=__file__)


if __name__ == "__main__":
    run_main(main)
