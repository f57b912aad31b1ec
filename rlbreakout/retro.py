"""Retro games (Sonic, Airstriker) on stable-retro, preprocessed so SB3 trains on them as on Atari.

Chapter 5 leaves the Atari 2600 for the Sega Genesis. The pipeline follows the
OpenAI Retro Contest baselines (``retro-baselines/agents/sonic_util.py``), rebuilt
on stable-retro (the maintained gym-retro for gymnasium):

1. :class:`Discretizer`: 12 Genesis buttons are 4096 combinations; the agent picks one
   of a handful of useful combos instead (for Sonic the baselines' seven);
2. :class:`StochasticFrameSkip`: one action per 4 frames, optionally "sticky" (the
   contest's 25 % chance that the previous action lasts one more frame);
3. ``TimeLimit`` (4,500 agent steps, the contest's episode cap) and ``Monitor``, which
   records the *raw* game score, below every reward change;
4. :class:`AllowBacktracking`: reward only new maximum progress, so walking back to
   get around an obstacle costs nothing;
5. :class:`RewardScaler`: rewards of hundreds make value losses explode, so scale them;
6. 84x84 grey frames (SB3's ``WarpFrame``), then frame stacking and channel-first
   images in the VecEnv, exactly as :func:`rlbreakout.envs.make_env` does for Atari.

Two stable-retro facts shape the API. Only one emulator can live in a process, so
vectorised envs use one subprocess per env (``vec_env="subproc"``). And the Sonic ROMs
are commercial: they are not shipped, and a missing ROM is one clear line naming
``python -m stable_retro.import DIR``. Airstriker-Genesis, a free homebrew shooter whose
ROM ships with stable-retro, is what the tests and the chapter's measured runs use.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from stable_baselines3.common.atari_wrappers import WarpFrame
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack, VecTransposeImage

from rlbreakout.errors import ConfigError, RLBreakoutError

#: The chapter's default game: its ROM ships with stable-retro, so everything runs out of the box.
DEFAULT_GAME = "Airstriker-Genesis-v0"
#: The game of the story; needs your own ROM (see :data:`ROM_IMPORT_COMMAND`).
SONIC_GAME = "SonicTheHedgehog-Genesis-v0"
#: stable-retro's ROM importer: it scans a folder and copies every ROM it recognises by hash.
ROM_IMPORT_COMMAND = "python -m stable_retro.import DIR"
#: stable-retro >= 1.0 names games with a version suffix; gym-retro's old names lack it.
GAME_VERSION_SUFFIX = "-v0"

#: The Retro Contest baselines' Sonic actions (retro-baselines ``SonicDiscretizer``).
SONIC_COMBOS: tuple[tuple[str, ...], ...] = (
    ("LEFT",), ("RIGHT",), ("LEFT", "DOWN"), ("RIGHT", "DOWN"), ("DOWN",), ("DOWN", "B"), ("B",),
)
#: Airstriker is a vertical shooter: the ship moves left/right and B fires. A shot fires on the
#: *press* of B, so holding B does nothing after the first shot: "no button" must be an action too.
AIRSTRIKER_COMBOS: tuple[tuple[str, ...], ...] = (
    (), ("B",), ("LEFT",), ("RIGHT",), ("LEFT", "B"), ("RIGHT", "B"),
)
#: Default combos by game-name prefix; other games get one action per button plus "no button".
GAME_COMBOS: dict[str, tuple[tuple[str, ...], ...]] = {"Sonic": SONIC_COMBOS, "Airstriker": AIRSTRIKER_COMBOS}

#: Frames per agent action (the contest's 4, as on Atari).
DEFAULT_FRAME_SKIP = 4
#: The contest's sticky-action probability; 0 makes the emulator fully deterministic.
CONTEST_STICKY_PROBABILITY = 0.25
#: The contest cut every episode at 4,500 agent steps (5 minutes of play at 15 actions a second).
CONTEST_MAX_EPISODE_STEPS = 4_500
#: Side of the square grey frame, as for Atari.
DEFAULT_SCREEN_SIZE = 84
#: The retro-baselines RewardScaler factor for PPO.
BASELINE_REWARD_SCALE = 0.01
#: Scenario file with the contest's reward (horizontal progress plus a level-end bonus), used when a game has one.
CONTEST_SCENARIO = "contest"
VEC_ENV_CHOICES: tuple[str, ...] = ("subproc", "dummy")


# %% Game names and ROMs

def _retro() -> Any:
    """Import stable-retro, or say how to install it (it is the optional ``retro`` extra)."""
    try:
        import stable_retro
    except ImportError as exc:  # pragma: no cover - CI installs the extra
        raise RLBreakoutError(
            "stable-retro is not installed; run `pip install -e '.[retro]'` (it also brings sb3-contrib)."
        ) from exc
    return stable_retro


def resolve_game(game: str) -> str:
    """Return stable-retro's name for ``game``, checking that it exists and that its ROM is imported.

    ``Airstriker-Genesis`` (the gym-retro name) resolves to ``Airstriker-Genesis-v0``.
    The check runs in the main process, before any subprocess starts an emulator, so the
    learner sees one line instead of a crashed worker.
    """
    retro = _retro()
    games = retro.data.list_games()
    name = game if game in games else f"{game}{GAME_VERSION_SUFFIX}"
    if name not in games:
        close = difflib.get_close_matches(game, games, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown retro game {game!r}.{hint} `stable_retro.data.list_games()` lists all "
                          f"{len(games)}; {DEFAULT_GAME} runs without a ROM import.")
    try:
        retro.data.get_romfile_path(name)
    except FileNotFoundError as exc:
        raise RLBreakoutError(
            f"the ROM of {name} is not imported (commercial ROMs do not ship with stable-retro): "
            f"run `{ROM_IMPORT_COMMAND}` with DIR the folder holding your ROM file, or use --game {DEFAULT_GAME}."
        ) from exc
    return name


def check_state(game: str, state: str | None) -> None:
    """Raise one line listing the valid save states when ``state`` is not one of ``game``'s."""
    if state is None:
        return
    states = _retro().data.list_states(game)
    if state not in states:
        raise ConfigError(f"unknown state {state!r} for {game}; choose one of: {', '.join(states)}.")


