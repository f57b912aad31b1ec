"""The stable-retro env factory: Sonic and Airstriker preprocessed so SB3 trains on them as on Atari.

Chapter 5 leaves the Atari 2600 for the Sega Genesis. The pipeline follows the
OpenAI Retro Contest baselines (``retro-baselines/agents/sonic_util.py``), rebuilt
on stable-retro (the maintained gym-retro for gymnasium):

1. :class:`Discretizer`: 12 Genesis buttons are 4096 combinations; the agent picks one
   of a handful of useful combos instead (for Sonic the baselines' seven);
2. :class:`StochasticFrameSkip`: one action per 4 frames, optionally "sticky" (the
   contest's 25 % chance that the previous action lasts one more frame);
3. ``TimeLimit`` (4,500 agent steps, the contest's episode cap) and ``Monitor``, which
   records the *raw* game score, below every reward change;
4. ``AllowBacktracking``: reward only new maximum progress, so walking back to
   get around an obstacle costs nothing (rlbreakout/retro/rewards.py);
5. ``RewardScaler``: rewards of hundreds make value losses explode, so scale them;
6. 84x84 grey frames (SB3's ``WarpFrame``), then frame stacking and channel-first
   images in the VecEnv, exactly as :func:`rlbreakout.envs.make_env` does for Atari.

Two stable-retro facts shape the API. Only one emulator can live in a process, so
several envs need one subprocess per env (``vec_env="subproc"``); those workers start
without re-running the calling script (:func:`workers_without_script`), so a chapter
script's module-level cells need no ``__main__`` guard. And the Sonic ROMs
are commercial: they are not shipped, and a missing ROM is one clear line naming
``python -m stable_retro.import DIR``. Airstriker-Genesis, a free homebrew shooter whose
ROM ships with stable-retro, is what the tests and the chapter's measured runs use.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from stable_baselines3.common.atari_wrappers import WarpFrame
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack, VecTransposeImage

from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.processes import workers_without_script
from rlbreakout.retro.rewards import AllowBacktracking, RewardScale, RewardScaler

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
        raise ConfigError(f"--game: unknown retro game {game!r}.{hint} `stable_retro.data.list_games()` lists all "
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
        raise ConfigError(f"--state: unknown state {state!r} for {game}; choose one of: {', '.join(states)}.")


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
    if vec_env == "subproc":
        with workers_without_script():
            venv: VecEnv = SubprocVecEnv(thunks)
    else:
        venv = DummyVecEnv(thunks)
    venv.seed(seed)
    if frame_stack > 1:
        venv = VecFrameStack(venv, n_stack=frame_stack, channels_order="last")
    return VecTransposeImage(venv)


