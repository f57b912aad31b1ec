"""A Breakout player with no learning: fire, then put the paddle where the aimbot says.

Why it exists: it is the living proof that :mod:`rlbreakout.aimbot` predicts right. If a
short controller that follows the marker clears walls, the marker carries the skill, and
an agent trained on it mainly has to learn "follow the marker".

The controller, per agent step:

* no ball in the search area (before FIRE, after a lost ball, or while the ball is among
  the bricks): keep the last target and press FIRE whenever the paddle need not move
  (FIRE launches a new ball and is a no-op while one is in play);
* ball falling with a known velocity: aim at the predicted impact column, *timed*;
* otherwise (rising, or just appeared): aim at the ball's column, with a dead-zone.

Why timing matters. ALE drives Breakout's paddle like the real analog controller: a
press moves a hidden set-point by ~5.5 px per frame, and the drawn paddle follows it
about 2 frames late (measured on real frames: one 4-frame press moves it 12 px while
held and 10 px more after release, 21-24 px in all). At frameskip 4 the paddle can
therefore only come to rest on a 22 px grid, too coarse for the 12 px paddle of the
later game, and a late correction overshoots. The impact frame is known, though, from
the ball's row and speed, so the last press before impact moves the paddle only by the
frames left. :func:`plan_move` picks the action after which the best reachable paddle
position at impact is closest to the target. Without a known impact time a plain
dead-zone (half a press, 11 px) keeps the paddle from oscillating.

On deterministic envs (no sticky actions) a good player can fall into an exact loop
that never hits the last bricks. ``random_action_prob`` (1 %) random actions, never in
the last ``SAFE_RANDOM_STEPS`` before an impact (where one loses the ball), and a random
aim offset of up to ``aim_jitter`` px per falling ball (the hit point on the paddle sets
the bounce angle) vary the paths. They make loops rarer, not impossible.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.atari_wrappers import MaxAndSkipEnv, NoopResetEnv

from rlbreakout.aimbot import AimbotView, PaddleSpan, detect_paddle
from rlbreakout.aimbot.geometry import PADDLE_ROW
from rlbreakout.ale_vector import ALEVectorVecEnv
from rlbreakout.env_ids import (
    BACKEND_CHOICES,
    DEFAULT_FRAME_SKIP,
    DEFAULT_NOOP_MAX,
    ale_vector_unsupported_reason,
    check_env_id,
    env_settings,
)
from rlbreakout.envs import make_env_thunk
from rlbreakout.errors import ConfigError
from rlbreakout.frames import agent_view_frame
from rlbreakout.progress import ProgressLine

#: Breakout's minimal action set (``env.unwrapped.get_action_meanings()``).
NOOP, FIRE, RIGHT, LEFT = 0, 1, 2, 3
_DIRECTION = {NOOP: 0, FIRE: 0, RIGHT: 1, LEFT: -1}
#: Paddle set-point speed while a direction is held: 22 px per 4-frame press, measured as
#: the rest-to-rest move of one press (21-24 px) on BreakoutNoFrameskip-v4.
PADDLE_SPEED = 5.5
#: Frames by which the drawn paddle trails the set-point: 2 on a single frame; 2.5 on a
#: MaxAndSkip observation, which is the max of the last two frames (centred half a frame earlier).
PADDLE_LAG_FRAMES = 2.0
MAX_POOL_EXTRA_LAG = 0.5
#: Errors (px) within this much of the best action count as ties (see :func:`plan_move`).
TIE_TOLERANCE = 1.0
#: Share of uniformly random actions, to break exact loops on deterministic envs.
DEFAULT_RANDOM_ACTION_PROB = 0.01
#: Random actions are skipped this close (agent steps) to an impact, where one would lose the ball.
SAFE_RANDOM_STEPS = 2.0
#: Aim this far (px, uniform either way) off the impact column, drawn anew for each falling
#: ball: where the ball meets the paddle sets its bounce, so the paths vary and loops break.
DEFAULT_AIM_JITTER = 2.0
#: Steps a target is kept after the ball vanished (into the bricks) before the paddle just waits.
TARGET_MEMORY_STEPS = 60


def plan_move(displacement: float, frames_left: float, frames_per_step: float, speed: float = PADDLE_SPEED) -> int:
    """Direction (-1, 0, 1) to hold this step so the paddle can end closest to ``displacement``.

    :param displacement: target minus the paddle's current set-point, px
    :param frames_left: frames of control left before the paddle position at impact is fixed
    :param frames_per_step: frames one action is held
    :return: the direction whose best continuation (any later presses) ends nearest the target;
        near-ties go to the direction whose own move ends nearest (0 on a full tie)
    """
    if frames_left <= 0:
        return 0
    goal = displacement / speed  # in frames of holding a direction
    first = min(frames_per_step, frames_left)
    rest = max(0.0, frames_left - first)
    full_steps = math.floor(rest / frames_per_step)
    partial = rest - full_steps * frames_per_step

    def best_error(direction: int) -> float:
        errors = []
        for last in (-1, 0, 1):
            residual = goal - direction * first - last * partial
            steps = min(full_steps, max(-full_steps, round(residual / frames_per_step)))
            errors.append(abs(residual - steps * frames_per_step))
        return min(errors) * speed

    errors = {d: best_error(d) for d in (0, 1, -1)}
    best = min(errors.values())
    ties = [d for d in (0, 1, -1) if errors[d] <= best + TIE_TOLERANCE]
    # Among equally good plans, take the one whose move this step gets closest (the greedy
    # dead-zone rule): far from impact that starts moving early, near it that holds still.
    return min(ties, key=lambda d: abs(goal - d * first))


@dataclass
class ScriptedPlayer:
    """Chooses one Breakout action per step from what the aimbot view sees.

    :param frames_per_step: frames each action is held (4 for NoFrameskip ids with
        MaxAndSkip and for v5; 3 on average for Breakout-v4's random 2-4)
    :param max_pooled: observations are MaxAndSkip's max of two frames (adds half a frame of lag)
    :param dead_zone: untimed aiming leaves the paddle alone within this many px of the
        target; default: half a press
    :param view: the aimbot pipeline it steers by (its observation is only used for
        gifs, so the player sees exactly what a trained agent would)
    """

    frames_per_step: float = DEFAULT_FRAME_SKIP
    max_pooled: bool = True
    dead_zone: float | None = None
    random_action_prob: float = DEFAULT_RANDOM_ACTION_PROB
    aim_jitter: float = DEFAULT_AIM_JITTER
    seed: int | None = 0
    view: AimbotView = field(default_factory=AimbotView)
    #: the aimbot observation of the last frame passed to :meth:`act`
    last_observation: np.ndarray | None = field(default=None, init=False)
    #: the column the paddle was steered to at the last step (None: nothing to aim at)
    last_target: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.frames_per_step <= 0:
            raise ConfigError(f"frames_per_step must be > 0, got {self.frames_per_step}.")
        if self.dead_zone is None:
            self.dead_zone = PADDLE_SPEED * self.frames_per_step / 2
        if self.dead_zone < 0:
            raise ConfigError(f"dead_zone must be >= 0 pixels, got {self.dead_zone}.")
        if not 0.0 <= self.random_action_prob <= 1.0:
            raise ConfigError(f"random_action_prob must be in [0, 1], got {self.random_action_prob}.")
        if self.aim_jitter < 0:
            raise ConfigError(f"aim_jitter must be >= 0 pixels, got {self.aim_jitter}.")
        self.lag_frames = PADDLE_LAG_FRAMES + (MAX_POOL_EXTRA_LAG if self.max_pooled else 0.0)
        self.rng = np.random.default_rng(self.seed)
        self.reset()

    def reset(self) -> None:
        """Forget the ball, the target and the last action (a new game starts)."""
        self.view.reset()
        self.last_observation, self.last_target = None, None
        self._last_action, self._steps_since_ball = NOOP, TARGET_MEMORY_STEPS
        self._aim_offset, self._falling = 0.0, False

    def act(self, frame: np.ndarray) -> int:
        """One action for the RGB ``frame`` (210x160x3)."""
        self.last_observation = self.view(frame)
        ball, motion, impact = self.view.last_ball, self.view.last_motion, self.view.last_impact
        self._steps_since_ball = 0 if ball is not None else self._steps_since_ball + 1
        falling = impact is not None
        if falling and not self._falling and self.aim_jitter > 0:
            self._aim_offset = float(self.rng.uniform(-self.aim_jitter, self.aim_jitter))
        self._falling = falling
        if impact is not None:
            self.last_target = impact + self._aim_offset
        elif ball is not None:
            self.last_target = ball.col
        elif self._steps_since_ball >= TARGET_MEMORY_STEPS:
            self.last_target = None
        paddle = detect_paddle(frame)
        steps_to_impact = None if motion is None or impact is None else (PADDLE_ROW - motion.row) / motion.v_row
        direction = self._steer(paddle, steps_to_impact)
        if direction == 0:
            action = FIRE if ball is None else NOOP
        else:
            action = RIGHT if direction > 0 else LEFT
        near_impact = steps_to_impact is not None and steps_to_impact < SAFE_RANDOM_STEPS
        if not near_impact and self.rng.random() < self.random_action_prob:
            action = int(self.rng.integers(4))
        self._last_action = action
        return action

    def _steer(self, paddle: PaddleSpan | None, steps_to_impact: float | None) -> int:
        if self.last_target is None or paddle is None:
            return 0
        # Where the paddle's set-point is now: the drawn paddle trails it by the lag.
        set_point = paddle.centre + PADDLE_SPEED * self.lag_frames * _DIRECTION[self._last_action]
        displacement = self.last_target - set_point
        if steps_to_impact is not None:
            frames_left = steps_to_impact * self.frames_per_step - self.lag_frames
            return plan_move(displacement, frames_left, self.frames_per_step)
        if abs(displacement) <= self.dead_zone:
            return 0
        return 1 if displacement > 0 else -1


def _check_breakout(env_id: str) -> None:
    spec = check_env_id(env_id)
    if spec.kwargs.get("game") != "breakout":
        raise ConfigError(f"the scripted player plays Breakout only, not {env_id}; "
                          f"use BreakoutNoFrameskip-v4, Breakout-v4 or ALE/Breakout-v5.")


class OneGameVectorEnv(gym.Env):
    """The scripted player's env on ale-py's C++ vector env: one game, full-size RGB, whole games.

    Why not the vector env itself: the player is a per-frame controller over one
    ``gym.Env`` (:func:`play_scripted_games`). This adapter gives it the frames that 3.3
    ``--fast`` trains on, :class:`~rlbreakout.ale_vector.ALEVectorVecEnv` with ``rgb=True``
    (max-pooled over the skipped frames like ``MaxAndSkipEnv``), with no life loss and no
    clipping, so an episode is a whole game and its return the score. At game over the
    game's last frame is returned, not the next game's first.
    """

    def __init__(self, env_id: str, *, seed: int, env_kwargs: dict[str, Any] | None, noop_max: int) -> None:
        reason = ale_vector_unsupported_reason(env_id, env_kwargs, None, wrapper="aimbot")
        if reason is not None:
            raise ConfigError(reason)
        self.venv = ALEVectorVecEnv(env_id, 1, settings=env_settings(env_id, env_kwargs), noop_max=noop_max,
                                    terminal_on_life_loss=False, clip_reward=False, num_threads=1, rgb=True)
        self.venv.seed(seed)
        self.observation_space, self.action_space = self.venv.observation_space, self.venv.action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.venv.seed(seed)
        return self.venv.reset()[0], dict(self.venv.reset_infos[0])

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        frames, rewards, dones, infos = self.venv.step(np.array([action]))
        info, over = infos[0], bool(dones[0])
        truncated = over and bool(info.get("TimeLimit.truncated"))
        frame = info["terminal_observation"] if over else frames[0]
        return frame, float(rewards[0]), over and not truncated, truncated, info

    def get_action_meanings(self) -> list[str]:
        """Breakout's minimal action set, the one ale-py's vector env steps."""
        return ["NOOP", "FIRE", "RIGHT", "LEFT"]

    def close(self) -> None:
        self.venv.close()


def make_player_env(
    env_id: str, *, seed: int = 0, env_kwargs: dict[str, Any] | None = None, noop_max: int = DEFAULT_NOOP_MAX,
    backend: str = "classic",
) -> gym.Env:
    """One env for the scripted player: RGB frames, the factory's equalised settings, no life loss.

    Same skip as training (MaxAndSkip 4 for NoFrameskip ids, the emulator's own skip for
    v5), so scores compare with the agents'. No EpisodicLife and no reward clipping: one
    episode is one whole game, its return the real score. ``backend="ale_vector"`` plays on
    ale-py's C++ vector env instead (:class:`OneGameVectorEnv`), as 3.3 ``--fast`` trains.
    """
    _check_breakout(env_id)
    if (env_kwargs or {}).get("full_action_space"):
        raise ConfigError("the scripted player presses Breakout's minimal action set (NOOP, FIRE, RIGHT, LEFT); "
                          "drop full_action_space from env_kwargs.")
    if backend == "ale_vector":
        return OneGameVectorEnv(env_id, seed=seed, env_kwargs=env_kwargs, noop_max=noop_max)
    if backend != "classic":
        raise ConfigError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKEND_CHOICES)}.")
    settings = env_settings(env_id, env_kwargs)
    env = make_env_thunk(env_id, seed=seed, wrapper="none", env_kwargs=env_kwargs, render_mode=None)()
    if noop_max > 0:
        env = NoopResetEnv(env, noop_max=noop_max)
    if settings.wrapper_frame_skip > 1:
        env = MaxAndSkipEnv(env, skip=settings.wrapper_frame_skip)
    return env


def player_for(env_id: str, *, seed: int = 0, env_kwargs: dict[str, Any] | None = None, **player_kwargs: Any) -> ScriptedPlayer:
    """A :class:`ScriptedPlayer` whose paddle model matches ``env_id``'s frameskip and pooling."""
    settings = env_settings(env_id, env_kwargs)
    skip = settings.emulator_frameskip
    if settings.wrapper_frame_skip > 1:
        frames = float(settings.wrapper_frame_skip)
    elif isinstance(skip, tuple):  # Breakout-v4's (2, 5) is a [low, high) range: 2, 3 or 4 frames
        frames = (skip[0] + skip[1] - 1) / 2
    else:
        frames = float(skip)
    return ScriptedPlayer(frames_per_step=frames, max_pooled=settings.wrapper_frame_skip > 1, seed=seed, **player_kwargs)


@dataclass
class ScriptedGames:
    """What :func:`play_scripted_games` played."""

    #: whole-game scores (all lives), finished games only
    scores: list[float]
    #: agent-view frames (screen | observation) of the first game, for a gif
    frames: list[np.ndarray]
    #: agent steps of each finished game
    lengths: list[int]
    #: agent steps played in all, unfinished game included
    steps: int
    #: True when ``max_steps`` cut a game short (that game is not in ``scores``)
    unfinished: bool
    wall_seconds: float


def play_scripted_games(
    env: gym.Env,
    player: ScriptedPlayer,
    n_games: int,
    *,
    seed: int | None = None,
    max_steps: int | None = None,
    record_steps: int = 0,
    frame_every: int = 1,
    on_game_end: Callable[[int, float, int], None] | None = None,
    progress: ProgressLine | None = None,
) -> ScriptedGames:
    """Play ``n_games`` whole games of Breakout on ``env`` (from :func:`make_player_env`) with ``player``.

    Each game ends at game over or at ALE's cap of 108,000 frames
    (``max_num_frames_per_episode``, 27,000 agent steps at frameskip 4); build the env
    with ``env_kwargs={"max_num_frames_per_episode": N}`` for a shorter cap. The caller
    owns ``env`` and closes it.

    :param seed: seeds the first reset (None: the env goes on from its own state)
    :param max_steps: total agent-step budget; a game still running when it is spent is dropped
    :param record_steps: agent-view frames to keep from the first game (0: none)
    :param frame_every: keep one frame in ``frame_every``
    :param on_game_end: called with (game index, score, steps) after each game
    :param progress: updated with the steps played and the scores so far after every step
    """
    if n_games < 1:
        raise ConfigError(f"n_games must be >= 1, got {n_games}.")
    if frame_every < 1:
        raise ConfigError(f"frame_every must be >= 1, got {frame_every}.")
    result = ScriptedGames(scores=[], frames=[], lengths=[], steps=0, unfinished=False, wall_seconds=0.0)
    start = time.perf_counter()
    frame, _ = env.reset(seed=seed)
    for game in range(n_games):
        if game > 0:
            frame, _ = env.reset()
        player.reset()
        score, length, done = 0.0, 0, False
        while not done:
            if max_steps is not None and result.steps >= max_steps:
                result.unfinished = True
                break
            action = player.act(frame)
            if game == 0 and length < record_steps and length % frame_every == 0:
                result.frames.append(agent_view_frame(frame, player.last_observation))
            frame, reward, terminated, truncated, _ = env.step(action)
            score += float(reward)
            length += 1
            result.steps += 1
            if progress is not None:
                progress.update(result.steps, result.scores)
            done = terminated or truncated
        if not done:
            break
        result.scores.append(score)
        result.lengths.append(length)
        if on_game_end is not None:
            on_game_end(game, score, length)
    result.wall_seconds = time.perf_counter() - start
    return result


#: Agent steps a fall may take to start after the warm-up before :func:`record_fall` gives up.
MAX_STEPS_TO_A_FALL = 2_000
#: Frames of one fall that :func:`record_fall` keeps at most.
FALL_FRAMES = 6


@dataclass
class Fall:
    """One falling ball, as :func:`record_fall` saw it: raw frames and the player's view of each."""

    #: raw RGB frames, from the first with a known impact column until the ball reaches the paddle
    frames: list[np.ndarray]
    #: the aimbot observation of each frame (the player's view, tracking since the game began)
    observations: list[np.ndarray]
    #: the predicted impact column on each frame
    impacts: list[float | None]
    #: agent steps played in all
    steps: int


def record_fall(
    env_id: str, *, seed: int = 0, warmup_steps: int = 0, max_frames: int = FALL_FRAMES,
    max_extra_steps: int = MAX_STEPS_TO_A_FALL, env_kwargs: dict[str, Any] | None = None,
) -> Fall:
    """Let the scripted player play ``warmup_steps``, then keep the frames of the next falling ball.

    Chapter 3's pictures: a frame whose marker shows, and the marker over a fall. If no
    fall starts within ``max_extra_steps``, the last frame is kept alone. A game that ends
    meanwhile is followed by the next one (a fall is never split across two games).

    :param env_kwargs: overrides for ``gym.make``, as :func:`make_player_env` takes them
    """
    env = make_player_env(env_id, seed=seed, env_kwargs=env_kwargs)
    player = player_for(env_id, seed=seed, env_kwargs=env_kwargs, aim_jitter=0.0)
    fall = Fall(frames=[], observations=[], impacts=[], steps=0)
    frame, _ = env.reset(seed=seed)
    try:
        while len(fall.frames) < max_frames and fall.steps < warmup_steps + max_extra_steps:
            action = player.act(frame)
            if fall.steps >= warmup_steps and (fall.frames or player.view.last_impact is not None):
                if player.view.last_impact is None:  # it bounced off the paddle (or was lost): the fall is complete
                    break
                fall.frames.append(frame)
                fall.observations.append(player.last_observation)
                fall.impacts.append(player.view.last_impact)
            frame, _, terminated, truncated, _ = env.step(action)
            fall.steps += 1
            if terminated or truncated:
                frame, _ = env.reset()
                player.reset()
                fall.frames, fall.observations, fall.impacts = [], [], []
    finally:
        env.close()
    if not fall.frames:
        fall.frames, fall.observations, fall.impacts = [frame], [player.view(frame)], [player.view.last_impact]
    return fall
