"""Watching a retro policy: one game played in this process, its real screens kept for a gif."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlbreakout.render import Recording, policy_actions
from rlbreakout.retro.envs import CONTEST_MAX_EPISODE_STEPS, make_retro_env

#: Real-time gifs: the Genesis draws 60 frames a second and the agent acts every 4th.
GIF_FPS = 15


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
) -> Recording:
    """Play one game with ``policy`` (an SB3 model or a callable) and keep the real screens.

    Runs in this process (``vec_env="dummy"``), so no other emulator may be open here.
    :return: a :class:`rlbreakout.render.Recording` holding one game (a cut game keeps its partial score)
    """
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
