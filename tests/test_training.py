"""train_ppo: validation, bit-identical seeds, resume and Ctrl-C checkpoints (tiny real trainings)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback

from conftest import REPO_ROOT, TINY_PPO_FLAGS, scalar_steps
from helpers import wait_until
from rlbreakout.callbacks import PREVIOUS_CHECKPOINT, StepCheckpointCallback
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.hyperparams import ZOO_ATARI_PPO
from rlbreakout.training import (
    CHECKPOINT_DIR,
    DAMAGED_SUFFIX,
    LATEST_CHECKPOINT,
    build_ppo,
    continue_schedules,
    load_checkpoint,
    load_ppo,
    parse_ppo_args,
    ppo_parser,
    train_ppo,
    validate_ppo_args,
)

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
def test_resume_continues_step_count_schedule_and_tensorboard_curve(tmp_path: Path, capsys) -> None:
    _, args = tiny_args(tmp_path, "--lr-schedule", "exponential", "--clip-schedule", "exponential",
                        "--half-life", "64", "--n-steps", "16")
    first = train_ppo(args, script=SCRIPT)
    run_dir = first.run_dir
    assert first.model.num_timesteps == 64
    # the resumed run takes its settings from config.json; only --timesteps is given now
    parser = ppo_parser("test", ZOO_ATARI_PPO, timesteps=999)
    resumed_args = parse_ppo_args(parser, ["--resume", str(run_dir), "--timesteps", "128"])
    assert resumed_args.n_steps == 16 and resumed_args.n_envs == 2
    second = train_ppo(resumed_args, script=SCRIPT)
    assert "learning rate exponential: keeps halving every 64 env steps, 0.000125 at step 64" in capsys.readouterr().out
    assert second.run_dir == run_dir
    assert second.model.num_timesteps == 128
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["timesteps"] == 128 and summary["resumed_from_step"] == 64
    # the schedule kept halving every 64 env steps over the extended budget: the last update
    # (after the rollout that ended at step 96 of 128) used 0.5 ** (96 / 64) of the initial rate
    last_step, last_rate = scalar_values(run_dir, "train/learning_rate")[-1]
    assert last_step == 128
    assert last_rate == pytest.approx(ZOO_ATARI_PPO.learning_rate * 0.5 ** (96 / 64), rel=1e-6)
    assert second.model._total_timesteps == 128
    steps = scalar_steps(run_dir, "train/learning_rate")
    assert steps and max(steps) > 64 and min(steps) <= 64
    assert len({p.parent for p in run_dir.rglob("events.out.tfevents.*")}) == 1  # one curve folder


@pytest.mark.slow
def test_a_finished_linear_run_is_not_extended_and_the_error_names_the_fix(tmp_path: Path) -> None:
    _, args = tiny_args(tmp_path)  # the zoo's linear schedules, at 0 after the 64 steps
    run_dir = train_ppo(args, script=SCRIPT).run_dir
    resumed = parse_ppo_args(ppo_parser("test", ZOO_ATARI_PPO, timesteps=999), ["--resume", str(run_dir), "--timesteps", "128"])
    with pytest.raises(ConfigError, match="reached 0 at step 64.*--lr-schedule exponential"):
        train_ppo(resumed, script=SCRIPT)


class StopAt(BaseCallback):
    """Stop ``learn`` at ``step`` env steps, as Ctrl-C or the campaign's deadline parks a run."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def _on_step(self) -> bool:
        return self.num_timesteps < self.step