def default_combos(game: str, buttons: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The button combos for ``game``: Sonic's or Airstriker's, else one per button plus "no button"."""
    for prefix, combos in GAME_COMBOS.items():
        if game.startswith(prefix):
            return combos
    return ((),) + tuple((button,) for button in buttons)


def default_scenario(game: str) -> str | None:
    """``contest`` when the game ships the Retro Contest scenario (the Sonic games), else the game's default."""
    if _retro().data.get_file_path(game, f"{CONTEST_SCENARIO}.json"):
        return CONTEST_SCENARIO
    return None


# %% Wrappers

class Discretizer(gym.ActionWrapper):
    """Turn the MultiBinary button space into ``Discrete(len(combos))``, one action per button combo.

    :param combos: each combo is a list of button names, e.g. ``[["LEFT"], ["RIGHT", "B"], []]``;
        every name must be one of the game's buttons (``env.unwrapped.buttons``)
    """

    def __init__(self, env: gym.Env, combos: Sequence[Sequence[str]]) -> None:
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.MultiBinary):
            raise ConfigError("Discretizer needs a MultiBinary button space; make the env with stable-retro's "
                              "default use_restricted_actions=FILTERED.")
        if len(combos) == 0:
            raise ConfigError("Discretizer needs at least one button combo.")
        self.buttons: list[str] = list(env.unwrapped.buttons)
        unknown = sorted({b for combo in combos for b in combo if b not in self.buttons})
        if unknown:
            raise ConfigError(f"unknown button(s) {unknown} for {env.unwrapped.gamename}; "
                              f"its buttons are: {', '.join(b for b in self.buttons if b)}.")
        self.combos: tuple[tuple[str, ...], ...] = tuple(tuple(combo) for combo in combos)
        self._arrays = [self._to_array(combo) for combo in self.combos]
        self.action_space = gym.spaces.Discrete(len(self.combos))

    def _to_array(self, combo: Sequence[str]) -> np.ndarray:
        pressed = np.zeros(self.env.action_space.n, dtype=np.int8)
        for button in combo:
            pressed[self.buttons.index(button)] = 1
        return pressed

    def action(self, action: int) -> np.ndarray:
        """The button array of combo number ``action`` (a copy, so callers cannot change the table)."""
        return self._arrays[int(action)].copy()

    def action_meanings(self) -> list[str]:
        """``["LEFT", "RIGHT", "LEFT+DOWN", ...]``; the empty combo reads ``NOOP``."""
        return ["+".join(combo) or "NOOP" for combo in self.combos]


