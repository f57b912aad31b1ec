"""The env factory: one place that builds every Atari environment of the tutorial.

Why one factory: the original tutorial built its training env with
``make_atari_env`` and its eval env by hand, and the two differed (channel order,
frameskip), which silently broke evaluation. Here train and eval envs come from
the same function, always channel-first, so they always match.

The ids, choices and equalised settings (where frameskip and sticky actions apply)
live in :mod:`rlbreakout.env_ids`; this module builds the envs from them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
from stable_baselines3.common.atari_wrappers import (
    ClipRewardEnv,
    EpisodicLifeEnv,
    FireResetEnv,
    MaxAndSkipEnv,
    NoopResetEnv,
    WarpFrame,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecFrameStack,
    VecTransposeImage,
)

from rlbreakout.aimbot import BreakoutObservationWrapper
from rlbreakout.ale_vector import make_ale_vector_env
from rlbreakout.env_ids import (
    BACKEND_CHOICES,
    DEFAULT_ALE_THREADS,
    DEFAULT_NOOP_MAX,
    DEFAULT_SCREEN_SIZE,
    VEC_ENV_CHOICES,
    WRAPPER_CHOICES,
    EnvSettings,
    env_settings,
    register_ale,
)
from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.processes import workers_without_script

#: Keys of ``wrapper_kwargs`` that the factory handles itself for "atari" and "aimbot".
_COMMON_WRAPPER_KEYS = ("noop_max", "frame_skip", "terminal_on_life_loss", "clip_reward")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}.")


def _make_registered_env(env_id: str, settings: EnvSettings, env_kwargs: dict[str, Any],
                         render_mode: str | None) -> gym.Env:
    """:func:`_make_gym_env` after registering ale-py's envs (needed again in a SubprocVecEnv worker)."""
    register_ale()
    return _make_gym_env(env_id, settings, env_kwargs, render_mode)


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
    ale_threads: int = DEFAULT_ALE_THREADS,
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
    :param ale_threads: worker threads of the ``ale_vector`` backend (the classic one ignores it)
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
        if wrapper not in ("atari", "aimbot") or vec_env != "dummy":
            raise ConfigError("backend 'ale_vector' does its own preprocessing: use wrapper='atari' or 'aimbot', "
                              "and vec_env='dummy'.")
        return make_ale_vector_env(
            env_id, n_envs, seed=seed, frame_stack=frame_stack, env_kwargs=env_kwargs, wrapper_kwargs=wrapper_kwargs,
            num_threads=ale_threads, wrapper=wrapper,
        )

    # SB3's make_vec_env does the rest, as rl-baselines3-zoo does: per env, gym.make, the
    # action space seeded with seed + rank, Monitor (below every wrapper, so it sees whole
    # games with the raw score), our wrapper stack; then the VecEnv class and venv.seed(seed).
    wrapper_kwargs = dict(wrapper_kwargs or {})
    settings = env_settings(env_id, env_kwargs, wrapper_kwargs.get("frame_skip"))
    make = functools.partial(_make_registered_env, env_id, settings, dict(env_kwargs or {}), "rgb_array")
    wrap = functools.partial(wrap_atari, wrapper=wrapper, settings=settings, wrapper_kwargs=wrapper_kwargs)
    vec_env_cls = SubprocVecEnv if vec_env == "subproc" else DummyVecEnv
    with workers_without_script():  # SubprocVecEnv's workers must not re-run a chapter script's cells
        venv = make_vec_env(make, n_envs=int(n_envs), seed=seed, wrapper_class=wrap, vec_env_cls=vec_env_cls)
    if frame_stack > 1:
        venv = VecFrameStack(venv, n_stack=int(frame_stack), channels_order="last")
    return VecTransposeImage(venv)

