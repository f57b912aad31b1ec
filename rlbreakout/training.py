"""The SB3 PPO pieces the chapter scripts share: flags, validation, model, loading, one run.

A chapter script writes its lesson itself (``PPO(...)``, the callbacks, ``model.learn``);
this module keeps what every script would otherwise copy: the PPO flags derived from
:class:`~rlbreakout.hyperparams.PPOConfig`, their validation, the eval envs, loading a
saved model with a clear error, and :func:`train_ppo`, the whole run in one call for the
scripts whose lesson is elsewhere (the demo, chapter 4's studies).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.utils import FloatSchedule
from stable_baselines3.common.vec_env import VecEnv

from rlbreakout.callbacks import (
    LATEST_CHECKPOINT,
    PREVIOUS_CHECKPOINT,
    GameScoreCallback,
    HyperparamTableCallback,
    MultiEnvEvalCallback,
    ProgressLineCallback,
    StepCheckpointCallback,
)
from rlbreakout.cli import common_parser, parse_script_args, resolve_device
from rlbreakout.env_ids import BACKEND_CHOICES, EVAL_BACKEND, VEC_ENV_CHOICES, check_env_id
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.files import atomic_path, link_or_copy
from rlbreakout.flag_types import MAX_COUNT, MAX_GIF_GRID, MAX_GIF_STEPS, input_file, whole
from rlbreakout.hyperparams import PPOConfig, add_ppo_flags, markdown_table
from rlbreakout.progress import on_terminal
from rlbreakout.render import record_gif
from rlbreakout.runs import Run, load_run_config, score_stats
from rlbreakout.schedules import continue_schedule
from rlbreakout.speed.fast import DEFAULT_N_EPOCHS, fast_settings
from rlbreakout.speed.policies import policy_class

CHECKPOINT_DIR = "checkpoints"
#: A damaged ``latest.zip`` that ``--resume`` stepped over is kept under this name, for a look.
DAMAGED_SUFFIX = ".damaged"
FINAL_MODEL_FILE = "model.zip"
#: Policy weights without optimiser state (a third of model.zip), loadable with ``--load``.
POLICY_FILE = "policy.pt"
REPLAY_GIF = "replay.gif"
TENSORBOARD_RUN_NAME = "PPO"
#: Seed offset for eval envs, so evaluation games are not replays of training games.
EVAL_SEED_OFFSET = 10_000
#: Eval games are played on up to this many envs at once.
MAX_EVAL_ENVS = 5
#: The last training-game scores copied into summary.json.
TRAIN_SCORES_KEPT = 100
PRECISION_CHOICES: tuple[str, ...] = ("auto", "fp32", "bf16")


def ppo_parser(
    description: str | None,
    defaults: PPOConfig,
    *,
    timesteps: int,
    eval_freq: int = 0,
    eval_episodes: int = 10,
    **common: Any,
) -> argparse.ArgumentParser:
    """The common flags, one flag per PPOConfig field, and evaluation, checkpoint, speed and replay flags.

    :param defaults: the script's hyperparameters (e.g. ``ZOO_ATARI_PPO``), so its defaults
        reproduce its tutorial run
    """
    parser = common_parser(description, timesteps=timesteps, n_envs=defaults.n_envs, **common)
    add_ppo_flags(parser, defaults)
    run = parser.add_argument_group("evaluation, checkpoints and replay")
    run.add_argument("--eval-freq", type=whole(0), default=eval_freq,
                     help="env steps between evaluations (0 turns periodic evaluation off)")
    run.add_argument("--eval-episodes", type=whole(1, MAX_COUNT), default=eval_episodes, help="whole games per evaluation")
    run.add_argument("--checkpoint-freq", type=whole(0), default=100_000,
                     help="env steps between checkpoints (0: only at the end and on Ctrl-C)")
    run.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    run.add_argument("--load", type=input_file, default=None, metavar="MODEL",
                     help="skip training: evaluate and replay a saved model (run model.zip or models/*.pt policy)")
    run.add_argument("--gif-games", type=whole(0, MAX_GIF_GRID), default=1, help="grid side of the replay gif (3 -> 9 games); 0: no gif")
    run.add_argument("--gif-max-steps", type=whole(0, MAX_GIF_STEPS), default=2_000, help="agent steps recorded per gif at most")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--vec-env", choices=VEC_ENV_CHOICES, default="dummy", help="DummyVecEnv or SubprocVecEnv")
    speed.add_argument("--fast", action=argparse.BooleanOptionalAction, default=False,
                       help="turn on the speed levers that apply: ale_vector envs, and the network precision "
                            "and memory layout measured fastest on this machine")
    speed.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                       help="network precision (auto: fp32, or with --fast whatever measured fastest)")
    speed.add_argument("--backend", choices=BACKEND_CHOICES, default=None,
                       help="env backend (default: classic, or ale_vector with --fast)")
    return parser


def parse_ppo_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the flags; ``--resume RUN_DIR`` needs that run's checkpoint (see :func:`~rlbreakout.cli.parse_script_args`)."""
    args = parse_script_args(parser, argv)
    if args.resume and not any((Path(args.resume) / CHECKPOINT_DIR / name).is_file()
                               for name in (LATEST_CHECKPOINT, PREVIOUS_CHECKPOINT)):
        raise RLBreakoutError(
            f"cannot resume {args.resume}: no {CHECKPOINT_DIR}/{LATEST_CHECKPOINT} in it. "
            f"Pass --resume the run folder printed by the first run (it holds summary.json or checkpoints/)."
        )
    return args


