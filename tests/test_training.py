"""train_ppo: validation, bit-identical seeds, resume and Ctrl-C checkpoints (tiny real trainings)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT, TINY_PPO_FLAGS, scalar_steps
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.training import CHECKPOINT_DIR, LATEST_CHECKPOINT, parse_ppo_args, ppo_parser, train_ppo, validate_ppo_args

SCRIPT = "2_baselines/2.3_copying_hp_zoo.py"


def tiny_args(logdir: Path, *extra: str):
    parser = ppo_parser("test", ZOO_ATARI_PPO, timesteps=64)
    flags = [*TINY_PPO_FLAGS, "--gif-games", "0", "--logdir", str(logdir), *extra]
    return parser, parse_ppo_args(parser, flags)


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (["--batch-size", "100"], "must divide the rollout"),
        (["--timesteps", "0"], "argument --timesteps: 0 is out of range"),
        (["--n-envs", "0"], "argument --n-envs: 0 is out of range"),
        (["--device", "tpu"], "--device 'tpu' is unknown"),
        (["--eval-freq", "-5"], "--eval-freq"),
        (["--learning-rate", "-1"], "--learning-rate"),
        (["--env", "Breakout-v9"], "unknown Atari env id"),
    ],
)
def test_each_validation_error(tmp_path: Path, flags: list[str], fragment: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """A flag's own range is checked while parsing (exit 2), the rest by validate_ppo_args: one line each."""
    with pytest.raises((RLBreakoutError, SystemExit)) as info:
        _, args = tiny_args(tmp_path, *flags)
        validate_ppo_args(args)
    said = str(info.value) if isinstance(info.value, RLBreakoutError) else capsys.readouterr().err
    assert fragment in said


def test_original_tutorials_batch_3072_is_rejected(tmp_path: Path) -> None:
    _, args = tiny_args(tmp_path, "--n-envs", "8", "--n-steps", "128", "--batch-size", "3072")
    with pytest.raises(ConfigError, match="1024"):
        validate_ppo_args(args)


def test_bad_batch_size_exits_with_one_line_and_makes_no_run_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, SCRIPT, "--batch-size", "3072", "--logdir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: --batch-size 3072 must divide")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def _parameters(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


@pytest.mark.slow
def test_same_seed_identical_parameters_different_seed_different(tmp_path: Path) -> None:
    runs = {}
    for label, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        _, args = tiny_args(tmp_path / label, "--seed", seed)
        runs[label] = _parameters(train_ppo(args, script=SCRIPT).model)
    assert all(torch.equal(x, y) for x, y in zip(runs["a"], runs["b"]))
    assert not all(torch.equal(x, y) for x, y in zip(runs["a"], runs["c"]))


@pytest.mark.slow
def test_resume_continues_step_count_schedule_and_tensorboard_curve(tmp_path: Path) -> None:
    _, args = tiny_args(tmp_path, "--lr-schedule", "linear", "--n-steps", "16")
    first = train_ppo(args, script=SCRIPT)
    run_dir = first.run_dir
    assert first.model.num_timesteps == 64
    # the resumed run takes its settings from config.json; only --timesteps is given now
    parser = ppo_parser("test", ZOO_ATARI_PPO, timesteps=999)
    resumed_args = parse_ppo_args(parser, ["--resume", str(run_dir), "--timesteps", "128"])
    assert resumed_args.n_steps == 16 and resumed_args.n_envs == 2
    second = train_ppo(resumed_args, script=SCRIPT)
    assert second.run_dir == run_dir
    assert second.model.num_timesteps == 128
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["timesteps"] == 128 and summary["resumed_from_step"] == 64
    # the linear schedule went on from the step count over the extended budget: the last update
    # (after the rollout that ended at step 96 of 128) used a quarter of the initial rate
    last_step, last_rate = scalar_values(run_dir, "train/learning_rate")[-1]
    assert last_step == 128
    assert last_rate == pytest.approx(ZOO_ATARI_PPO.learning_rate * (1 - 96 / 128), rel=1e-6)
    assert second.model._total_timesteps == 128
    steps = scalar_steps(run_dir, "train/learning_rate")
    assert steps and max(steps) > 64 and min(steps) <= 64
    assert len({p.parent for p in run_dir.rglob("events.out.tfevents.*")}) == 1  # one curve folder


def scalar_values(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every point of ``tag`` in a run's event files, by step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = []
    for path in run_dir.rglob("events.out.tfevents.*"):
        events = EventAccumulator(str(path))
        events.Reload()
        if tag in events.Tags().get("scalars", []):
            points += [(event.step, event.value) for event in events.Scalars(tag)]
    return sorted(points)


@pytest.mark.slow
def test_resume_with_an_abbreviated_flag_extends_the_run(tmp_path: Path) -> None:
    _, args = tiny_args(tmp_path, "--n-steps", "16")
    run_dir = train_ppo(args, script=SCRIPT).run_dir
    parser = ppo_parser("test", ZOO_ATARI_PPO, timesteps=999)
    resumed = parse_ppo_args(parser, ["--resume", str(run_dir), "--times", "128"])  # argparse's abbreviation
    assert resumed.timesteps == 128 and resumed.n_steps == 16
    assert train_ppo(resumed, script=SCRIPT).model.num_timesteps == 128


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    parser = ppo_parser("test", ZOO_ATARI_PPO, timesteps=64)
    with pytest.raises(RLBreakoutError, match="cannot resume"):
        parse_ppo_args(parser, ["--resume", str(tmp_path)])


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path: Path) -> None:
    flags = [f for f in TINY_PPO_FLAGS]
    flags[flags.index("--timesteps") + 1] = "1000000"
    # A shell that starts the suite in the background (``make test &``) makes its children
    # ignore SIGINT, and Python then installs no Ctrl-C handler: give the child the default back.
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, *flags, "--gif-games", "0", "--eval-freq", "0", "--logdir", str(tmp_path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list(tmp_path.rglob("PPO_1/events.out.tfevents.*")):
            time.sleep(0.5)
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # never leave a million-step training running behind a failed test
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    checkpoint = next(tmp_path.rglob(f"{CHECKPOINT_DIR}/{LATEST_CHECKPOINT}"))
    assert "--resume" in err
    from stable_baselines3 import PPO

    assert PPO.load(checkpoint, device="cpu").num_timesteps > 0


def test_a_resumed_fast_run_keeps_its_recorded_levers_without_measuring(tmp_path: Path, monkeypatch) -> None:
    import argparse

    from rlbreakout.speed import fast
    from rlbreakout.training import speed_settings

    recorded = {"precision": "fp32", "channels_last": True}
    (tmp_path / "config.json").write_text(json.dumps({"levers": recorded}))

    def no_measuring(*args, **kwargs):
        raise AssertionError("a resumed run measured its levers again")

    monkeypatch.setattr(fast, "time_minibatch", no_measuring)
    args = argparse.Namespace(fast=True, precision="auto", backend=None, device="cpu", env="BreakoutNoFrameskip-v4",
                              n_envs=2, batch_size=32, resume=str(tmp_path))
    speed = speed_settings(args)
    assert speed.levers == {**recorded, "compile": False}  # recorded before compile was a lever: eager
