"""The PPO training run shared by the SB3 chapter scripts (1.3, 2.x, 3.3, 4.1).

One function, :func:`train_ppo`, does the steps every script would otherwise copy:
validate the hyperparameters, make (or resume) the run folder, seed, build train and
eval envs from the same factory, build the model, attach the callbacks, learn with a
progress bar, checkpoint on Ctrl-C, evaluate whole games, record a gif and write
``summary.json``. The scripts choose what differs: envs, wrapper, hyperparameters.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlbreakout.callbacks import (
    BEST_MODEL_FILE,
    LATEST_CHECKPOINT,
    GameScoreCallback,
    HyperparamTableCallback,
    MultiEnvEvalCallback,
    StepCheckpointCallback,
)
from rlbreakout.cli import common_parser, resolve_device
from rlbreakout.envs import BACKEND_CHOICES, VEC_ENV_CHOICES, check_env_id, make_env
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.evaluation import evaluate_games
from rlbreakout.hyperparams import markdown_table
from rlbreakout.runs import (
    create_run_dir,
    load_run_config,
    save_run_config,
    score_stats,
    script_name,
    seed_everything,
    write_summary,
)
from rlbreakout.schedules import SCHEDULE_CHOICES, make_schedule

CHECKPOINT_DIR = "checkpoints"
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
    hyperparams: dict[str, Any],
    *,
    timesteps: int,
    eval_freq: int = 0,
    eval_episodes: int = 10,
    **common: Any,
) -> argparse.ArgumentParser:
    """The common flags plus PPO, evaluation, checkpoint, speed and replay flags.

    :param hyperparams: defaults (e.g. ``ZOO_ATARI_PPO``), so each script's defaults
        reproduce its tutorial run
    """
    parser = common_parser(description, timesteps=timesteps, n_envs=hyperparams["n_envs"], **common)
    ppo = parser.add_argument_group("PPO")
    ppo.add_argument("--n-steps", type=int, default=hyperparams["n_steps"], help="env steps per env per rollout")
    ppo.add_argument("--batch-size", type=int, default=hyperparams["batch_size"], help="minibatch size")
    ppo.add_argument("--n-epochs", type=int, default=hyperparams["n_epochs"], help="passes over each rollout")
    ppo.add_argument("--learning-rate", type=float, default=hyperparams["learning_rate"], help="initial learning rate")
    ppo.add_argument("--lr-schedule", choices=SCHEDULE_CHOICES, default=hyperparams["learning_rate_schedule"])
    ppo.add_argument("--clip-range", type=float, default=hyperparams["clip_range"], help="initial PPO clip range")
    ppo.add_argument("--clip-schedule", choices=SCHEDULE_CHOICES, default=hyperparams["clip_range_schedule"])
    ppo.add_argument("--half-life", type=float, default=None,
                     help="env steps per halving for exponential schedules (default: timesteps / 4)")
    ppo.add_argument("--ent-coef", type=float, default=hyperparams["ent_coef"])
    ppo.add_argument("--vf-coef", type=float, default=hyperparams["vf_coef"])
    ppo.add_argument("--frame-stack", type=int, default=hyperparams["frame_stack"])
    run = parser.add_argument_group("evaluation, checkpoints and replay")
    run.add_argument("--eval-freq", type=int, default=eval_freq,
                     help="env steps between evaluations (0 turns periodic evaluation off)")
    run.add_argument("--eval-episodes", type=int, default=eval_episodes, help="whole games per evaluation")
    run.add_argument("--checkpoint-freq", type=int, default=100_000, help="env steps between checkpoints (0: only at the end and on Ctrl-C)")
    run.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    run.add_argument("--load", default=None, metavar="MODEL",
                     help="skip training: evaluate and replay a saved model (run model.zip or models/*.pt policy)")
    run.add_argument("--gif-games", type=int, default=1, help="grid side of the replay gif (3 -> 9 games); 0: no gif")
    run.add_argument("--gif-max-steps", type=int, default=2_000, help="agent steps recorded per gif at most")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--vec-env", choices=VEC_ENV_CHOICES, default="dummy", help="DummyVecEnv or SubprocVecEnv")
    speed.add_argument("--fast", action="store_true",
                       help="turn on every speed lever that applies: ale_vector envs and a bf16 network (channels_last on CUDA)")
    speed.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                       help="network precision (auto: fp32, or bf16 with --fast where the hardware has it)")
    speed.add_argument("--backend", choices=BACKEND_CHOICES, default=None,
                       help="env backend (default: classic, or ale_vector with --fast)")
    return parser


def validate_ppo_args(args: argparse.Namespace) -> None:
    """Check hyperparameters before any work starts; one clear line per problem."""
    if args.timesteps <= 0:
        raise ConfigError(f"--timesteps must be positive, got {args.timesteps}.")
    if args.n_envs < 1:
        raise ConfigError(f"--n-envs must be >= 1, got {args.n_envs}.")
    if args.n_steps < 1:
        raise ConfigError(f"--n-steps must be >= 1, got {args.n_steps}.")
    if args.n_epochs < 1:
        raise ConfigError(f"--n-epochs must be >= 1, got {args.n_epochs}.")
    rollout = args.n_steps * args.n_envs
    if args.batch_size < 1 or rollout % args.batch_size != 0:
        divisors = [d for d in (32, 64, 128, 256, 512, 1024) if rollout % d == 0 and d <= rollout]
        raise ConfigError(
            f"--batch-size {args.batch_size} must divide the rollout n_steps * n_envs = "
            f"{args.n_steps} * {args.n_envs} = {rollout}; try one of {divisors or [rollout]}."
        )
    if args.learning_rate <= 0:
        raise ConfigError(f"--learning-rate must be positive, got {args.learning_rate}.")
    if args.eval_freq < 0:
        raise ConfigError(f"--eval-freq must be >= 0 (0 turns evaluation off), got {args.eval_freq}.")
    if args.eval_episodes < 1:
        raise ConfigError(f"--eval-episodes must be >= 1, got {args.eval_episodes}.")
    if args.frame_stack < 1:
        raise ConfigError(f"--frame-stack must be >= 1, got {args.frame_stack}.")
    check_env_id(args.env)
    args.device = resolve_device(args.device)


def explicit_flags(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The ``dest`` names of the options given on the command line (not defaulted)."""
    given: set[str] = set()
    for action in parser._actions:  # argparse keeps no public record of what was explicit
        if any(arg == opt or arg.startswith(opt + "=") for opt in action.option_strings for arg in argv):
            given.add(action.dest)
    return given


