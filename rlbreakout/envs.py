"""The env factory: one place that builds every Atari environment of the tutorial.

Why one factory: the original tutorial built its training env with
``make_atari_env`` and its eval env by hand, and the two differed (channel order,
frameskip), which silently broke evaluation. Here train and eval envs come from
the same function, always channel-first, so they always match.

Equalised settings, so the three Breakout ids can be compared fairly (chapter 4):

* ``full_action_space=False`` everywhere (Breakout's 4 actions);
* frameskip is applied in exactly one place: by the wrapper for ``NoFrameskip``
  ids, by the emulator for ids that already skip (``Breakout-v4`` skips 2-4 frames at
  random, ``ALE/Breakout-v5`` skips 4). Never AtariWrapper's 4 on top of v5's 4,
  which would be 16 frames per action;
* sticky actions (``repeat_action_probability=0.25``) only where the id implies
  them (v5) or where the caller asks through ``env_kwargs``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.atari_wrappers import (
    ClipRewardEnv,
    EpisodicLifeEnv,
    FireResetEnv,
    MaxAndSkipEnv,
    NoopResetEnv,
    WarpFrame,
)
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecTransposeImage,
)

from rlbreakout.errors import ConfigError, RLBreakoutError

#: The three Breakout ids the tutorial compares; any other ALE game id works too.
BREAKOUT_ENV_IDS: tuple[str, ...] = ("BreakoutNoFrameskip-v4", "Breakout-v4", "ALE/Breakout-v5")
#: The observation pipelines: SB3's AtariWrapper (84x84 grey), chapter 3's aimbot view, or raw RGB.
WRAPPER_CHOICES: tuple[str, ...] = ("atari", "aimbot", "none")
VEC_ENV_CHOICES: tuple[str, ...] = ("dummy", "subproc")
#: ``classic``: gymnasium envs + SB3 wrappers in Python; ``ale_vector``: ale-py's C++ vector env.
BACKEND_CHOICES: tuple[str, ...] = ("classic", "ale_vector")

#: Frames per agent action, applied once (by the wrapper or by the emulator, never both).
DEFAULT_FRAME_SKIP = 4
#: Up to this many no-op actions at reset, so episodes do not all start identically.
DEFAULT_NOOP_MAX = 30
#: Side of the square grey frame of the Nature-DQN preprocessing.
DEFAULT_SCREEN_SIZE = 84
#: Sticky-action probability of the ALE/...-v5 ids (Machado et al., 2018).
V5_STICKY_ACTION_PROBABILITY = 0.25
#: Every game is cut at 108,000 frames (30 minutes of play, the Machado et al. standard), so a
#: policy that stalls (never presses FIRE) cannot make an evaluation run forever.
MAX_FRAMES_PER_GAME = 108_000

#: Keys of ``wrapper_kwargs`` that the factory handles itself for "atari" and "aimbot".
_COMMON_WRAPPER_KEYS = ("noop_max", "frame_skip", "terminal_on_life_loss", "clip_reward")


def register_ale() -> None:
    """Register ale-py's ids with gymnasium (idempotent; needed before ``gym.make("ALE/...")``)."""
    import ale_py

    gym.register_envs(ale_py)


def _is_ale_spec(spec: gym.envs.registration.EnvSpec) -> bool:
    entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
    return "ale_py" in str(entry)


def check_env_id(env_id: str) -> gym.envs.registration.EnvSpec:
    """Return the spec of an ALE ``env_id``, or raise one clear line naming valid choices."""
    register_ale()
    spec = gym.envs.registry.get(env_id)
    if spec is None or not _is_ale_spec(spec):
        ale_ids = [name for name, s in gym.envs.registry.items() if _is_ale_spec(s)]
        close = difflib.get_close_matches(env_id, ale_ids, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown Atari env id {env_id!r}.{hint} Valid Breakout ids: {', '.join(BREAKOUT_ENV_IDS)} "
            f"(any ALE id registered by ale-py works, e.g. ALE/Pong-v5)."
        )
    return spec


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}.")