def validate_ppo_args(args: argparse.Namespace) -> PPOConfig:
    """Check the flags before any work starts (one clear line per problem); returns the PPOConfig."""
    if args.timesteps <= 0:
        raise ConfigError(f"--timesteps must be positive, got {args.timesteps}.")
    config = PPOConfig.from_args(args)
    config.validate()
    if args.eval_freq < 0:
        raise ConfigError(f"--eval-freq must be >= 0 (0 turns evaluation off), got {args.eval_freq}.")
    if args.eval_episodes < 1:
        raise ConfigError(f"--eval-episodes must be >= 1, got {args.eval_episodes}.")
    check_env_id(args.env)
    args.device = resolve_device(args.device)
    if getattr(args, "load", None):
        check_loadable(args.load)
    return config


def check_loadable(path: str | Path, flag: str = "--load") -> None:
    """Load the model once on the CPU, so a corrupt file fails before any run folder is made."""
    try:
        load_policy(path, device="cpu")
    except RLBreakoutError as exc:
        raise ConfigError(f"{flag}: {exc}") from exc


def speed_settings(args: argparse.Namespace, *, wrapper: str = "atari", wrapper_kwargs: dict[str, Any] | None = None,
                   env_kwargs: dict[str, Any] | None = None) -> Any:
    """What ``--fast``, ``--precision`` and ``--backend`` resolve to here.

    A resumed run keeps the levers its config.json recorded, without measuring again. The
    env backend chosen is written back to ``args.backend``, so config.json records the
    backend ``--fast`` picked, not the flag's empty default.
    """
    levers = load_run_config(args.resume).get("levers") if getattr(args, "resume", None) else None
    speed = fast_settings(
        args.fast, None if args.precision == "auto" else args.precision, args.backend, args.device,
        env_id=args.env, wrapper=wrapper, n_envs=args.n_envs, env_kwargs=env_kwargs, wrapper_kwargs=wrapper_kwargs,
        batch_size=args.batch_size, levers=levers, verbose=True, timesteps=getattr(args, "timesteps", None),
        n_epochs=getattr(args, "n_epochs", DEFAULT_N_EPOCHS),
    )
    args.backend = speed.backend
    return speed


def build_ppo(config: PPOConfig, env: VecEnv, *, timesteps: int, policy_kwargs: dict[str, Any] | None = None,
              tensorboard_log: str | Path | None = None, seed: int | None = None, device: str = "auto") -> PPO:
    """A fresh SB3 PPO with every field of ``config`` (schedules over ``timesteps``).

    The policy follows ``policy_kwargs``: SB3's ``"CnnPolicy"``, or ``--fast``'s
    mixed-precision policy when they name a mixed-precision extractor.
    """
    return PPO(policy_class(policy_kwargs or {}), env, **config.ppo_kwargs(timesteps),
               policy_kwargs=policy_kwargs or None, tensorboard_log=None if tensorboard_log is None else str(tensorboard_log),
               seed=seed, device=device, verbose=0)