def resume_args(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str] | None = None) -> argparse.Namespace:
    """With ``--resume RUN_DIR``: the saved config, overridden only by flags given now.

    So ``--resume runs/.../`` alone continues with the original budget and settings,
    and ``--resume runs/.../ --timesteps 2000000`` extends the run.
    """
    if not args.resume:
        return args
    run_dir = Path(args.resume)
    if not (run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT).is_file():
        raise RLBreakoutError(
            f"cannot resume {run_dir}: no {CHECKPOINT_DIR}/{LATEST_CHECKPOINT} in it. "
            f"Pass the run folder printed by the first run (it holds summary.json or checkpoints/)."
        )
    saved = load_run_config(run_dir)
    given = explicit_flags(parser, sys.argv[1:] if argv is None else argv)
    merged = vars(args).copy()
    for key, value in saved.items():
        if key in merged and key not in given:
            merged[key] = value
    merged["resume"] = str(run_dir)
    return argparse.Namespace(**merged)


@dataclass
class SpeedSettings:
    """What ``--fast``, ``--precision`` and ``--backend`` resolved to on this machine."""

    backend: str = "classic"
    precision: str = "fp32"
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def resolve_speed(args: argparse.Namespace, wrapper: str = "atari", wrapper_kwargs: dict[str, Any] | None = None,
                  env_kwargs: dict[str, Any] | None = None) -> SpeedSettings:
    """Turn ``--fast``, ``--precision`` and ``--backend`` into a backend, a precision and policy kwargs.

    ``--fast`` picks ale_vector envs only where they reproduce the env (the "atari"
    wrapper); the aimbot wrapper keeps the classic stack and still gets the bf16 network.
    """
    from rlbreakout.fast import fast_settings

    chosen = fast_settings(
        args.fast, None if args.precision == "auto" else args.precision, args.backend, args.device,
        env_id=args.env, wrapper=wrapper, n_envs=args.n_envs, env_kwargs=env_kwargs, wrapper_kwargs=wrapper_kwargs,
        verbose=False,
    )
    notes = list(chosen["notes"])
    if chosen["threads"]:
        notes.append(f"threads: {chosen['threads']}")
    return SpeedSettings(backend=chosen["backend"], precision=chosen["precision"],
                         policy_kwargs=dict(chosen["policy_kwargs"]), notes=notes)