class StochasticFrameSkip(gym.Wrapper):
    """Repeat each action for ``n`` frames; with probability ``stickprob`` the previous action lasts one frame more.

    The Retro Contest's frame skip (OpenAI baselines' ``retro_wrappers.StochasticFrameSkip``).
    With ``stickprob=0`` the emulator is deterministic: the same actions always give the same
    game, which is what lets JERK replay a memorised run (chapter 4's NoFrameskip-v4 lesson).
    The random draws use the env's ``np_random``, seeded by ``reset(seed=...)``.
    """

    def __init__(self, env: gym.Env, n: int = DEFAULT_FRAME_SKIP, stickprob: float = 0.0) -> None:
        super().__init__(env)
        if n < 1:
            raise ConfigError(f"frame_skip must be >= 1, got {n}.")
        if not 0.0 <= stickprob < 1.0:
            raise ConfigError(f"sticky-action probability must be in [0, 1), got {stickprob}.")
        self.n = n
        self.stickprob = stickprob
        self._current: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._current = None
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        total = 0.0
        for frame in range(self.n):
            if self._current is None or frame == 1:
                self._current = action  # first step after reset, or the second frame: the new action is on
            elif frame == 0 and self.np_random.random() >= self.stickprob:
                self._current = action
            obs, reward, terminated, truncated, info = self.env.step(self._current)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class AllowBacktracking(gym.Wrapper):
    """Reward only progress beyond the best so far: ``max(0, cumulative - best_cumulative)``.

    Sonic's reward is horizontal progress, so going left to take a run-up is punished.
    With this wrapper, backing up costs nothing and gaining the lost ground back pays
    nothing; only new ground pays (retro-baselines ``AllowBacktracking``).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._cumulative = 0.0
        self._best = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._cumulative = 0.0
        self._best = 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._cumulative += float(reward)
        new_ground = max(0.0, self._cumulative - self._best)
        self._best = max(self._best, self._cumulative)
        return obs, new_ground, terminated, truncated, info


@dataclass(frozen=True)
class LinearScale:
    """``reward * factor`` (the baselines' RewardScaler uses 0.01)."""

    factor: float

    def __call__(self, reward: float) -> float:
        return reward * self.factor

    def __repr__(self) -> str:
        return f"linear({self.factor:g})"


@dataclass(frozen=True)
class PiecewiseScale:
    """A continuous, sign-keeping scale whose slope drops above each breakpoint.

    ``slopes[0]`` applies to ``|reward|`` up to ``breakpoints[0]``, ``slopes[1]`` to the part
    between ``breakpoints[0]`` and ``breakpoints[1]``, and so on. Everyday rewards keep their
    resolution while rare huge ones (a level-end bonus) cannot swamp the value function.
    """

    breakpoints: tuple[float, ...]
    slopes: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.slopes) != len(self.breakpoints) + 1:
            raise ConfigError(f"a piecewise scale needs one slope more than breakpoints, got "
                              f"{len(self.slopes)} slopes and {len(self.breakpoints)} breakpoints.")
        if any(b <= a for a, b in zip((0.0, *self.breakpoints), self.breakpoints)):
            raise ConfigError(f"breakpoints must be positive and increasing, got {self.breakpoints}.")

    def __call__(self, reward: float) -> float:
        magnitude, scaled, lower = abs(reward), 0.0, 0.0
        for upper, slope in zip((*self.breakpoints, math.inf), self.slopes):
            scaled += slope * (min(magnitude, upper) - lower)
            if magnitude <= upper:
                break
            lower = upper
        return math.copysign(scaled, reward)

    def __repr__(self) -> str:
        return f"piecewise({list(self.breakpoints)}, {list(self.slopes)})"


