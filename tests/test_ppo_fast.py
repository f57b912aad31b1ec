"""2_baselines/2.5_ppo_fast.py: 2.4's algorithm with the speed levers; the overlapped rollout is 2.4's rollout.

Every run here is fp32 (``--precision fp32``), so nothing depends on the CPU's bf16 support;
the bf16 branch of the levers is tested in tests/test_scratch_speed.py by monkeypatching.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_script, summary_of
from rlbreakout.definitions import load_definitions
from rlbreakout.speed.scratch_speed import overlap_pays
from test_ppo_from_scratch import SCRIPT as SCRIPT_2_4
from test_ppo_from_scratch import REPO_ROOT, train_cells

SCRIPT = "2_baselines/2.5_ppo_fast.py"
#: One rollout of 4 envs x 96 steps on the C++ backend: long enough for lost lives (dones).
ONE_ROLLOUT = ("--backend", "ale_vector", "--precision", "fp32", "--n-envs", "4", "--num-steps", "96",
               "--timesteps", "384")
ROLLOUT_KEYS = ("obs", "actions", "rewards", "dones")


def test_cells_run_one_by_one_and_leave_env_and_model(tmp_path: Path) -> None:
    ns = train_cells(SCRIPT, tmp_path, "--backend", "ale_vector", "--precision", "fp32", "--overlap")
    assert isinstance(ns["model"], torch.nn.Module)
    assert len(ns["env"]) == 2 and all(half.num_envs == 1 for half in ns["env"])  # two halves of one env each
    assert ns["global_step"] == 128 and (ns["run"].dir / "summary.json").is_file()


def test_it_runs_2_4s_definitions_not_a_copy() -> None:
    ppo = load_definitions(REPO_ROOT / SCRIPT_2_4)
    source = (REPO_ROOT / SCRIPT).read_text()
    for name in ("compute_gae", "ppo_loss", "ppo_update", "Agent", "make_env"):
        assert hasattr(ppo, name) and f"def {name}(" not in source and f"class {name}(" not in source, name


@pytest.mark.slow
def test_overlapped_rollout_equals_2_4s_serial_rollout(tmp_path: Path) -> None:
    """Same seed: every observation, action, reward and done of 2.5's overlapped rollout is 2.4's."""
    serial = train_cells(SCRIPT_2_4, tmp_path, *ONE_ROLLOUT)
    overlapped = train_cells(SCRIPT, tmp_path, *ONE_ROLLOUT, "--overlap")
    plain = train_cells(SCRIPT, tmp_path, *ONE_ROLLOUT, "--no-overlap")
    assert serial["dones"].any(), "the rollout should hold lost lives, so resets are compared too"
    assert len(set(serial["actions"].flatten().tolist())) == 4
    for other in (overlapped, plain):
        for key in ROLLOUT_KEYS:
            assert torch.equal(serial[key], other[key]), key
        # The network saw half batches: the same numbers up to float rounding
        for key in ("logprobs", "values"):
            assert torch.allclose(serial[key], other[key], atol=1e-5), key
    assert overlapped["run"].train_scores == serial["run"].train_scores


def test_overlap_needs_the_ale_vector_backend_and_even_envs(logdir: Path) -> None:
    for flags in (("--backend", "classic"), ("--n-envs", "3")):
        result = run_script(SCRIPT, *flags, "--overlap", "--logdir", str(logdir), expect_ok=False)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines()[-1].startswith("error: --overlap needs --backend ale_vector")
    assert not logdir.exists()


@pytest.mark.slow
def test_tiny_run_end_to_end(logdir: Path) -> None:
    result = run_script(SCRIPT, "--timesteps", "128", "--n-envs", "2", "--num-steps", "32", "--update-epochs", "1",
                        "--eval-games", "1", "--gif-games", "0", "--precision", "fp32", "--device", "cpu",
                        "--torch-threads", "1", "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert summary["script"] == "2.5_ppo_fast" and summary["timesteps"] == 128
    # the default overlap follows the cores this machine had free, and says so
    assert summary["overlap"] is overlap_pays(summary, 2) and summary["torch_threads"] == 1
    assert f"overlap: {'on' if summary['overlap'] else 'off'} (torch threads 1" in result.stdout
    assert summary["backend"] == "ale_vector" and summary["n_games"] == 1 and summary["steps_per_second"] > 0
    assert summary["eval_backend"] == "classic"  # evaluation plays on the classic stack, whatever trained