def build_ppo(args: argparse.Namespace, env: Any, run_dir: Path, policy_kwargs: dict[str, Any]) -> Any:
    """A fresh SB3 PPO with the script's hyperparameters and readable schedules.

    The policy follows ``policy_kwargs``: SB3's ``"CnnPolicy"``, or ``--fast``'s
    :class:`~rlbreakout.fast.MixedPrecisionCnnPolicy` for a mixed-precision extractor.
    """
    from stable_baselines3 import PPO

    from rlbreakout.fast import policy_class

    half_life = args.half_life or max(args.timesteps / 4, 1.0)
    return PPO(
        policy_class(policy_kwargs),
        env,
        n_steps=args.n_steps,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=make_schedule(args.lr_schedule, args.learning_rate, total_timesteps=args.timesteps, half_life=half_life),
        clip_range=make_schedule(args.clip_schedule, args.clip_range, total_timesteps=args.timesteps, half_life=half_life),
        ent_coef=args.ent_coef,
        vf_coef=args.vf_coef,
        policy_kwargs=policy_kwargs or None,
        tensorboard_log=str(run_dir),
        seed=args.seed,
        device=args.device,
        verbose=0,
    )


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
    from stable_baselines3.common.policies import ActorCriticPolicy

    try:
        return ActorCriticPolicy.load(str(path), device=device)
    except Exception as exc:
        raise RLBreakoutError(f"cannot load policy {path}: {type(exc).__name__}: {exc}. Is it a complete policy file?") from exc


def load_ppo(path: str | Path, env: Any = None, device: str = "auto") -> Any:
    """Load a PPO zip with a clear error for a missing or corrupt file."""
    from stable_baselines3 import PPO

    path = Path(path)
    if not path.is_file():
        raise RLBreakoutError(f"model file {path} does not exist; pass the model.zip or best_model.zip of a run folder.")
    try:
        return PPO.load(path, env=env, device=device)
    except Exception as exc:  # zipfile, pickle and torch errors all mean "not a usable model"
        raise RLBreakoutError(f"cannot load model {path}: {type(exc).__name__}: {exc}. Is it a complete SB3 PPO .zip?") from exc


@dataclass
class TrainingResult:
    """What :func:`train_ppo` produced, for scripts that do more afterwards."""

    model: Any
    run_dir: Path
    summary: dict[str, Any]
    summary_path: Path


def parse_ppo_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the flags; with ``--resume`` fill in the saved run's settings (see :func:`resume_args`)."""
    args = parser.parse_args(argv)
    return resume_args(parser, args, argv)