RewardScale = Callable[[float], float]
#: ``--reward-scale piecewise``: 0.01 per point up to 100 points, 0.001 per point beyond, so a
#: 1,000-point level-end bonus is worth 1.9 instead of 10 while everyday progress keeps the 0.01.
PIECEWISE_SCALE = PiecewiseScale(breakpoints=(100.0,), slopes=(0.01, 0.001))
REWARD_SCALE_CHOICES_HINT = "none, piecewise, or a number such as 0.01"


def parse_reward_scale(text: str) -> RewardScale | None:
    """``"none"`` -> None, ``"piecewise"`` -> :data:`PIECEWISE_SCALE`, ``"0.01"`` -> ``LinearScale(0.01)``."""
    if text == "none":
        return None
    if text == "piecewise":
        return PIECEWISE_SCALE
    try:
        factor = float(text)
    except ValueError:
        raise ConfigError(f"unknown reward scale {text!r}; use {REWARD_SCALE_CHOICES_HINT}.") from None
    if not factor > 0:
        raise ConfigError(f"a reward scale factor must be > 0, got {text}; use 'none' to switch scaling off.")
    return LinearScale(factor)


class RewardScaler(gym.RewardWrapper):
    """Apply a reward scale (a callable such as :class:`LinearScale` or :class:`PiecewiseScale`)."""

    def __init__(self, env: gym.Env, scale: RewardScale) -> None:
        super().__init__(env)
        self.scale = scale

    def reward(self, reward: SupportsFloat) -> float:
        return float(self.scale(float(reward)))


# %% Env factory

def make_retro_gym_env(
    game: str,
    state: str | None = None,
    *,
    combos: Sequence[Sequence[str]] | None = None,
    frame_skip: int = DEFAULT_FRAME_SKIP,
    sticky_prob: float = 0.0,
    max_episode_steps: int | None = CONTEST_MAX_EPISODE_STEPS,
    backtracking: bool = False,
    reward_scale: RewardScale | None = None,
    warp: bool = True,
    screen_size: int = DEFAULT_SCREEN_SIZE,
    scenario: str | None = None,
    render_mode: str = "rgb_array",
) -> gym.Env:
    """One wrapped retro env (one emulator: at most one per process).

    :param game: a stable-retro game name (``-v0`` may be left out)
    :param state: a save state, e.g. ``GreenHillZone.Act1``; None = the game's default
    :param combos: the discrete actions as button-name lists; None = :func:`default_combos`
    :param sticky_prob: chance that an action starts one frame late (0 = deterministic)
    :param max_episode_steps: episode cap in agent steps (None = none)
    :param backtracking: wrap in :class:`AllowBacktracking`
    :param reward_scale: a scale for the training reward (the Monitor score stays raw)
    :param warp: 84x84 grey observations; False keeps the RGB screen (JERK does not look)
    :param scenario: reward/done definition; None = ``contest`` if the game has it, else its default
    """
    retro = _retro()
    name = resolve_game(game)
    check_state(name, state)
    retro_state = retro.State.DEFAULT if state is None else state
    env = retro.make(name, retro_state, scenario=scenario or default_scenario(name), render_mode=render_mode)
    env = Discretizer(env, combos if combos is not None else default_combos(name, env.unwrapped.buttons))
    env = StochasticFrameSkip(env, n=frame_skip, stickprob=sticky_prob)
    if max_episode_steps is not None:
        env = gym.wrappers.TimeLimit(env, max_episode_steps=max_episode_steps)
    env = Monitor(env)  # below the reward wrappers: episode["r"] is the raw game score
    if backtracking:
        env = AllowBacktracking(env)
    if reward_scale is not None:
        env = RewardScaler(env, reward_scale)
    if warp:
        env = WarpFrame(env, width=screen_size, height=screen_size)
    return env


def _make_seeded(seed: int, env_kwargs: dict[str, Any]) -> gym.Env:
    env = make_retro_gym_env(**env_kwargs)
    env.action_space.seed(seed)
    return env