def make_eval_envs(env_ids: dict[str, str], n_games: int, *, seed: int, **env_options: Any) -> dict[str, VecEnv]:
    """One VecEnv per eval env name, on the classic stack whatever trained.

    The classic stack presses FIRE after a lost life (the ALE vector env does not, so a
    stalling policy could play to the frame limit) and keeps scores comparable across backends.
    """
    n_envs = min(n_games, MAX_EVAL_ENVS)
    return {label: make_env(env_id, n_envs, seed=seed, backend=EVAL_BACKEND, **env_options) for label, env_id in env_ids.items()}


def load_policy(path: str | Path, device: str = "auto") -> Any:
    """Load something that can ``predict``: an SB3 PPO zip, or policy weights saved by ``policy.save``.

    The pretrained files in ``models/`` are policy weights only (no optimiser state),
    which keeps them small enough to commit.
    """
    path = Path(path)
    if path.suffix == ".zip":
        return load_ppo(path, device=device)
    if not path.is_file():
        raise RLBreakoutError(f"model file {path} does not exist; pass a run's model.zip or a models/*.pt policy file.")
    try:
        return ActorCriticPolicy.load(str(path), device=device)
    except Exception as exc:
        raise RLBreakoutError(f"cannot load policy {path}: {type(exc).__name__}: {exc}. Is it a complete policy file?") from exc


def load_ppo(path: str | Path, env: Any = None, device: str = "auto") -> PPO:
    """Load a PPO zip with a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise RLBreakoutError(f"model file {path} does not exist; pass the model.zip or best_model.zip of a run folder.")
    try:
        return PPO.load(path, env=env, device=device)
    except Exception as exc:  # zipfile, pickle and torch errors all mean "not a usable model"
        raise RLBreakoutError(f"cannot load model {path}: {type(exc).__name__}: {exc}. Is it a complete SB3 PPO .zip?") from exc


def load_checkpoint(run_dir: str | Path, env: Any = None, device: str = "auto") -> PPO:
    """The run's ``checkpoints/latest.zip``; a damaged one falls back to ``previous.zip`` with one line.

    A checkpoint is written atomically, so a damaged one comes from outside (a copy cut
    short, a disk error). The damaged file is kept as ``latest.zip.damaged`` and the previous
    checkpoint becomes the latest, so the next checkpoint again keeps two good ones.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    latest, previous = folder / LATEST_CHECKPOINT, folder / PREVIOUS_CHECKPOINT
    try:
        return load_ppo(latest, env=env, device=device)
    except RLBreakoutError as exc:
        if not previous.is_file():
            raise RLBreakoutError(f"cannot resume {run_dir}: {latest} is unusable and there is no {PREVIOUS_CHECKPOINT} "
                                  f"to fall back to ({exc}). Start the run again without --resume.") from exc
        model = load_ppo(previous, env=env, device=device)
        if latest.exists():
            os.replace(latest, latest.with_name(latest.name + DAMAGED_SUFFIX))
        with atomic_path(latest) as partial:
            link_or_copy(previous, partial)
        print(f"{latest} is unusable; resuming from the checkpoint before it, {previous} "
              f"({model.num_timesteps:,} steps); the damaged file is kept as {latest.name}{DAMAGED_SUFFIX}.",
              file=sys.stderr, flush=True)
        return model


def steps_left(model: PPO, timesteps: int, run_dir: Path) -> int:
    """Env steps still to train towards ``--timesteps`` (a resumed run has some already)."""
    remaining = int(timesteps) - int(model.num_timesteps)
    if remaining <= 0:
        raise RLBreakoutError(f"{run_dir} already has {model.num_timesteps} steps >= --timesteps {timesteps}; "
                              f"pass a larger --timesteps to extend it.")
    return remaining