def train_ppo(
    args: argparse.Namespace,
    *,
    script: str,
    wrapper: str = "atari",
    wrapper_kwargs: dict[str, Any] | None = None,
    extra_eval_envs: dict[str, str] | None = None,
    eval_env_ids: dict[str, str] | None = None,
    headline_eval: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    gif_view: str = "screen",
    config_extra: dict[str, Any] | None = None,
) -> TrainingResult:
    """Train PPO as the flags say; write TensorBoard logs, checkpoints, a gif and summary.json.

    With ``--load MODEL`` it skips training and only evaluates and replays that model.

    :param script: the calling script's path (``__file__``), naming the run folder
    :param extra_eval_envs: more eval envs by name -> env id, besides ``eval`` (the training env)
    :param eval_env_ids: all eval envs by name -> env id, replacing ``eval`` (chapter 4.1: v4, v4NoFS, v5)
    :param headline_eval: the eval env name whose scores are summary.json's mean/median and pick
        the best model (default: the first)
    :param gif_view: ``screen`` or ``agent`` (chapter 3: the observation beside the game)
    """
    validate_ppo_args(args)
    speed = resolve_speed(args, wrapper, wrapper_kwargs, env_kwargs)
    name = script_name(script)
    loaded = load_policy(args.load, device=args.device) if getattr(args, "load", None) else None
    if args.resume:
        run_dir = Path(args.resume)
    else:
        run_dir = create_run_dir(args.logdir, name, args.env, args.seed)
        save_run_config(run_dir, {**vars(args), "wrapper": wrapper, "wrapper_kwargs": wrapper_kwargs,
                                  "env_kwargs": env_kwargs, **(config_extra or {})})
    print(f"run folder: {run_dir}  (tensorboard --logdir {args.logdir})", flush=True)
    for note in speed.notes:
        print(note, flush=True)
    seed_everything(args.seed)

    env_options = dict(frame_stack=args.frame_stack, wrapper=wrapper, wrapper_kwargs=wrapper_kwargs, env_kwargs=env_kwargs)
    eval_ids = dict(eval_env_ids) if eval_env_ids else {"eval": args.env, **(extra_eval_envs or {})}
    headline = headline_eval or next(iter(eval_ids))
    if headline not in eval_ids:
        raise ConfigError(f"headline_eval {headline!r} is not one of the eval envs {sorted(eval_ids)}.")
    n_eval_envs = min(args.eval_episodes, MAX_EVAL_ENVS)
    # Evaluation always runs on the classic stack, whatever trained: it presses FIRE after a
    # lost life (the ALE vector env does not, so a stalling policy could play to the frame
    # limit) and it makes scores comparable across backends.
    eval_envs = {
        label: make_env(env_id, n_eval_envs, seed=args.seed + EVAL_SEED_OFFSET, **env_options)
        for label, env_id in eval_ids.items()
    }
    started = time.perf_counter()
    summary: dict[str, Any] = {"n_envs": args.n_envs, "backend": speed.backend, "precision": speed.precision}
    if loaded is not None:
        model, trained_steps, train_seconds, model_path = loaded, 0, 0.0, Path(args.load)
        summary.update({"timesteps": 0, "loaded_model": str(args.load)})
    else:
        model, trained_steps, train_seconds, evaluator, score_callback = _learn(
            args, run_dir, speed, wrapper, wrapper_kwargs, env_options, eval_envs, headline
        )
        model_path = run_dir / FINAL_MODEL_FILE
        model.save(model_path)
        model.policy.save(str(run_dir / POLICY_FILE))  # weights only: small enough for models/
        summary.update({
            "policy_path": str(run_dir / POLICY_FILE),
            "timesteps": int(model.num_timesteps),
            "train_game_scores": score_callback.scores[-TRAIN_SCORES_KEPT:],
            "best_model_path": str(run_dir / BEST_MODEL_FILE) if (run_dir / BEST_MODEL_FILE).exists() else None,
            "resumed_from_step": int(model.num_timesteps) - trained_steps if args.resume else None,
            "eval_history": [{"step": step, **results} for step, results in getattr(evaluator, "history", [])],
        })

    # Final evaluation: whole games on every eval env; the first one is the headline score.
    per_env = {label: evaluate_games(model, venv, args.eval_episodes) for label, venv in eval_envs.items()}
    scores, lengths = per_env[headline]
    final_eval = score_stats(scores)
    gif_path = None
    if args.gif_games > 0:
        from rlbreakout.render import record_gif

        gif_path, _ = record_gif(
            model, run_dir / REPLAY_GIF, args.env, grid=args.gif_games, seed=args.seed + EVAL_SEED_OFFSET,
            max_steps=args.gif_max_steps, view=gif_view, **env_options,
        )
    for venv in eval_envs.values():
        venv.close()

    summary.update({
        "script": name,
        "env_id": args.env,
        "seed": args.seed,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "steps_per_second": round(trained_steps / train_seconds, 2) if train_seconds > 0 else 0.0,
        **final_eval,
        "scores": scores,
        "eval_lengths": lengths,
        "eval_by_env": {label: {**score_stats(s), "scores": s} for label, (s, _) in per_env.items()},
        "model_path": str(model_path),
        "gif_path": str(gif_path) if gif_path else None,
        "tensorboard_dir": str(run_dir),
    })
    print(f"final evaluation: mean {final_eval['mean_reward']:.1f}, median {final_eval['median_reward']:.1f} "
          f"over {final_eval['n_games']} whole games; {summary['steps_per_second']} steps/s; "
          f"model {model_path}; gif {gif_path}", flush=True)
    summary_path = write_summary(run_dir, summary)
    return TrainingResult(model=model, run_dir=run_dir, summary=summary, summary_path=summary_path)


