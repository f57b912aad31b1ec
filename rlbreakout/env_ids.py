"""Env ids, choices and equalised settings: the bottom of the env stack.

Why a module of its own: the env factory (:mod:`rlbreakout.envs`), the C++ vector
backend (:mod:`rlbreakout.ale_vector`) and the ``--fast`` levers (:mod:`rlbreakout.speed.fast`)
all need to know what an id means and which backend can reproduce it. Kept here, below
all three, imports point one way: ``env_ids`` <- ``ale_vector`` <- ``envs`` <- training.

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
from dataclasses import dataclass
from typing import Any

import ale_py
import gymnasium as gym

from rlbreakout.errors import ConfigError

#: The three Breakout ids the tutorial compares; any other ALE game id works too.
BREAKOUT_ENV_IDS: tuple[str, ...] = ("BreakoutNoFrameskip-v4", "Breakout-v4", "ALE/Breakout-v5")
#: The observation pipelines: SB3's AtariWrapper (84x84 grey), chapter 3's aimbot view, or raw RGB.
WRAPPER_CHOICES: tuple[str, ...] = ("atari", "aimbot", "none")
VEC_ENV_CHOICES: tuple[str, ...] = ("dummy", "subproc")
#: ``classic``: gymnasium envs + SB3 wrappers in Python; ``ale_vector``: ale-py's C++ vector env.
BACKEND_CHOICES: tuple[str, ...] = ("classic", "ale_vector")
#: What each backend is, in the words a flag cell or a start line uses (``--fast (C++ vector envs)``).
BACKEND_LABELS: dict[str, str] = {"classic": "classic envs", "ale_vector": "C++ vector envs"}
#: Every evaluation (final and periodic) plays here, whatever backend trained the model: the
#: classic stack presses FIRE after a lost life, and one eval env keeps scores comparable.
EVAL_BACKEND = "classic"

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
#: Worker threads of the ale_vector backend unless the caller passes a count (``--fast``
#: passes the free cores it measured, see :func:`rlbreakout.speed.threads.configure_threads`).
DEFAULT_ALE_THREADS = 1

#: ``env_kwargs`` the ale_vector backend can honour (everything else is refused, not silently dropped).
ALE_VECTOR_ENV_KWARGS: tuple[str, ...] = (
    "frameskip", "repeat_action_probability", "full_action_space", "max_num_frames_per_episode",
)
#: ``wrapper_kwargs`` of the "atari" wrapper that the ale_vector backend reproduces.
ALE_VECTOR_WRAPPER_KWARGS: tuple[str, ...] = (
    "noop_max", "frame_skip", "terminal_on_life_loss", "clip_reward", "screen_size",
)
#: The aimbot view's own options (``BreakoutObservationWrapper``'s keywords), batched on ale_vector too.
AIMBOT_VIEW_KWARGS: tuple[str, ...] = ("colour", "crop", "prediction", "resize")
#: What the ale_vector backend accepts for each wrapper it reproduces.
ALE_VECTOR_WRAPPERS: dict[str, tuple[str, ...]] = {
    "atari": ALE_VECTOR_WRAPPER_KWARGS,
    "aimbot": tuple(k for k in ALE_VECTOR_WRAPPER_KWARGS if k != "screen_size") + AIMBOT_VIEW_KWARGS,
}


def register_ale() -> None:
    """Register ale-py's ids with gymnasium (idempotent; needed before ``gym.make("ALE/...")``)."""
    gym.register_envs(ale_py)


def _is_ale_spec(spec: gym.envs.registration.EnvSpec) -> bool:
    entry = spec.entry_point if isinstance(spec.entry_point, str) else getattr(spec.entry_point, "__module__", "")
    return "ale_py" in str(entry)


def check_env_id(env_id: str, flag: str = "--env") -> gym.envs.registration.EnvSpec:
    """Return the spec of an ALE ``env_id``, or raise one clear line naming ``flag`` and valid choices."""
    register_ale()
    spec = gym.envs.registry.get(env_id)
    if spec is None or not _is_ale_spec(spec):
        ale_ids = [name for name, s in gym.envs.registry.items() if _is_ale_spec(s)]
        close = difflib.get_close_matches(env_id, ale_ids, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"{flag}: unknown Atari env id {env_id!r}.{hint} Valid Breakout ids: {', '.join(BREAKOUT_ENV_IDS)} "
            f"(any ALE id registered by ale-py works, e.g. ALE/Pong-v5)."
        )
    return spec


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


def ale_vector_unsupported_reason(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    *,
    wrapper: str = "atari",
) -> str | None:
    """Why ``backend="ale_vector"`` cannot reproduce this env and wrapper, or ``None`` when it can.

    ``--fast`` keeps the classic backend (with a note) for such envs, e.g. ``Breakout-v4``;
    :func:`rlbreakout.ale_vector.make_ale_vector_env` raises the reason as a ConfigError.
    """
    if wrapper not in ALE_VECTOR_WRAPPERS:
        return (f"backend 'ale_vector' does the {' and '.join(map(repr, ALE_VECTOR_WRAPPERS))} wrappers, "
                f"not {wrapper!r}; use backend 'classic'.")
    unknown_env = sorted(set(env_kwargs or {}) - set(ALE_VECTOR_ENV_KWARGS))
    if unknown_env:
        return (f"env_kwargs {unknown_env} are not supported by backend 'ale_vector' "
                f"(supported: {', '.join(ALE_VECTOR_ENV_KWARGS)}); use backend 'classic'.")
    supported = ALE_VECTOR_WRAPPERS[wrapper]
    unknown_wrapper = sorted(set(wrapper_kwargs or {}) - set(supported))
    if unknown_wrapper:
        return (f"wrapper_kwargs {unknown_wrapper} are not supported by backend 'ale_vector' with wrapper "
                f"{wrapper!r} (supported: {', '.join(supported)}); use backend 'classic'.")
    settings = env_settings(env_id, env_kwargs, (wrapper_kwargs or {}).get("frame_skip"))
    if not isinstance(settings.emulator_frameskip, int):
        low, high = settings.emulator_frameskip
        return (f"{env_id} skips a random {low}-{high - 1} frames per action, which ale-py's vector env "
                f"cannot do (it only has a fixed frameskip); use backend 'classic' for {env_id}, or "
                f"BreakoutNoFrameskip-v4 / ALE/Breakout-v5 with 'ale_vector'.")
    return None
