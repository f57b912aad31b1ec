"""An SB3 VecEnv over ale-py's C++ ``AtariVectorEnv``: the classic Atari stack, faster.

Why: the classic stack steps each env in Python through six wrappers
(``NoopReset``, ``MaxAndSkip``, ``EpisodicLife``, ``FireReset``, ``WarpFrame``,
``ClipReward``) plus ``Monitor``. ale-py 0.10+ ships the same preprocessing in C++
with a thread pool (``ale_py.vector_env.AtariVectorEnv``), which steps several
envs at once. This module makes it look like ``make_env(..., backend="classic")``
to SB3 and to the rest of the tutorial:

* observations: uint8, channel-first ``(n_envs, frame_stack, 84, 84)``; the frame
  stack is SB3's ``VecFrameStack`` on top of single frames, so it is zeroed at every
  ``done`` (life loss included) exactly as in the classic stack;
* rewards: clipped to their sign for training (``clip_reward``); ale-py can only
  clip *inside* C++ and would then hide the raw score, so its clipping is switched
  off and the adapter clips;
* ``done`` at every lost life (``terminal_on_life_loss``), like SB3's
  ``EpisodicLifeEnv``: the game goes on, only a real game over resets it. (ale-py's
  own ``episodic_life=True`` resets the whole game at each lost life, which is a
  different, harder task; we keep it off and watch ``lives`` ourselves.)
* ``infos[i]["terminal_observation"]`` at every ``done``, ``infos[i]["episode"]``
  (``r`` = unclipped whole-game score, ``l`` = length, ``t`` = seconds) only when the
  whole game ends, as the Monitor under the classic wrappers writes it;
* sticky actions, frameskip and max-frames come from ``env_ids.env_settings`` so an id
  means the same thing on both backends.

Remaining differences (see the README's Performance section):

* no automatic FIRE after a lost life (the classic ``FireResetEnv`` presses FIRE
  after each one; here the agent has to, and learns to). A greedy policy that never
  presses FIRE therefore plays on to the 108,000-frame limit: evaluate on the classic
  backend, or stochastically;
* at reset ale-py presses FIRE for one frame *before* its no-ops; the classic stack
  does the no-ops first, then FIRE and action 2;
* ale-py's greyscale palette and resize differ slightly from OpenCV's (a few grey levels);
* ``Breakout-v4``'s random 2-4 frameskip cannot be reproduced (the vector env only
  does a fixed frameskip): such ids raise :class:`ConfigError` instead of silently
  becoming another env. Use ``BreakoutNoFrameskip-v4`` or ``ALE/Breakout-v5``;
* ``episode["l"]`` at game over is counted from ale-py's frame counter, so it can be
  off by one action's frames from the classic count;
* no screen rendering (``get_images`` returns ``None``s): record gifs with the
  classic backend.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from rlbreakout.aimbot.batched import BatchedAimbotView
from rlbreakout.aimbot.geometry import SCREEN_CHANNELS, SCREEN_HEIGHT, SCREEN_WIDTH
from rlbreakout.env_ids import (
    AIMBOT_VIEW_KWARGS,
    DEFAULT_ALE_THREADS,
    DEFAULT_NOOP_MAX,
    DEFAULT_SCREEN_SIZE,
    EnvSettings,
    ale_vector_unsupported_reason,
    check_env_id,
    env_settings,
)
from rlbreakout.errors import ConfigError

#: ale-py's "same step" autoreset: a finished game returns the new game's first frame at once
#: and its last frame in ``info["final_obs"]``, which is what SB3's VecEnv contract wants.
AUTORESET_SAME_STEP = "SameStep"


def _frameskip_and_maxpool(settings: EnvSettings) -> tuple[int, bool, int]:
    """(frames per action, max-pool the last two frames?, frames per classic base-env step).

    NoFrameskip ids: the classic ``MaxAndSkipEnv`` skips and max-pools, and the Monitor
    below it counts single frames. Ids that skip in the emulator (v5): ALE returns the
    last frame, no max-pool, and the Monitor counts actions.
    """
    emulator = int(settings.emulator_frameskip)  # tuples are rejected before this point
    if emulator > 1:
        return emulator, False, emulator
    return settings.wrapper_frame_skip, settings.wrapper_frame_skip > 1, 1


class ALEVectorVecEnv(VecEnv):
    """SB3 VecEnv over one ``AtariVectorEnv``; single 84x84 grey frames, ``(n, 1, H, W)``.

    Build it through :func:`make_ale_vector_env`, which adds the frame stack. The
    bookkeeping here (lives, whole-game return and length) replaces ``Monitor``,
    ``EpisodicLifeEnv`` and ``ClipRewardEnv`` of the classic stack. With ``rgb=True`` the
    frames are the full-size max-pooled RGB screens ``(n, 210, 160, 3)`` that the classic
    ``MaxAndSkipEnv`` gives, for the aimbot view (:class:`AimbotViewVecEnv`) to work on.
    """

    def __init__(
        self,
        env_id: str,
        n_envs: int,
        *,
        settings: EnvSettings,
        noop_max: int = DEFAULT_NOOP_MAX,
        terminal_on_life_loss: bool = True,
        clip_reward: bool = True,
        screen_size: int = DEFAULT_SCREEN_SIZE,
        num_threads: int = DEFAULT_ALE_THREADS,
        rgb: bool = False,
    ) -> None:
        frameskip, maxpool, self._frames_per_base_step = _frameskip_and_maxpool(settings)
        height, width = (SCREEN_HEIGHT, SCREEN_WIDTH) if rgb else (int(screen_size), int(screen_size))
        self._frameskip = frameskip
        spec = check_env_id(env_id)
        # ale-py's no-ops are single frames; the classic v5 stack's no-ops are whole actions.
        noop_frames = int(noop_max) * self._frames_per_base_step
        self._ale = AtariVectorEnv(
            spec.kwargs["game"],
            int(n_envs),
            num_threads=int(num_threads),
            max_num_frames_per_episode=settings.max_num_frames_per_episode,
            repeat_action_probability=settings.repeat_action_probability,
            full_action_space=settings.full_action_space,
            autoreset_mode=AUTORESET_SAME_STEP,
            img_height=height,
            img_width=width,
            grayscale=not rgb,
            stack_num=1,
            frameskip=frameskip,
            maxpool=maxpool,
            noop_max=noop_frames,
            episodic_life=False,
            life_loss_info=False,
            reward_clipping=False,
            use_fire_reset=True,
        )
        self.env_id = env_id
        self.settings = settings
        self.num_threads = int(num_threads)
        self.terminal_on_life_loss = bool(terminal_on_life_loss)
        self.clip_reward = bool(clip_reward)
        self.render_mode = None
        self.rgb = bool(rgb)
        shape = (height, width, SCREEN_CHANNELS) if rgb else (1, height, width)
        observation_space = gym.spaces.Box(0, 255, shape, np.uint8)
        super().__init__(int(n_envs), observation_space, self._ale.single_action_space)
        self._actions = np.zeros(self.num_envs, dtype=np.int32)
        self._lives = np.zeros(self.num_envs, dtype=np.int32)
        self._game_frames = np.zeros(self.num_envs, dtype=np.int64)
        self._game_return = np.zeros(self.num_envs, dtype=np.float64)
        self._t0 = time.time()

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        """Start new games in every env (seeded by ``seed()`` if it was called)."""
        seeds = None if any(s is None for s in self._seeds) else np.asarray(self._seeds, dtype=np.int64)
        obs, info = self._ale.reset(seed=seeds)
        obs = self._frames(obs)
        self._reset_seeds()
        self._reset_options()
        self._lives[:] = info["lives"]
        self._game_frames[:] = info["episode_frame_number"]
        self._game_return[:] = 0.0
        self.reset_infos = [{"lives": int(info["lives"][i])} for i in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Hand the actions to ale-py's threads (they run while Python waits in ``step_wait``)."""
        self._actions[:] = np.asarray(actions).reshape(self.num_envs)
        self._ale.send(self._actions)

    def step_wait(self) -> VecEnvStepReturn:
        obs, raw_reward, terminated, truncated, info = self._ale.recv()
        obs = self._frames(obs)
        lives = info["lives"]
        episode_frames = info["episode_frame_number"]
        raw_reward = raw_reward.astype(np.float64)
        game_over = terminated | truncated  # these envs were reset by ale-py in this same step
        life_lost = (lives < self._lives) & ~game_over
        dones = game_over | (life_lost & self.terminal_on_life_loss)
        self._game_return += raw_reward
        reward = np.sign(raw_reward) if self.clip_reward else raw_reward

        infos: list[dict[str, Any]] = []
        now = time.time()
        for i in range(self.num_envs):
            item: dict[str, Any] = {"lives": int(lives[i]), "episode_frame_number": int(episode_frames[i]),
                                    "frame_number": int(info["frame_number"][i])}
            if dones[i]:
                item["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                if game_over[i]:
                    item["terminal_observation"] = self._frames(info["final_obs"][i:i + 1])[0].copy()
                    frames = int(self._game_frames[i]) + self._frameskip  # the last action's frames
                    item["episode"] = {
                        "r": float(self._game_return[i]),
                        "l": int(round(frames / self._frames_per_base_step)),
                        "t": round(now - self._t0, 6),
                    }
                    self._game_return[i] = 0.0
                else:  # a lost life: the game goes on from this very frame
                    item["terminal_observation"] = obs[i].copy()
            infos.append(item)
        self._lives[:] = lives
        self._game_frames[:] = episode_frames
        return obs, reward.astype(np.float32), dones, infos

    def _frames(self, obs: np.ndarray) -> np.ndarray:
        """ale-py's RGB frames come as a stack of one, ``(n, 1, 210, 160, 3)``: drop that axis."""
        return obs[:, 0] if self.rgb else obs

    def close(self) -> None:
        self._ale.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """ale-py's vector env keeps no RGB screen; record gifs with the classic backend."""
        return [None] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Attributes of the adapter itself (there are no per-env Python objects to ask)."""
        if not hasattr(self, attr_name):
            raise AttributeError(f"backend 'ale_vector' has no attribute {attr_name!r}; use backend 'classic'.")
        return [getattr(self, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        raise AttributeError(f"backend 'ale_vector' has no per-env objects to call {method_name!r} on; "
                             f"use backend 'classic'.")

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """True for ``Monitor``: the adapter writes Monitor's ``episode`` info itself, so SB3's
        ``evaluate_policy`` may trust it."""
        return [issubclass(Monitor, wrapper_class) for _ in self._get_indices(indices)]


class AimbotViewVecEnv(VecEnvWrapper):
    """The aimbot view over :class:`ALEVectorVecEnv`'s RGB frames: chapter 3's observation, batched.

    The classic stack's :class:`~rlbreakout.aimbot.view.BreakoutObservationWrapper` sits above
    ``EpisodicLifeEnv``, so its tracker is cleared at every lost life and every new game, after
    the last frame's observation and before the next one's. Here the same happens for each
    env whose ``done`` is set: its ``terminal_observation`` is viewed with its tracker as it
    stands, then that tracker is cleared and the env's next frame viewed afresh.
    Observations are channel-first ``(n, C, H, W)`` uint8, as the frame stack above expects.
    """

    def __init__(self, venv: ALEVectorVecEnv, view: BatchedAimbotView) -> None:
        if not venv.rgb or view.n_envs != venv.num_envs:
            raise ConfigError("the aimbot view needs an ALEVectorVecEnv with rgb=True and one tracker per env.")
        height, width, channels = view.shape
        super().__init__(venv, observation_space=gym.spaces.Box(0, 255, (channels, height, width), np.uint8))
        self.view = view

    @staticmethod
    def _channel_first(images: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))

    def reset(self) -> np.ndarray:
        frames = self.venv.reset()
        self.view.reset()
        return self._channel_first(self.view(frames))

    def step_wait(self) -> VecEnvStepReturn:
        frames, rewards, dones, infos = self.venv.step_wait()
        for i in np.flatnonzero(dones):
            last = self.view(infos[i]["terminal_observation"][None], indices=[int(i)])
            infos[i]["terminal_observation"] = self._channel_first(last)[0]
            self.view.reset([int(i)])
        return self._channel_first(self.view(frames)), rewards, dones, infos


def make_ale_vector_env(
    env_id: str,
    n_envs: int,
    *,
    seed: int = 0,
    frame_stack: int = 4,
    env_kwargs: dict[str, Any] | None = None,
    wrapper_kwargs: dict[str, Any] | None = None,
    num_threads: int = DEFAULT_ALE_THREADS,
    wrapper: str = "atari",
) -> VecEnv:
    """``make_env(..., backend="ale_vector")``: the classic "atari" or "aimbot" stack on ale-py's C++ vector env.

    :param num_threads: ale-py worker threads (at most one per env is used); ``--fast`` passes
        the free cores, see :func:`rlbreakout.speed.threads.configure_threads`
    :param wrapper: ``atari`` (84x84 grey, resized in C++) or ``aimbot`` (full RGB frames,
        then the batched aimbot view: :class:`AimbotViewVecEnv`)
    :return: a VecEnv of uint8 ``(n_envs, channels * frame_stack, H, W)`` observations
    """
    reason = ale_vector_unsupported_reason(env_id, env_kwargs, wrapper_kwargs, wrapper=wrapper)
    if reason is not None:
        raise ConfigError(reason)
    options = dict(wrapper_kwargs or {})
    settings = env_settings(env_id, env_kwargs, options.get("frame_skip"))
    if int(num_threads) < 1:
        raise ConfigError(f"num_threads must be >= 1, got {num_threads}.")
    view_options = {key: options.pop(key) for key in AIMBOT_VIEW_KWARGS if key in options}
    venv: VecEnv = ALEVectorVecEnv(
        env_id,
        int(n_envs),
        settings=settings,
        noop_max=int(options.get("noop_max", DEFAULT_NOOP_MAX)),
        terminal_on_life_loss=bool(options.get("terminal_on_life_loss", True)),
        clip_reward=bool(options.get("clip_reward", True)),
        screen_size=int(options.get("screen_size", DEFAULT_SCREEN_SIZE)),
        num_threads=max(1, min(int(num_threads), int(n_envs))),
        rgb=wrapper == "aimbot",
    )
    if wrapper == "aimbot":
        assert isinstance(venv, ALEVectorVecEnv)
        venv = AimbotViewVecEnv(venv, BatchedAimbotView(int(n_envs), **view_options))
    venv.seed(seed)
    venv.action_space.seed(seed)
    if frame_stack > 1:
        venv = VecFrameStack(venv, n_stack=int(frame_stack), channels_order="first")
    return venv