def make_retro_env(
    game: str,
    state: str | None = None,
    *,
    n_envs: int = 1,
    seed: int = 0,
    frame_stack: int = 4,
    vec_env: str = "subproc",
    **env_kwargs: Any,
) -> VecEnv:
    """``n_envs`` retro envs as an SB3 VecEnv with channel-first uint8 frames, like ``make_env`` for Atari.

    :param vec_env: ``subproc`` (one process per env: stable-retro allows one emulator per
        process, so a training env and an eval env can only coexist this way) or ``dummy``
        (one env in this process; for recording and small tests)
    :param env_kwargs: options of :func:`make_retro_gym_env` (``combos``, ``sticky_prob``,
        ``backtracking``, ``reward_scale``, ...)
    :return: a VecEnv whose observations are ``(n_envs, frame_stack, 84, 84)``; env ``i`` is seeded ``seed + i``
    """
    if vec_env not in VEC_ENV_CHOICES:
        raise ConfigError(f"unknown vec_env {vec_env!r}; choose one of: {', '.join(VEC_ENV_CHOICES)}.")
    if n_envs < 1:
        raise ConfigError(f"n_envs must be >= 1, got {n_envs}.")
    if vec_env == "dummy" and n_envs > 1:
        raise ConfigError("stable-retro runs one emulator per process: use vec_env='subproc' for n_envs > 1.")
    if frame_stack < 1:
        raise ConfigError(f"frame_stack must be >= 1, got {frame_stack}.")
    if not env_kwargs.get("warp", True):
        raise ConfigError("make_retro_env stacks 84x84 frames; use make_retro_gym_env for raw screens.")
    name = resolve_game(game)  # fail here, in one line, rather than inside a worker process
    check_state(name, state)
    kwargs = {**env_kwargs, "game": name, "state": state}
    thunks = [functools.partial(_make_seeded, seed + rank, kwargs) for rank in range(n_envs)]
    venv: VecEnv = SubprocVecEnv(thunks) if vec_env == "subproc" else DummyVecEnv(thunks)
    venv.seed(seed)
    if frame_stack > 1:
        venv = VecFrameStack(venv, n_stack=frame_stack, channels_order="last")
    return VecTransposeImage(venv)


# %% Command line

def add_retro_arguments(
    parser: argparse.ArgumentParser,
    *,
    sticky: float = CONTEST_STICKY_PROBABILITY,
    reward_scale: str | None = str(BASELINE_REWARD_SCALE),
) -> argparse.ArgumentParser:
    """Add ``--game`` (``--env`` stays as its alias), ``--state``, ``--sticky`` and, unless
    ``reward_scale`` is None, ``--reward-scale`` and ``--backtracking`` to a :func:`common_parser`."""
    env_action = parser._option_string_actions["--env"]  # common_parser's flag becomes an alias of --game
    env_action.default = DEFAULT_GAME
    env_action.help = "alias of --game"
    parser.add_argument("--game", dest="env", default=DEFAULT_GAME,
                        help=f"stable-retro game; Sonic: {SONIC_GAME} (import its ROM first)")
    parser.add_argument("--state", default=None, help="save state (level) to start from; default: the game's")
    parser.add_argument("--sticky", type=float, default=sticky,
                        help="sticky-action probability (contest: 0.25; 0 = deterministic emulator)")
    parser.add_argument("--max-episode-steps", type=int, default=CONTEST_MAX_EPISODE_STEPS,
                        help="agent steps after which a game is cut (the contest's 4,500)")
    if reward_scale is not None:
        parser.add_argument("--reward-scale", default=reward_scale, help=f"training reward scale: {REWARD_SCALE_CHOICES_HINT}")
        parser.add_argument("--backtracking", action=argparse.BooleanOptionalAction, default=True,
                            help="reward only new maximum progress (AllowBacktracking)")
    return parser