class ScheduleProbe(BaseCallback):
    """The learning rate and clip range SB3 computes at each rollout start: its own progress formula."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[int, tuple[float, float]] = {}

    def _on_rollout_start(self) -> None:
        progress = 1.0 - self.model.num_timesteps / self.model._total_timesteps
        self.values[self.model.num_timesteps] = (self.model.lr_schedule(progress), self.model.clip_range(progress))

    def _on_step(self) -> bool:
        return True


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "total"), [("linear", 192), ("linear", 320), ("exponential", 320), ("constant", 320)])
def test_a_parked_run_resumes_its_schedules_from_the_step_it_reached(tmp_path: Path, kind: str, total: int) -> None:
    """Trained towards 192 steps, parked at 64, resumed towards ``total``: no jump at step 64, and they go on."""
    config = ZOO_ATARI_PPO.replace(n_envs=2, n_steps=32, batch_size=32, n_epochs=1, lr_schedule=kind,
                                   clip_schedule=kind, half_life=100)
    env = make_env("BreakoutNoFrameskip-v4", 2, seed=0)
    model = build_ppo(config, env, timesteps=192, device="cpu", seed=0)
    model.learn(192, callback=StopAt(64))
    progress = 1.0 - model.num_timesteps / model._total_timesteps
    stopped = (model.lr_schedule(progress), model.clip_range(progress))
    model.save(tmp_path / "latest.zip")
    resumed = load_ppo(tmp_path / "latest.zip", env=env, device="cpu")
    continue_schedules(resumed, total)
    probe = ScheduleProbe()
    resumed.learn(total - resumed.num_timesteps, callback=probe, reset_num_timesteps=False)
    env.close()
    assert resumed.num_timesteps == total
    assert probe.values[64] == pytest.approx(stopped)
    lr, clip = probe.values[256 if total == 320 else 128]
    steps_left = {"linear": (total - 256 if total == 320 else 64) / (total - 64), "constant": 1.0,
                  "exponential": 0.5 ** ((256 - 64) / 100)}[kind]
    assert (lr, clip) == pytest.approx((stopped[0] * steps_left, stopped[1] * steps_left))


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
    # exponential schedules: a finished linear one is at 0 and refuses an extension
    _, args = tiny_args(tmp_path, "--n-steps", "16", "--lr-schedule", "exponential", "--clip-schedule", "exponential")
    run_dir = train_ppo(args, script=SCRIPT).run_dir
    parser = ppo_parser("test", ZOO_ATARI_PPO, timesteps=999)
    resumed = parse_ppo_args(parser, ["--resume", str(run_dir), "--times", "128"])  # argparse's abbreviation
    assert resumed.timesteps == 128 and resumed.n_steps == 16
    assert train_ppo(resumed, script=SCRIPT).model.num_timesteps == 128


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    parser = ppo_parser("test", ZOO_ATARI_PPO, timesteps=64)
    with pytest.raises(RLBreakoutError, match="cannot resume"):
        parse_ppo_args(parser, ["--resume", str(tmp_path)])


def adam_steps(model) -> int:
    """Optimiser steps taken so far (Adam's per-parameter counter; 0 before the first update)."""
    state = model.policy.optimizer.state_dict()["state"]
    return int(state[0]["step"]) if state else 0


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a loaded 2-core machine took 5 minutes to reach the first checkpoint
def test_ctrl_c_saves_a_checkpoint_that_resumes(tmp_path: Path) -> None:
    flags = [f for f in TINY_PPO_FLAGS]
    flags[flags.index("--timesteps") + 1] = "1000000"
    flags[flags.index("--checkpoint-freq") + 1] = "64"  # a checkpoint after every rollout of 2 x 32 steps
    # A shell that starts the suite in the background (``make test &``) makes its children
    # ignore SIGINT, and Python then installs no Ctrl-C handler: give the child the default back.
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, *flags, "--gif-games", "0", "--eval-freq", "0", "--logdir", str(tmp_path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:  # training has started once the first rollout's checkpoint is written
        wait_until(lambda: list(tmp_path.rglob(f"{CHECKPOINT_DIR}/{LATEST_CHECKPOINT}")), 600,
                   "checkpoint after the first rollout (--checkpoint-freq 64)", proc)
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

    saved = PPO.load(checkpoint, device="cpu")
    assert saved.num_timesteps >= 64
    # Resume for two more rollouts: the run goes on from the checkpoint's step, weights and optimiser
    # (two: the linear schedule's last update has a learning rate of 0)
    run_dir = checkpoint.parent.parent
    resumed_args = parse_ppo_args(ppo_parser("test", ZOO_ATARI_PPO, timesteps=64),
                                  ["--resume", str(run_dir), "--timesteps", str(saved.num_timesteps + 128)])
    resumed = train_ppo(resumed_args, script=SCRIPT).model
    assert resumed.num_timesteps == saved.num_timesteps + 128
    assert adam_steps(resumed) == adam_steps(saved) + 4  # two rollouts of 64 in minibatches of 32, one epoch
    assert_few_updates_from(saved, resumed, updates=4)


def assert_few_updates_from(saved, resumed, updates: int) -> None:
    """``resumed`` holds ``saved``'s weights moved by a few Adam steps (each under about the learning rate)."""
    lr = saved.lr_schedule(1.0)  # the first (largest) learning rate of the schedule
    after = dict(resumed.policy.named_parameters())
    moved = [float((after[name] - before).abs().max()) for name, before in saved.policy.named_parameters()]
    assert 0 < max(moved) <= updates * 3 * lr, f"moved {max(moved):.2e} with a learning rate of {lr:.2e}"


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
    # the backend --fast picked is written back to the flags, so config.json records it
    assert args.backend == speed.backend == "ale_vector"


def test_a_truncated_latest_checkpoint_falls_back_to_the_previous_one(tmp_path: Path, capsys) -> None:
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=32, batch_size=32, device="cpu", seed=0)
    callback = StepCheckpointCallback(0, tmp_path / CHECKPOINT_DIR)
    callback.init_callback(model)
    for steps in (32, 64):
        model.num_timesteps = steps
        latest = callback.save()
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])  # a copy cut short
    capsys.readouterr()

    assert load_checkpoint(tmp_path).num_timesteps == 32
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(latest) in err[0] and PREVIOUS_CHECKPOINT in err[0] and "32 steps" in err[0]
    assert (latest.parent / f"{LATEST_CHECKPOINT}{DAMAGED_SUFFIX}").is_file()  # kept for a look
    assert load_checkpoint(tmp_path).num_timesteps == 32  # latest.zip is whole again
    assert capsys.readouterr().err == ""

    (latest.parent / PREVIOUS_CHECKPOINT).unlink()
    latest.unlink()
    latest.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(RLBreakoutError) as caught:
        load_checkpoint(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and f"no {PREVIOUS_CHECKPOINT}" in message and "without --resume" in message
