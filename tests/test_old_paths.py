"""Models saved before the package was regrouped still load: their pickles name the old module paths.

``tests/data/model_saved_before_the_move.zip`` was saved by the code at commit 3ac208a, before
the speed, results and retro folders existed: a ``--fast`` model (``MixedPrecisionCnnPolicy``
with a channels_last ``BF16NatureCNN``, a 2-feature head to keep the file small) built by
``rlbreakout.training.build_ppo`` for BreakoutNoFrameskip-v4 with 2 envs, and saved by SB3, so
its ``data`` names ``rlbreakout.fast.MixedPrecisionCnnPolicy`` and ``rlbreakout.fast.BF16NatureCNN``.
"""

from __future__ import annotations

import importlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_PPO_FLAGS
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.old_paths import OLD_PATHS
from rlbreakout.speed.policies import BF16NatureCNN, MixedPrecisionCnnPolicy
from rlbreakout.training import CHECKPOINT_DIR, LATEST_CHECKPOINT, load_ppo, parse_ppo_args, ppo_parser, train_ppo

OLD_MODEL = Path(__file__).resolve().parent / "data" / "model_saved_before_the_move.zip"
PACKAGE_DIR = Path(__file__).resolve().parents[1] / "rlbreakout"
SCRIPT = "2_baselines/2.3_copying_hp_zoo.py"


def tiny_args(logdir: Path, *extra: str):
    parser = ppo_parser("test", ZOO_ATARI_PPO, timesteps=64)
    return parse_ppo_args(parser, [*TINY_PPO_FLAGS, "--gif-games", "0", "--logdir", str(logdir), *extra])


def test_the_fixture_names_the_old_paths() -> None:
    """The file really is an old one: without the aliases it would not load."""
    data = zipfile.ZipFile(OLD_MODEL).read("data")
    assert b"rlbreakout.fast" in data and b"rlbreakout.speed" not in data


@pytest.mark.parametrize(("old", "new"), sorted(OLD_PATHS.items()))
def test_each_old_path_is_an_alias_of_the_moved_module_and_no_file(old: str, new: str) -> None:
    assert not (PACKAGE_DIR / f"{old.split('.', 1)[1]}.py").exists(), "no shim file at an old path"
    assert importlib.import_module(old) is importlib.import_module(new)


def test_a_model_saved_before_the_move_loads_with_the_classes_of_today() -> None:
    model = load_ppo(OLD_MODEL, device="cpu")
    assert type(model.policy) is MixedPrecisionCnnPolicy
    assert type(model.policy.features_extractor) is BF16NatureCNN and model.policy.features_extractor.channels_last
    obs = np.zeros((2, *model.observation_space.shape), dtype=np.uint8)
    actions, _ = model.predict(obs)
    assert actions.shape == (2,)


@pytest.mark.slow
def test_load_evaluates_a_model_saved_before_the_move(tmp_path: Path) -> None:
    """``--load`` of the old zip: evaluated on the eval env, as a script's ``--load`` does."""
    result = train_ppo(tiny_args(tmp_path, "--load", str(OLD_MODEL)), script=SCRIPT)
    assert type(result.model.policy) is MixedPrecisionCnnPolicy
    assert result.summary["loaded_model"] == str(OLD_MODEL) and result.summary["n_games"] == 1


@pytest.mark.slow
def test_resume_continues_from_a_checkpoint_saved_before_the_move(tmp_path: Path) -> None:
    """A run folder whose latest checkpoint the old code saved: ``--resume`` trains on from it."""
    run_dir = train_ppo(tiny_args(tmp_path), script=SCRIPT).run_dir
    shutil.copy(OLD_MODEL, run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT)  # the old model, 0 steps trained
    resumed = train_ppo(parse_ppo_args(ppo_parser("test", ZOO_ATARI_PPO, timesteps=999),
                                       ["--resume", str(run_dir), "--timesteps", "64"]), script=SCRIPT)
    assert type(resumed.model.policy) is MixedPrecisionCnnPolicy and resumed.model.num_timesteps == 64
    assert json.loads((run_dir / "summary.json").read_text())["timesteps"] == 64