def env_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The :func:`make_retro_env` options that the retro flags set."""
    kwargs: dict[str, Any] = {"sticky_prob": args.sticky, "max_episode_steps": args.max_episode_steps}
    if hasattr(args, "reward_scale"):
        kwargs["reward_scale"] = parse_reward_scale(args.reward_scale)
        kwargs["backtracking"] = args.backtracking
    return kwargs


# %% Watching a policy

def record_retro_game(
    policy: Any,
    game: str,
    state: str | None = None,
    *,
    seed: int = 0,
    frame_stack: int = 4,
    max_steps: int = CONTEST_MAX_EPISODE_STEPS,
    deterministic: bool = True,
    **env_kwargs: Any,
) -> Any:
    """Play one game with ``policy`` (an SB3 model or a callable) and keep the real screens.

    Runs in this process (``vec_env="dummy"``), so no other emulator may be open here.
    :return: a :class:`rlbreakout.render.Recording` holding one game
    """
    from rlbreakout.render import Recording, policy_actions

    venv = make_retro_env(game, state, n_envs=1, seed=seed, frame_stack=frame_stack, vec_env="dummy", **env_kwargs)
    recording = Recording(frames=[[]], scores=[0.0], lengths=[0], finished=[False])
    try:
        observations = venv.reset()
        for _ in range(max_steps):
            recording.frames[0].append(np.asarray(venv.get_images()[0], dtype=np.uint8))
            observations, _, _, infos = venv.step(policy_actions(policy, observations, deterministic))
            if "episode" in infos[0]:
                recording.scores[0] = float(infos[0]["episode"]["r"])
                recording.lengths[0] = int(infos[0]["episode"]["l"])
                recording.finished[0] = True
                break
        else:
            partial = venv.get_attr("rewards", [0])[0]  # Monitor's rewards of the unfinished game
            recording.scores[0], recording.lengths[0] = float(np.sum(partial)), len(partial)
    finally:
        venv.close()
    return recording


# %% Chapter 5 training runs (5.2 PPO, 5.3 DQN family): evaluation, freezing, replay, summary

#: Real-time gifs: the Genesis draws 60 frames a second and the agent acts every 4th.
GIF_FPS = 15
DEFAULT_EVAL_EPISODES = 3
#: One torch thread: the emulators run in processes of their own, and on the tutorial's 2-core
#: machine one 84x84 convolution took 0.24 ms with 1 thread against 1.5 ms with 2 (measured).
DEFAULT_TORCH_THREADS = 1


def add_run_arguments(parser: argparse.ArgumentParser, *, eval_freq: int) -> argparse.ArgumentParser:
    """Evaluation, freeze-at-best and replay flags shared by 5.2 and 5.3."""
    from rlbreakout.collapse import DEFAULT_COLLAPSE_FRACTION, DEFAULT_PATIENCE

    run = parser.add_argument_group("evaluation, freezing at the best model, replay")
    run.add_argument("--eval-freq", type=int, default=eval_freq, help="env steps between evaluations (0: none)")
    run.add_argument("--eval-episodes", type=int, default=DEFAULT_EVAL_EPISODES, help="whole games per evaluation")
    run.add_argument("--collapse-fraction", type=float, default=DEFAULT_COLLAPSE_FRACTION,
                     help="stop when the eval score is this fraction below the best ... (0: never stop)")
    run.add_argument("--collapse-patience", type=int, default=DEFAULT_PATIENCE,
                     help="... for this many evaluations in a row; the best weights are restored")
    run.add_argument("--gif-max-steps", type=int, default=CONTEST_MAX_EPISODE_STEPS,
                     help="agent steps recorded in the replay gif at most (0: no gif)")
    run.add_argument("--torch-threads", type=int, default=DEFAULT_TORCH_THREADS,
                     help="torch CPU threads (1: the emulators run in their own processes, and results "
                          "do not depend on the machine's load)")
    return parser


def validate_run_args(args: argparse.Namespace) -> None:
    """Check the shared flags before any emulator starts; one line per problem."""
    if args.timesteps <= 0:
        raise ConfigError(f"--timesteps must be positive, got {args.timesteps}.")
    if args.eval_freq < 0 or args.eval_episodes < 1:
        raise ConfigError("--eval-freq must be >= 0 (0: no evaluation) and --eval-episodes >= 1.")
    if not 0.0 <= args.collapse_fraction <= 1.0 or args.collapse_patience < 1:
        raise ConfigError("--collapse-fraction must be in [0, 1] (0: never stop) and --collapse-patience >= 1.")
    if not 0.0 <= args.sticky < 1.0:
        raise ConfigError(f"--sticky must be in [0, 1), got {args.sticky}.")
    if args.max_episode_steps < 1:
        raise ConfigError(f"--max-episode-steps must be >= 1, got {args.max_episode_steps}.")
    if args.torch_threads < 1:
        raise ConfigError(f"--torch-threads must be >= 1, got {args.torch_threads}.")
    parse_reward_scale(args.reward_scale)
    args.env = resolve_game(args.env)
    check_state(args.env, args.state)


def run_label(args: argparse.Namespace) -> str:
    """The run folder's env part, e.g. ``Airstriker-Genesis-v0-scale0.01``: TensorBoard shows it as the run name."""
    return f"{args.env}-scale{args.reward_scale}"