def continue_schedules(model: PPO, timesteps: int) -> None:
    """Make a resumed model's schedules go on from the step it reached towards ``--timesteps``; one line each.

    SB3 computes ``progress_remaining`` against the total of the ``learn`` call, so a run
    extended to another ``--timesteps`` would see its schedules jump; each is continued by
    :func:`~rlbreakout.schedules.continue_schedule` (a refusal names the fix). The total the
    checkpoint trained towards is SB3's ``_total_timesteps``, saved with the model.
    """
    step, planned = int(model.num_timesteps), int(model._total_timesteps)
    if timesteps <= step:  # nothing left to train: steps_left says so
        return
    lr, lr_line = continue_schedule(model.learning_rate, name="learning rate", flag="--lr-schedule", step=step,
                                    planned_total=planned, new_total=timesteps)
    clip, clip_line = continue_schedule(model.clip_range, name="clip range", flag="--clip-schedule", step=step,
                                        planned_total=planned, new_total=timesteps)
    model.learning_rate, model.clip_range = lr, FloatSchedule(clip)
    model._setup_lr_schedule()
    print(f"resumed at step {step:,} of {timesteps:,}: {lr_line}")
    print(f"resumed at step {step:,} of {timesteps:,}: {clip_line}")


def save_model(model: PPO, run_dir: Path, checkpoint: StepCheckpointCallback | None = None) -> Path:
    """Save ``model.zip`` and ``policy.pt`` (weights only, for models/), and a last checkpoint.

    SB3 dumps an update's train/* values at the start of the next iteration, so the last
    update's values are dumped here, or they would be lost.
    """
    model.logger.dump(model.num_timesteps)
    path = Path(run_dir) / FINAL_MODEL_FILE
    with atomic_path(path) as partial:
        model.save(partial)
    with atomic_path(Path(run_dir) / POLICY_FILE) as partial:
        model.policy.save(str(partial))
    if checkpoint is not None:
        checkpoint.save()
    return path


