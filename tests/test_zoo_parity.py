"""2.3 on the classic path trains exactly what rl-baselines3-zoo trains: same seed, same parameters.

The tutorial's strongest claim, checked against the zoo itself (rl_zoo3 from PyPI, in the
dev extras): ``python -m rl_zoo3.train --algo ppo --env BreakoutNoFrameskip-v4`` and
``2.3_copying_hp_zoo.py`` without ``--fast``, each for two PPO updates with seed 7.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO

from conftest import REPO_ROOT, run_script, summary_of

ENV_ID = "BreakoutNoFrameskip-v4"
SEED = "7"
#: Two rollouts of the zoo's 8 envs x 128 steps: two updates of 4 epochs each.
STEPS = "2048"


def zoo_model(workdir: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", ENV_ID, "-n", STEPS, "--seed", SEED,
         "--eval-freq", "-1", "--device", "cpu", "-f", str(workdir / "logs")],
        cwd=workdir, check=True, capture_output=True, text=True, timeout=900,
    )
    return next((workdir / "logs").rglob(f"{ENV_ID}.zip"))


@pytest.mark.slow
def test_2_3_classic_path_equals_the_zoo_parameter_for_parameter(tmp_path: Path) -> None:
    zoo_path = zoo_model(tmp_path)
    result = run_script("2_baselines/2.3_copying_hp_zoo.py", "--timesteps", STEPS, "--seed", SEED, "--eval-freq", "0",
                        "--eval-episodes", "1", "--gif-games", "0", "--checkpoint-freq", "0", "--device", "cpu",
                        "--logdir", str(tmp_path / "runs"), timeout=900)
    _, summary = summary_of(result)
    ours = PPO.load(summary["model_path"], device="cpu").policy.state_dict()
    zoo = PPO.load(zoo_path, device="cpu").policy.state_dict()
    assert sorted(ours) == sorted(zoo)
    different = [name for name in zoo if not torch.equal(ours[name], zoo[name])]
    assert not different, f"parameters that differ from the zoo's: {different}"
    assert summary["timesteps"] == int(STEPS)