def eval_callbacks(args: argparse.Namespace, eval_env: VecEnv, run_dir: Any) -> tuple[Any, Any]:
    """The periodic evaluation with, chained after it, the freeze-at-best callback (None where off)."""
    from rlbreakout.callbacks import MultiEnvEvalCallback
    from rlbreakout.collapse import FreezeOnCollapseCallback

    if args.eval_freq == 0:
        return None, None
    freeze = None
    if args.collapse_fraction > 0:
        freeze = FreezeOnCollapseCallback(args.collapse_fraction, args.collapse_patience, verbose=1)
    evaluator = MultiEnvEvalCallback({"eval": eval_env}, eval_freq=args.eval_freq, n_eval_episodes=args.eval_episodes,
                                     best_model_save_path=run_dir, callback_after_eval=freeze)
    return evaluator, freeze


def finish_run(
    model: Any,
    args: argparse.Namespace,
    *,
    script: str,
    run_dir: Any,
    eval_env: VecEnv,
    env_kwargs: dict[str, Any],
    trained_steps: int,
    train_seconds: float,
    wall_started: float,
    evaluator: Any = None,
    freeze: Any = None,
    extra: dict[str, Any] | None = None,
) -> Any:
    """Evaluate whole games, save the model, record a gif and write ``summary.json`` (printed last).

    Scores are the raw game score that the Monitor records below the backtracking and
    reward-scaling wrappers, so runs with and without reward scaling compare directly.
    """
    import time

    from rlbreakout.evaluation import evaluate_games
    from rlbreakout.render import write_gif
    from rlbreakout.runs import score_stats, script_name, write_summary
    from rlbreakout.training import FINAL_MODEL_FILE, REPLAY_GIF

    scores, lengths = evaluate_games(model, eval_env, args.eval_episodes)
    eval_env.close()
    model_path = run_dir / FINAL_MODEL_FILE
    model.save(model_path)
    gif_path = None
    if args.gif_max_steps > 0:
        recording = record_retro_game(model, args.env, args.state, seed=args.seed, max_steps=args.gif_max_steps,
                                      deterministic=False, **env_kwargs)
        gif_path = write_gif(recording.frames[0], run_dir / REPLAY_GIF, fps=GIF_FPS)
    stats = score_stats(scores)
    summary = {
        "script": script_name(script),
        "env_id": args.env,
        "state": args.state,
        "timesteps": int(model.num_timesteps),
        "seed": args.seed,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.perf_counter() - wall_started, 2),
        "steps_per_second": round(trained_steps / train_seconds, 2) if train_seconds > 0 else 0.0,
        **stats,
        "scores": scores,
        "eval_lengths": lengths,
        "reward_scale": args.reward_scale,
        "sticky": args.sticky,
        "backtracking": args.backtracking,
        "eval_history": [{"step": step, **results["eval"]} for step, results in getattr(evaluator, "history", [])],
        "best_eval_score": None if freeze is None else freeze.best_score,
        "frozen_at_eval": None if freeze is None else freeze.stopped_at_eval,
        "model_path": str(model_path),
        "gif_path": None if gif_path is None else str(gif_path),
        **(extra or {}),
    }
    print(f"final evaluation: mean {stats['mean_reward']:.1f}, median {stats['median_reward']:.1f} over "
          f"{stats['n_games']} games; {summary['steps_per_second']} steps/s; model {model_path}", flush=True)
    return write_summary(run_dir, summary)