def _learn(
    args: argparse.Namespace,
    run_dir: Path,
    speed: SpeedSettings,
    wrapper: str,
    wrapper_kwargs: dict[str, Any] | None,
    env_options: dict[str, Any],
    eval_envs: dict[str, Any],
    headline: str,
) -> tuple[Any, int, float, MultiEnvEvalCallback | None, GameScoreCallback]:
    """Build (or resume) the model and learn; returns model, steps trained now and their seconds."""
    train_env = make_env(args.env, args.n_envs, seed=args.seed, vec_env=args.vec_env, backend=speed.backend, **env_options)
    if args.resume:
        model = load_ppo(run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT, env=train_env, device=args.device)
        model.tensorboard_log = str(run_dir)
    else:
        model = build_ppo(args, train_env, run_dir, speed.policy_kwargs)
    steps_before = int(model.num_timesteps)
    remaining = args.timesteps - steps_before
    if remaining <= 0:
        raise RLBreakoutError(
            f"{run_dir} already has {steps_before} steps >= --timesteps {args.timesteps}; "
            f"pass a larger --timesteps to extend it."
        )
    table = {**{k: v for k, v in vars(args).items() if k not in ("logdir", "resume", "load")},
             "learning_rate_schedule": repr(model.learning_rate), "clip_range_schedule": repr(model.clip_range),
             "wrapper": wrapper, "wrapper_kwargs": wrapper_kwargs, "backend": speed.backend, "precision": speed.precision}
    score_callback = GameScoreCallback()
    checkpoint = StepCheckpointCallback(args.checkpoint_freq, run_dir / CHECKPOINT_DIR)
    callbacks: list[Any] = [score_callback, HyperparamTableCallback(markdown_table(table)), checkpoint]
    evaluator = None
    if args.eval_freq > 0:
        evaluator = MultiEnvEvalCallback(
            eval_envs, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes,
            best_model_env=headline, best_model_save_path=run_dir,
        )
        callbacks.append(evaluator)

    started = time.perf_counter()
    try:
        model.learn(
            total_timesteps=remaining,
            callback=callbacks,
            tb_log_name=TENSORBOARD_RUN_NAME,
            reset_num_timesteps=not args.resume,
            progress_bar=sys.stderr.isatty(),
        )
    except KeyboardInterrupt:
        path = checkpoint.save()
        print(f"\ninterrupted at {model.num_timesteps} steps; checkpoint {path}. "
              f"Continue with: --resume {run_dir}", file=sys.stderr, flush=True)
        raise
    finally:
        train_env.close()
    # SB3 dumps the train/* values of an update at the start of the next iteration; the
    # last update's values would be lost without this final dump.
    model.logger.dump(model.num_timesteps)
    train_seconds = time.perf_counter() - started - (evaluator.eval_seconds if evaluator else 0.0)
    checkpoint.save()
    return model, int(model.num_timesteps) - steps_before, train_seconds, evaluator, score_callback