@dataclass(frozen=True)
class EnvSettings:
    """What an env id does by itself, and what the wrapper must add, after equalising."""

    env_id: str
    #: the emulator's own frameskip: an int, or a (low, high) range for the random skip of -v4 ids
    emulator_frameskip: int | tuple[int, int]
    #: frames the wrapper's MaxAndSkip adds per action (1 = none)
    wrapper_frame_skip: int
    repeat_action_probability: float
    full_action_space: bool
    max_num_frames_per_episode: int = MAX_FRAMES_PER_GAME

    def make_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``gym.make`` that pin the equalised settings."""
        return {
            "frameskip": self.emulator_frameskip,
            "repeat_action_probability": self.repeat_action_probability,
            "full_action_space": self.full_action_space,
            "max_num_frames_per_episode": self.max_num_frames_per_episode,
        }


def env_settings(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    wrapper_frame_skip: int | None = None,
) -> EnvSettings:
    """Work out where frameskip and sticky actions apply for ``env_id``.

    :param env_kwargs: overrides for ``gym.make`` (e.g. ``repeat_action_probability``)
    :param wrapper_frame_skip: frames per action for the wrapper; default 4 when the
        emulator does not skip, else 1. Asking for both raises ConfigError.
    """
    spec = check_env_id(env_id)
    merged = {**spec.kwargs, **(env_kwargs or {})}
    emulator_frameskip = merged.get("frameskip", 1)
    if isinstance(emulator_frameskip, list):
        emulator_frameskip = tuple(emulator_frameskip)
    emulator_skips = emulator_frameskip != 1
    if wrapper_frame_skip is None:
        wrapper_frame_skip = 1 if emulator_skips else DEFAULT_FRAME_SKIP
    if wrapper_frame_skip < 1:
        raise ConfigError(f"frame_skip must be >= 1, got {wrapper_frame_skip}.")
    if emulator_skips and wrapper_frame_skip > 1:
        raise ConfigError(
            f"{env_id} already skips {emulator_frameskip} frames per action; a wrapper frame_skip of "
            f"{wrapper_frame_skip} on top would skip twice. Use a NoFrameskip id or frame_skip=1."
        )
    return EnvSettings(
        env_id=env_id,
        emulator_frameskip=emulator_frameskip,
        wrapper_frame_skip=int(wrapper_frame_skip),
        repeat_action_probability=float(merged.get("repeat_action_probability", 0.0)),
        full_action_space=bool(merged.get("full_action_space", False)),
        max_num_frames_per_episode=int(merged.get("max_num_frames_per_episode", MAX_FRAMES_PER_GAME)),
    )


def _make_gym_env(env_id: str, settings: EnvSettings, env_kwargs: dict[str, Any], render_mode: str | None) -> gym.Env:
    extra = {k: v for k, v in env_kwargs.items() if k not in settings.make_kwargs()}
    try:
        return gym.make(env_id, render_mode=render_mode, **settings.make_kwargs(), **extra)
    except TypeError as exc:
        raise ConfigError(f"bad env_kwargs for {env_id}: {exc}. Check the keyword names against ale-py's AtariEnv.") from exc
    except Exception as exc:  # ale-py raises plain errors for ROM problems
        if "rom" in str(exc).lower():
            raise RLBreakoutError(
                f"the ROM for {env_id} could not be loaded ({exc}). ROMs ship inside ale-py >= 0.9: "
                f"run `pip install --upgrade ale-py`."
            ) from exc
        raise


def wrap_atari(
    env: gym.Env,
    *,
    wrapper: str,
    settings: EnvSettings,
    wrapper_kwargs: dict[str, Any] | None = None,
) -> gym.Env:
    """Apply the chosen observation pipeline to a Monitor-wrapped ALE env.

    The order is SB3's AtariWrapper order: NoopReset, MaxAndSkip, EpisodicLife,
    FireReset, the frame transform (84x84 grey, or the aimbot view), ClipReward.
    The Monitor sits *below* these wrappers, so the ``episode`` info it writes is
    the unclipped score of a whole game (all lives).
    """
    _check_choice("wrapper", wrapper, WRAPPER_CHOICES)
    options = dict(wrapper_kwargs or {})
    if wrapper == "none":
        if options:
            raise ConfigError(f"wrapper 'none' takes no wrapper_kwargs, got {sorted(options)}.")
        return env
    noop_max = int(options.pop("noop_max", DEFAULT_NOOP_MAX))
    options.pop("frame_skip", None)  # already resolved into settings
    terminal_on_life_loss = bool(options.pop("terminal_on_life_loss", True))
    clip_reward = bool(options.pop("clip_reward", True))

    if noop_max > 0:
        env = NoopResetEnv(env, noop_max=noop_max)
    if settings.wrapper_frame_skip > 1:
        env = MaxAndSkipEnv(env, skip=settings.wrapper_frame_skip)
    if terminal_on_life_loss:
        env = EpisodicLifeEnv(env)
    if "FIRE" in env.unwrapped.get_action_meanings():
        env = FireResetEnv(env)
    if wrapper == "atari":
        screen_size = int(options.pop("screen_size", DEFAULT_SCREEN_SIZE))
        if options:
            raise ConfigError(f"unknown wrapper_kwargs for 'atari': {sorted(options)}; "
                              f"valid: {', '.join(_COMMON_WRAPPER_KEYS + ('screen_size',))}.")
        env = WarpFrame(env, width=screen_size, height=screen_size)
    else:
        from rlbreakout.aimbot import BreakoutObservationWrapper

        try:
            env = BreakoutObservationWrapper(env, **options)
        except TypeError as exc:
            raise ConfigError(f"bad aimbot wrapper option: {exc}.") from exc
    if clip_reward:
        env = ClipRewardEnv(env)
    return env


def make_env_thunk(
    env_id: str,
    *,
    rank: int = 0,
    seed: int = 0,
    wrapper: str = "atari",
    env_kwargs: dict[str, Any] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    render_mode: str | None = "rgb_array",
) -> Callable[[], gym.Env]:
    """A picklable thunk building one wrapped env (for DummyVecEnv and SubprocVecEnv).

    The action space is seeded with ``seed + rank``; the env itself is seeded at the
    vec env's first reset (``VecEnv.seed``), as SB3's ``make_vec_env`` does.
    """
    wrapper_kwargs = dict(wrapper_kwargs or {})
    settings = env_settings(env_id, env_kwargs, wrapper_kwargs.get("frame_skip"))
    env_kwargs = dict(env_kwargs or {})

    def _init() -> gym.Env:
        register_ale()  # needed again inside a SubprocVecEnv worker
        env = _make_gym_env(env_id, settings, env_kwargs, render_mode)
        env.action_space.seed(seed + rank)
        env = Monitor(env)
        return wrap_atari(env, wrapper=wrapper, settings=settings, wrapper_kwargs=wrapper_kwargs)

    return _init


def make_env(
    env_id: str,
    n_envs: int = 8,
    *,
    seed: int = 0,
    frame_stack: int = 4,
    wrapper: str = "atari",
    vec_env: str = "dummy",
    env_kwargs: dict[str, Any] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    backend: str = "classic",
) -> VecEnv:
    """Build ``n_envs`` copies of ``env_id`` as an SB3 VecEnv with channel-first observations.

    :param env_id: any ALE id, e.g. ``BreakoutNoFrameskip-v4``, ``Breakout-v4``, ``ALE/Breakout-v5``
    :param n_envs: number of envs stepped together
    :param seed: env ``i`` is seeded with ``seed + i``
    :param frame_stack: frames stacked along the channel axis (1 = no stacking)
    :param wrapper: ``atari`` (SB3's AtariWrapper), ``aimbot`` (chapter 3) or ``none`` (raw RGB)
    :param vec_env: ``dummy`` (one process) or ``subproc`` (one process per env)
    :param env_kwargs: extra ``gym.make`` arguments, e.g. ``{"repeat_action_probability": 0.25}``
    :param wrapper_kwargs: wrapper options (``noop_max``, ``frame_skip``, ``terminal_on_life_loss``,
        ``clip_reward``, and the aimbot wrapper's own options)
    :param backend: ``classic`` or ``ale_vector`` (ale-py's C++ vector env, chapter 0.2)
    :return: a VecEnv whose observations are uint8 ``(n_envs, channels * frame_stack, height, width)``
    """
    _check_choice("wrapper", wrapper, WRAPPER_CHOICES)
    _check_choice("vec_env", vec_env, VEC_ENV_CHOICES)
    _check_choice("backend", backend, BACKEND_CHOICES)
    if int(n_envs) < 1:
        raise ConfigError(f"n_envs must be >= 1, got {n_envs}.")
    if int(frame_stack) < 1:
        raise ConfigError(f"frame_stack must be >= 1, got {frame_stack}.")
    if backend == "ale_vector":
        if wrapper != "atari" or vec_env != "dummy":
            raise ConfigError("backend 'ale_vector' does its own preprocessing: use wrapper='atari' and vec_env='dummy'.")
        from rlbreakout.ale_vector import make_ale_vector_env

        return make_ale_vector_env(
            env_id, n_envs, seed=seed, frame_stack=frame_stack, env_kwargs=env_kwargs, wrapper_kwargs=wrapper_kwargs
        )

    thunks = [
        make_env_thunk(env_id, rank=rank, seed=seed, wrapper=wrapper, env_kwargs=env_kwargs, wrapper_kwargs=wrapper_kwargs)
        for rank in range(int(n_envs))
    ]
    venv: VecEnv = SubprocVecEnv(thunks) if vec_env == "subproc" else DummyVecEnv(thunks)
    venv.seed(seed)
    if frame_stack > 1:
        venv = VecFrameStack(venv, n_stack=int(frame_stack), channels_order="last")
    return VecTransposeImage(venv)


def is_channel_first_uint8(venv: VecEnv) -> bool:
    """True when the VecEnv's observation space is a uint8 image with channels first."""
    space = venv.observation_space
    return (
        isinstance(space, gym.spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[0] < space.shape[1]
    )