@dataclass
class TrainingResult:
    """What :func:`train_ppo` produced, for scripts that do more afterwards.

    ``fields`` are the keyword arguments of :meth:`Run.finish`; with ``finish=False`` the
    caller adds its own and calls ``result.run.finish(**result.fields, ...)``.
    """

    model: Any
    run: Run
    fields: dict[str, Any]
    summary_path: Path | None = None

    @property
    def run_dir(self) -> Path:
        return self.run.dir

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json as written (or, before :meth:`Run.finish`, as it would be)."""
        if self.summary_path is not None:
            return json.loads(self.summary_path.read_text())
        return self.run.summary(**self.fields)


def train_ppo(
    args: argparse.Namespace,
    *,
    script: str,
    wrapper: str = "atari",
    wrapper_kwargs: dict[str, Any] | None = None,
    eval_env_ids: dict[str, str] | None = None,
    headline_eval: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    gif_view: str = "screen",
    config_extra: dict[str, Any] | None = None,
    finish: bool = True,
) -> TrainingResult:
    """The whole run of a chapter script in one call: what 2.3's cells do, for the demo and chapter 4.

    With ``--load MODEL`` it skips training and only evaluates and replays that model.

    :param script: the calling script's path (``__file__``), naming the run folder
    :param eval_env_ids: eval envs by name -> env id (default: ``{"eval": args.env}``)
    :param headline_eval: the eval env whose scores are summary.json's mean/median (default: the first)
    :param gif_view: ``screen`` or ``agent`` (chapter 3: the observation beside the game)
    :param finish: write summary.json (else the caller finishes the run, see :class:`TrainingResult`)
    """
    config = validate_ppo_args(args)
    speed = speed_settings(args, wrapper=wrapper, wrapper_kwargs=wrapper_kwargs, env_kwargs=env_kwargs)
    eval_ids = dict(eval_env_ids or {"eval": args.env})
    headline = headline_eval or next(iter(eval_ids))
    if headline not in eval_ids:
        raise ConfigError(f"headline_eval {headline!r} is not one of the eval envs {sorted(eval_ids)}.")
    loaded = load_policy(args.load, device=args.device) if args.load else None
    run = Run.from_args(script, args, wrapper=wrapper, wrapper_kwargs=wrapper_kwargs, env_kwargs=env_kwargs,
                        levers=speed.levers, **(config_extra or {}))
    env_options = dict(frame_stack=config.frame_stack, wrapper=wrapper, wrapper_kwargs=wrapper_kwargs, env_kwargs=env_kwargs)
    eval_envs = make_eval_envs(eval_ids, args.eval_episodes, seed=args.seed + EVAL_SEED_OFFSET, **env_options)
    extra: dict[str, Any] = {"n_envs": args.n_envs, "backend": speed.backend, "eval_backend": EVAL_BACKEND,
                             "precision": speed.precision}
    if loaded is not None:
        model, model_path = loaded, Path(args.load)
        extra["loaded_model"] = str(args.load)
    else:
        model, evaluator, scores, checkpoint = _learn(args, config, run, speed, env_options, eval_envs, headline)
        model_path = save_model(model, run.dir, checkpoint)
        extra.update({
            "policy_path": str(run.dir / POLICY_FILE),
            "train_game_scores": scores[-TRAIN_SCORES_KEPT:],
            "resumed_from_step": int(model.num_timesteps) - run.trained_steps if args.resume else None,
            "eval_history": [{"step": step, **results} for step, results in getattr(evaluator, "history", [])],
        })
    per_env = {label: evaluate_policy(model, venv, n_eval_episodes=args.eval_episodes, deterministic=False,
                                      return_episode_rewards=True)
               for label, venv in eval_envs.items()}
    gif_path = None
    if args.gif_games > 0:
        gif_path, _ = record_gif(model, run.dir / REPLAY_GIF, args.env, grid=args.gif_games,
                                 seed=args.seed + EVAL_SEED_OFFSET, max_steps=args.gif_max_steps, view=gif_view,
                                 **env_options)
    for venv in eval_envs.values():
        venv.close()
    scores, lengths = per_env[headline]
    fields = dict(
        timesteps=int(model.num_timesteps) if loaded is None else 0, scores=scores, model_path=model_path,
        eval_lengths=lengths, eval_by_env={label: {**score_stats(s), "scores": s} for label, (s, _) in per_env.items()},
        gif_path=str(gif_path) if gif_path else None, tensorboard_dir=str(run.dir), **extra,
    )
    result = TrainingResult(model=model, run=run, fields=fields)
    if finish:
        result.summary_path = run.finish(**fields)
    return result


def _learn(args: argparse.Namespace, config: PPOConfig, run: Run, speed: Any, env_options: dict[str, Any],
           eval_envs: dict[str, VecEnv], headline: str
           ) -> tuple[PPO, MultiEnvEvalCallback | None, list[float], StepCheckpointCallback]:
    """Build (or resume) the model and learn, timed by ``run``."""
    env = make_env(args.env, args.n_envs, seed=args.seed, vec_env=args.vec_env, backend=speed.backend,
                   ale_threads=speed.ale_threads,
                   **env_options)
    if args.resume:
        model = load_checkpoint(run.dir, env=env, device=args.device)
        model.tensorboard_log = str(run.dir)
        continue_schedules(model, args.timesteps)
    else:
        model = build_ppo(config, env, timesteps=args.timesteps, policy_kwargs=speed.policy_kwargs,
                          tensorboard_log=run.dir, seed=args.seed, device=args.device)
    remaining = steps_left(model, args.timesteps, run.dir)
    table = {**config.as_dict(), "learning_rate_schedule": repr(model.learning_rate),
             "clip_range_schedule": repr(model.clip_range), **speed.to_config()}
    score_callback = GameScoreCallback()
    checkpoint = StepCheckpointCallback(args.checkpoint_freq, run.dir / CHECKPOINT_DIR)
    callbacks: list[Any] = [score_callback, HyperparamTableCallback(markdown_table(table)), checkpoint,
                            ProgressLineCallback(args.timesteps)]
    evaluator = None
    if args.eval_freq > 0:
        evaluator = MultiEnvEvalCallback(eval_envs, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes,
                                         best_model_env=headline, best_model_save_path=run.dir)
        callbacks.append(evaluator)
    try:
        with run.training(model, on_interrupt=checkpoint.save):
            model.learn(total_timesteps=remaining, callback=callbacks, tb_log_name=TENSORBOARD_RUN_NAME,
                        reset_num_timesteps=not args.resume, progress_bar=on_terminal())
    finally:
        env.close()
    run.exclude(evaluator.eval_seconds if evaluator else 0.0)
    return model, evaluator, score_callback.scores, checkpoint
