"""Tests for rlbreakout.scripted_player: the planner, the controller on synthetic frames, real games."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest

from fakes import ball_frame, synthetic_frame
from rlbreakout.aimbot import geometry as G
from rlbreakout.aimbot import PaddleSpan, predict_impact_column
from rlbreakout.errors import ConfigError
from rlbreakout import scripted_player
from rlbreakout.progress import ProgressLine
from rlbreakout.scripted_player import (
    FIRE,
    LEFT,
    NOOP,
    PADDLE_SPEED,
    RIGHT,
    SAFE_RANDOM_STEPS,
    ScriptedPlayer,
    make_player_env,
    plan_move,
    play_scripted_games,
    player_for,
    record_fall,
)


# %% plan_move: which direction to hold, given the displacement still needed and the frames left


def test_plan_move_far_target_moves_now() -> None:
    assert plan_move(60.0, frames_left=20, frames_per_step=4) == 1
    assert plan_move(-60.0, frames_left=20, frames_per_step=4) == -1


def test_plan_move_holds_still_when_on_target_or_too_late() -> None:
    assert plan_move(2.0, frames_left=20, frames_per_step=4) == 0
    assert plan_move(80.0, frames_left=0, frames_per_step=4) == 0
    assert plan_move(80.0, frames_left=-3, frames_per_step=4) == 0


def test_plan_move_does_not_overshoot_with_a_full_press() -> None:
    """8 px off with a full step left: a 22 px press would end 14 px the other side."""
    assert plan_move(8.0, frames_left=4, frames_per_step=4) == 0


def test_plan_move_uses_a_partial_press_just_before_impact() -> None:
    """12 px off with 2 frames left: pressing moves 11 px, so press."""
    assert plan_move(12.0, frames_left=2, frames_per_step=4) == 1
    assert plan_move(-12.0, frames_left=2, frames_per_step=4) == -1


def test_plan_move_must_start_now_when_reach_is_tight() -> None:
    """Exactly three presses of reach: waiting a step would fall a full press short."""
    reach = 3 * 4 * PADDLE_SPEED
    assert plan_move(reach, frames_left=12, frames_per_step=4) == 1


def end_errors_by_enumeration(displacement: float, frames_left: float, frames_per_step: float) -> dict[int, float]:
    """For each first direction, the smallest end error (px) over every later sequence of presses.

    The oracle plan_move's rounding is checked against: each whole step after the first holds
    -1, 0 or 1, and a last part-step holds -1, 0 or 1 for the frames left over.
    """
    goal = displacement / PADDLE_SPEED
    first = min(frames_per_step, frames_left)
    rest = max(0.0, frames_left - first)
    whole = int(rest // frames_per_step)
    partial = rest - whole * frames_per_step
    return {d: PADDLE_SPEED * min(abs(goal - d * first - total * frames_per_step - last * partial)
                                  for total in range(-whole, whole + 1) for last in (-1, 0, 1))
            for d in (0, 1, -1)}


def test_plan_move_picks_a_first_press_from_which_the_best_plan_ends_nearest() -> None:
    """2,000 random situations: the chosen press's best ending is within the tie tolerance of the best."""
    from rlbreakout.scripted_player import TIE_TOLERANCE

    rng = np.random.default_rng(0)
    chosen_best = 0
    for _ in range(2_000):
        frames_per_step = float(rng.choice([2.0, 3.0, 4.0, 2.5]))
        frames_left = float(rng.choice([rng.uniform(0.1, 3.0), rng.uniform(0.1, 40.0), rng.integers(1, 10) * frames_per_step]))
        displacement = float(rng.uniform(-150.0, 150.0))
        errors = end_errors_by_enumeration(displacement, frames_left, frames_per_step)
        move = plan_move(displacement, frames_left=frames_left, frames_per_step=frames_per_step)
        assert errors[move] <= min(errors.values()) + TIE_TOLERANCE + 1e-9, (displacement, frames_left, frames_per_step)
        chosen_best += errors[move] == min(errors.values())
        near = [d for d in (0, 1, -1) if errors[d] <= min(errors.values()) + TIE_TOLERANCE + 1e-9]
        goal, first = displacement / PADDLE_SPEED, min(frames_per_step, frames_left)
        assert abs(goal - move * first) == min(abs(goal - d * first) for d in near), "near-ties: the nearest own move"
    assert chosen_best > 1_800


def test_plan_move_presses_within_the_last_frame() -> None:
    """One frame left and 6 px to go: a 5.5 px press gets nearest."""
    assert plan_move(6.0, frames_left=1, frames_per_step=4) == 1
    assert plan_move(-6.0, frames_left=0.8, frames_per_step=4) == -1


# %% The controller on synthetic frames


def test_fire_when_no_ball() -> None:
    player = ScriptedPlayer(random_action_prob=0.0)
    assert player.act(synthetic_frame(None, paddle_left=60)) == FIRE


def test_moves_toward_a_falling_ball_and_waits_on_target() -> None:
    player = ScriptedPlayer(random_action_prob=0.0, aim_jitter=0.0)
    player.act(ball_frame(100.5, 60.5, paddle_left=20))  # first sight: aims at the ball's column
    action = player.act(ball_frame(108.5, 66.5, paddle_left=20))
    impact = player.view.last_impact
    assert impact == pytest.approx(predict_impact_column(108.5, 66.5, 8.0, 6.0))
    assert player.last_target == impact and action == RIGHT
    on_target = ScriptedPlayer(random_action_prob=0.0, aim_jitter=0.0)
    paddle_left = 53  # columns 53-68: centred on 60.5, where a ball falling straight down lands
    assert on_target.act(ball_frame(100.5, 60.5, paddle_left=paddle_left)) == NOOP
    assert on_target.act(ball_frame(108.5, 60.5, paddle_left=paddle_left)) == NOOP
    assert on_target.last_target == 60.5


def test_rising_ball_is_followed_with_a_dead_zone() -> None:
    player = ScriptedPlayer(random_action_prob=0.0)
    player.act(ball_frame(150.5, 30.5, paddle_left=100))
    assert player.act(ball_frame(142.5, 32.5, paddle_left=100)) == LEFT
    near = ScriptedPlayer(random_action_prob=0.0)
    near.act(ball_frame(150.5, 100.5, paddle_left=95))
    assert near.act(ball_frame(142.5, 102.5, paddle_left=95)) == NOOP


def test_random_actions_happen_at_the_asked_rate_but_never_just_before_impact() -> None:
    player = ScriptedPlayer(random_action_prob=1.0, seed=0)
    rising = [player.act(ball_frame(150.5 - 8 * i, 60.5, paddle_left=50)) for i in range(6)]
    assert len(set(rising)) > 1, "all-random actions vary"

    # No ball on the screen: the player's own choice is FIRE, so every other action is a random one.
    # A random action is one of the 4 buttons, FIRE included: 3 in 4 of them show, at 0.75 x the rate.
    no_ball = synthetic_frame()
    player = ScriptedPlayer(random_action_prob=0.2, seed=1)
    actions = [player.act(no_ball) for _ in range(2000)]
    shown = sum(action != FIRE for action in actions) / len(actions)
    assert shown == pytest.approx(0.75 * 0.2, abs=0.03), "random actions at 0.2 x 3/4 (+-5 standard deviations)"

    class NoDraws:
        def random(self) -> float:
            raise AssertionError("no random action may be drawn just before impact")

    near = ScriptedPlayer(random_action_prob=1.0, seed=0, aim_jitter=0.0)
    near.act(ball_frame(164.5, 60.5, paddle_left=53))
    near.rng = NoDraws()
    near.act(ball_frame(172.5, 60.5, paddle_left=53))  # 15 rows at 8 a step: under 2 steps to impact


def test_a_random_action_may_come_at_exactly_the_safe_number_of_steps_before_impact() -> None:
    """Random actions stop *under* SAFE_RANDOM_STEPS to impact; at exactly that many one is still drawn."""
    near = ScriptedPlayer(random_action_prob=1.0, seed=0, aim_jitter=0.0)
    near.act(ball_frame(163.5, 60.5, paddle_left=53))
    rng, draws = near.rng, []

    class CountingDraws:
        def random(self) -> float:
            draws.append("random")
            return float(rng.random())

        def integers(self, high: int) -> int:
            return int(rng.integers(high))

    near.rng = CountingDraws()
    near.act(ball_frame(171.5, 60.5, paddle_left=53))
    motion = near.view.last_motion
    assert (G.PADDLE_ROW - motion.row) / motion.v_row == SAFE_RANDOM_STEPS  # the boundary itself
    assert draws == ["random"]


def test_reset_forgets_the_ball() -> None:
    player = ScriptedPlayer(random_action_prob=0.0)
    player.act(ball_frame(100.5, 60.5))
    player.act(ball_frame(108.5, 66.5))
    player.reset()
    assert player.view.last_motion is None and player.last_target is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"random_action_prob": 1.5}, "random_action_prob must be in [0, 1], got 1.5."),
    ({"dead_zone": -1.0}, "dead_zone must be >= 0 pixels, got -1.0."),
    ({"frames_per_step": 0}, "frames_per_step must be > 0, got 0."),
    ({"aim_jitter": -2.0}, "aim_jitter must be >= 0 pixels, got -2.0."),
])
def test_bad_settings_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ScriptedPlayer(**kwargs)
    assert str(refused.value) == message


def test_the_smallest_settings_are_accepted_and_the_dead_zone_is_half_a_press() -> None:
    assert ScriptedPlayer(frames_per_step=0.5).frames_per_step == 0.5  # any positive hold, frameskip 1 too
    assert ScriptedPlayer(dead_zone=0.0).dead_zone == 0.0 and ScriptedPlayer(dead_zone=0.5).dead_zone == 0.5
    assert ScriptedPlayer(frames_per_step=4).dead_zone == 4 * PADDLE_SPEED / 2  # 11 px: half a 22-px press
    assert ScriptedPlayer(frames_per_step=3).dead_zone == 3 * PADDLE_SPEED / 2


def test_a_max_pooled_observation_lags_half_a_frame_more() -> None:
    from rlbreakout.scripted_player import MAX_POOL_EXTRA_LAG, PADDLE_LAG_FRAMES

    assert ScriptedPlayer(max_pooled=False).lag_frames == PADDLE_LAG_FRAMES == 2.0
    assert ScriptedPlayer(max_pooled=True).lag_frames == PADDLE_LAG_FRAMES + MAX_POOL_EXTRA_LAG == 2.5


def test_the_same_seed_gives_the_same_random_actions() -> None:
    def actions(seed: int) -> list[int]:
        player = ScriptedPlayer(random_action_prob=0.5, seed=seed)
        return [player.act(synthetic_frame()) for _ in range(100)]

    assert actions(7) == actions(7) and actions(7) != actions(8)


# %% Steering: the set-point, the dead zone, the timed plan


def steering_player(last_action: int = NOOP, target: float = 80.0) -> ScriptedPlayer:
    player = ScriptedPlayer(random_action_prob=0.0, aim_jitter=0.0)  # max-pooled: lag 2.5 frames
    player.last_target, player._last_action = target, last_action
    return player


def test_the_set_point_leads_the_drawn_paddle_by_the_lag_while_a_direction_is_held() -> None:
    """Holding RIGHT, the paddle drawn at 80 is really at 80 + 5.5 x 2.5 = 93.75: on a target there, hold."""
    paddle = PaddleSpan(73, 87)  # centre 80
    assert steering_player(RIGHT, target=93.75)._steer(paddle, None) == 0
    assert steering_player(LEFT, target=66.25)._steer(paddle, None) == 0
    assert steering_player(NOOP, target=93.75)._steer(paddle, None) == 1  # 13.75 px off, past the 11-px dead zone


def test_untimed_steering_holds_within_the_dead_zone_and_moves_by_one_past_it() -> None:
    paddle = PaddleSpan(73, 87)
    assert steering_player(target=91.0)._steer(paddle, None) == 0  # exactly the 11-px dead zone
    assert steering_player(target=69.0)._steer(paddle, None) == 0
    assert steering_player(target=100.0)._steer(paddle, None) == 1
    assert steering_player(target=60.0)._steer(paddle, None) == -1


def test_with_no_dead_zone_half_a_pixel_off_is_steered_toward() -> None:
    player = ScriptedPlayer(random_action_prob=0.0, aim_jitter=0.0, dead_zone=0.0)
    paddle = PaddleSpan(73, 87)  # centre 80
    player.last_target = 80.5
    assert player._steer(paddle, None) == 1
    player.last_target = 79.5
    assert player._steer(paddle, None) == -1


def test_timed_steering_counts_the_frames_left_after_the_lag() -> None:
    """One step (4 frames) to impact, less the 2.5-frame lag: 1.5 frames, an 8.25-px press for 12 px: press."""
    paddle = PaddleSpan(73, 87)
    assert steering_player(target=92.0)._steer(paddle, 1.0) == 1
    assert steering_player(target=92.0)._steer(paddle, 0.5) == 0  # 2 frames < the lag: too late to move
    assert steering_player(target=88.0)._steer(paddle, 1.0) == 1  # within the dead zone, but timed: press


def test_near_impact_the_player_times_a_short_press_that_the_dead_zone_would_skip() -> None:
    """10 px off, 1.125 steps (4.5 frames) to impact, 2 after the lag: a 2-frame press (11 px) ends 1 px off."""
    player = ScriptedPlayer(random_action_prob=0.0, aim_jitter=0.0)
    assert player.act(ball_frame(170.5, 60.5, paddle_left=43)) == NOOP  # untimed: 10 px is inside the dead zone
    assert player.act(ball_frame(178.5, 60.5, paddle_left=43)) == RIGHT
    assert player.view.last_impact == 60.5


# %% Targets: kept while the ball is in the bricks, aimed off by a jitter drawn once per fall


def test_a_vanished_ball_is_aimed_at_for_target_memory_steps_then_forgotten() -> None:
    from rlbreakout.scripted_player import TARGET_MEMORY_STEPS

    player = ScriptedPlayer(random_action_prob=0.0)
    player.act(ball_frame(150.5, 30.5))
    player.act(ball_frame(142.5, 32.5))  # rising: the target is the ball's column
    assert player.last_target == 32.5
    for _ in range(TARGET_MEMORY_STEPS - 1):
        player.act(synthetic_frame())
    assert player.last_target == 32.5, "still in the bricks"
    player.act(synthetic_frame())
    assert player.last_target is None
    player.act(ball_frame(142.5, 40.5))
    assert player.last_target == 40.5


def falling_offsets(player: ScriptedPlayer, steps: int = 3) -> list[float]:
    """A new game and one falling ball: the target minus the predicted column at each step of the fall."""
    player.reset()
    offsets = []
    for k in range(steps + 1):
        player.act(ball_frame(100.5 + 8 * k, 60.5 + 2 * k))
        if player.view.last_impact is not None:
            offsets.append(player.last_target - player.view.last_impact)
    return offsets


@pytest.mark.parametrize("aim_jitter", [2.0, 0.5])
def test_each_fall_is_aimed_off_by_one_jitter_drawn_at_its_first_step(aim_jitter: float) -> None:
    player = ScriptedPlayer(random_action_prob=0.0, aim_jitter=aim_jitter, seed=3)
    falls = [falling_offsets(player) for _ in range(200)]
    assert all(len(set(offsets)) == 1 for offsets in falls), "one offset for the whole fall"
    firsts = np.array([offsets[0] for offsets in falls])
    assert (firsts != 0).all() and np.abs(firsts).max() <= aim_jitter
    assert firsts.min() < -0.8 * aim_jitter and firsts.max() > 0.8 * aim_jitter, "uniform on both sides"
    assert falling_offsets(ScriptedPlayer(random_action_prob=0.0, aim_jitter=0.0)) == [0.0] * 3


def test_no_jitter_is_drawn_before_a_fall_begins() -> None:
    """Until a ball falls, a jittered player's random actions are those of the same seed without jitter."""
    frames = [synthetic_frame()] * 10 + [ball_frame(150.5 - 8 * k, 30.5 + 2 * k) for k in range(6)]  # no ball, rising
    plain = ScriptedPlayer(random_action_prob=0.5, aim_jitter=0.0, seed=7)
    jittered = ScriptedPlayer(random_action_prob=0.5, aim_jitter=2.0, seed=7)
    assert [plain.act(frame) for frame in frames] == [jittered.act(frame) for frame in frames]




def test_player_matches_the_env_frameskip() -> None:
    assert player_for("BreakoutNoFrameskip-v4").frames_per_step == 4
    assert player_for("BreakoutNoFrameskip-v4").max_pooled
    v5 = player_for("ALE/Breakout-v5")
    assert v5.frames_per_step == 4 and not v5.max_pooled
    assert player_for("Breakout-v4").frames_per_step == 3  # ALE's (2, 5) range: 2, 3 or 4 frames


def test_only_breakout() -> None:
    with pytest.raises(ConfigError, match="Breakout only"):
        make_player_env("ALE/Pong-v5")


def test_the_vector_backend_refuses_what_it_cannot_play_and_unknown_backends() -> None:
    with pytest.raises(ConfigError, match="frameskip"):
        make_player_env("Breakout-v4", backend="ale_vector")  # random 2-4 frameskip: no C++ equivalent
    with pytest.raises(ConfigError, match="unknown backend 'gpu'; choose one of: classic, ale_vector"):
        make_player_env("BreakoutNoFrameskip-v4", backend="gpu")


def test_on_the_vector_backend_a_game_over_ends_the_episode_with_its_own_last_frame() -> None:
    """FIRE forever, paddle still: five balls lost; the episode's return is the game's score."""
    env = make_player_env("BreakoutNoFrameskip-v4", backend="ale_vector")
    frame, _ = env.reset(seed=0)
    assert frame.shape == (G.SCREEN_HEIGHT, G.SCREEN_WIDTH, 3) and env.unwrapped.get_action_meanings()[1] == "FIRE"
    score, terminated, truncated, steps = 0.0, False, False, 0
    while not (terminated or truncated):
        frame, reward, terminated, truncated, info = env.step(1)
        score, steps = score + reward, steps + 1
    assert terminated and not truncated and 50 < steps < 5_000
    assert score == info["episode"]["r"]
    first, _ = env.reset()
    assert not np.array_equal(frame, first), "the last frame of the game, not the next game's first"
    # rows 5-14 show the score and the lives left: 0 lives at the game's end, 5 in a new game
    assert not np.array_equal(frame[5:15], first[5:15])
    env.close()


def test_the_vector_backend_refuses_an_env_kwarg_it_cannot_pass_on() -> None:
    with pytest.raises(ConfigError, match=r"env_kwargs \['mode'\] are not supported by backend 'ale_vector'"):
        make_player_env("BreakoutNoFrameskip-v4", backend="ale_vector", env_kwargs={"mode": 4})


@pytest.mark.parametrize("backend", ["classic", "ale_vector"])
def test_the_full_action_space_is_refused_as_the_player_presses_the_minimal_set(backend: str) -> None:
    with pytest.raises(ConfigError, match=r"minimal action set \(NOOP, FIRE, RIGHT, LEFT\); drop full_action_space"):
        make_player_env("BreakoutNoFrameskip-v4", backend=backend, env_kwargs={"full_action_space": True})


def test_the_vector_backend_names_the_actions_as_ale_does() -> None:
    import gymnasium as gym

    from rlbreakout.env_ids import register_ale

    register_ale()
    reference = gym.make("BreakoutNoFrameskip-v4")
    env = make_player_env("BreakoutNoFrameskip-v4", backend="ale_vector")
    assert env.get_action_meanings() == reference.unwrapped.get_action_meanings()
    env.close()
    reference.close()


def last_frame_of_random_play(backend: str, steps: int = 300, **kwargs) -> np.ndarray:
    env = make_player_env("ALE/Breakout-v5", backend=backend, **kwargs)
    frame, _ = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(steps):
        frame, _, terminated, truncated, _ = env.step(int(rng.integers(4)))
        if terminated or truncated:
            frame, _ = env.reset()
    env.close()
    return frame


def test_the_vector_players_env_follows_its_seed_and_the_default_seed_is_0() -> None:
    """v5's sticky actions draw from the env's generator at every step: a seed shows in the frames.

    (The classic env is seeded by ``reset(seed=...)``, as play_scripted_games does each game.)
    """
    backend = "ale_vector"
    assert np.array_equal(last_frame_of_random_play(backend, seed=3), last_frame_of_random_play(backend, seed=3))
    assert not np.array_equal(last_frame_of_random_play(backend, seed=3), last_frame_of_random_play(backend, seed=4))
    assert np.array_equal(last_frame_of_random_play(backend), last_frame_of_random_play(backend, seed=0))


@pytest.mark.parametrize("backend", ["classic", "ale_vector"])
def test_a_frame_limit_truncates_the_game_and_does_not_end_it(backend: str) -> None:
    """No FIRE, no ball: only the 400-frame limit (100 steps of 4) stops the episode."""
    env = make_player_env("BreakoutNoFrameskip-v4", backend=backend, noop_max=0,
                          env_kwargs={"max_num_frames_per_episode": 400})
    env.reset(seed=0)
    for steps in range(1, 200):
        _, _, terminated, truncated, _ = env.step(NOOP)
        if terminated or truncated:
            break
    env.close()
    assert (steps, terminated, truncated) == (100, False, True)


def first_step_frame_numbers(backend: str = "classic", seeds: int = 4, **kwargs) -> list[int]:
    """The emulator's frame number after one step from a reset with each seed 0, 1, ...: the wait at reset."""
    env = make_player_env("BreakoutNoFrameskip-v4", backend=backend, **kwargs)
    numbers = []
    for seed in range(seeds):
        env.reset(seed=seed)
        numbers.append(int(env.step(NOOP)[4]["episode_frame_number"]))
    env.close()
    return numbers


@pytest.mark.parametrize("backend", ["classic", "ale_vector"])
def test_noop_max_0_starts_each_game_at_once_and_the_default_waits_a_random_while(backend: str) -> None:
    at_once = first_step_frame_numbers(backend, noop_max=0)
    assert len(set(at_once)) == 1 and at_once[0] <= 5  # 4 frames of the step (ale-py's vector env: and 1 at reset)
    assert max(first_step_frame_numbers(backend)) > at_once[0]


def test_on_the_classic_backend_noop_max_n_waits_1_to_n_frames_at_each_reset() -> None:
    """SB3's NoopResetEnv: 1 to n no-op frames. (ale-py's vector env draws its own no-ops its own way.)"""
    at_once = first_step_frame_numbers(noop_max=0)[0]
    assert first_step_frame_numbers(seeds=8, noop_max=1) == [at_once + 1] * 8
    three = first_step_frame_numbers(seeds=8, noop_max=3)
    assert set(three) <= {at_once + 1, at_once + 2, at_once + 3} and len(set(three)) > 1


def test_on_the_vector_backend_a_step_pays_the_bricks_points_unclipped() -> None:
    """The aimbot player reaches the 4-point bricks within 1,000 steps (step 168 with seed 0)."""
    env = make_player_env("BreakoutNoFrameskip-v4", backend="ale_vector")
    player = player_for("BreakoutNoFrameskip-v4")
    frame, _ = env.reset(seed=0)
    rewards = []
    for _ in range(1_000):
        frame, reward, terminated, truncated, _ = env.step(player.act(frame))
        rewards.append(reward)
        if reward > 1 or terminated or truncated:
            break
    env.close()
    assert max(rewards) in (4.0, 7.0)


# %% Real games


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["classic", "ale_vector"])
def test_scripted_player_scores_on_a_short_real_game(backend: str) -> None:
    """2000 frames (~500 agent steps; the no-ops at reset count too): a random player scores ~1-2."""
    env_kwargs = {"max_num_frames_per_episode": 2000}
    env = make_player_env("BreakoutNoFrameskip-v4", env_kwargs=env_kwargs, backend=backend)
    player = player_for("BreakoutNoFrameskip-v4", env_kwargs=env_kwargs)
    progress = ProgressLine(500, every=100, enabled=True, stream=io.StringIO())
    games = play_scripted_games(env, player, 1, seed=0, record_steps=10, frame_every=2, progress=progress)
    env.close()
    assert len(games.scores) == 1 and 490 <= games.lengths[0] <= 500 and games.steps == games.lengths[0]
    assert games.scores[0] >= 10
    assert len(games.frames) == 5 and games.frames[0].shape == (G.SCREEN_HEIGHT, 160 + 2 + 210, 3)
    assert not games.unfinished
    assert len(progress.lines) == games.steps // 100 and progress.lines[0].startswith("step 100/500")


def test_step_budget_drops_the_unfinished_game() -> None:
    env = make_player_env("ALE/Breakout-v5")
    games = play_scripted_games(env, player_for("ALE/Breakout-v5"), 2, seed=0, max_steps=40)
    env.close()
    assert games.steps == 40 and games.unfinished and games.scores == []


def test_bad_game_count_and_frame_spacing() -> None:
    with pytest.raises(ConfigError, match=r"^n_games must be >= 1, got 0\.$"):
        play_scripted_games(None, ScriptedPlayer(), 0)
    with pytest.raises(ConfigError, match=r"^frame_every must be >= 1, got 0\.$"):
        play_scripted_games(None, ScriptedPlayer(), 1, frame_every=0)


class RewardLog(gym.Wrapper):
    """The rewards of each episode as the env paid them, to check the scores against."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.returns: list[float] = []

    def reset(self, **kwargs):
        self.returns.append(0.0)
        return self.env.reset(**kwargs)

    def step(self, action):
        frame, reward, terminated, truncated, info = self.env.step(action)
        self.returns[-1] += float(reward)
        return frame, reward, terminated, truncated, info


def capped_env(frames: int = 400, env_id: str = "BreakoutNoFrameskip-v4", **kwargs) -> RewardLog:
    """A real game cut at ``frames`` emulator frames (a quarter as many agent steps)."""
    return RewardLog(make_player_env(env_id, env_kwargs={"max_num_frames_per_episode": frames}, **kwargs))


def test_each_game_is_played_whole_from_a_reset_and_reported_when_it_ends() -> None:
    env = capped_env(noop_max=0)
    ended: list[tuple[int, float, int]] = []
    progress = ProgressLine(300, every=120, enabled=True, stream=io.StringIO())
    games = play_scripted_games(env, player_for("BreakoutNoFrameskip-v4"), 3, seed=0,
                                on_game_end=lambda *end: ended.append(end), progress=progress)
    env.close()
    assert games.lengths == [100, 100, 100] and games.steps == 300
    assert games.scores == env.returns and len(env.returns) == 3, "one reset per game, the score its rewards"
    assert ended == [(game, games.scores[game], 100) for game in range(3)]
    assert games.unfinished is False and 0 < games.wall_seconds < 600
    assert games.frames == [], "no frames unless asked"
    assert progress.lines[1].startswith("step 240/300") and progress.lines[1].endswith(
        "last games: " + " ".join(f"{score:g}" for score in games.scores[:2]))


def test_the_first_games_frames_are_kept_one_in_frame_every() -> None:
    env = capped_env(noop_max=0)
    player = player_for("BreakoutNoFrameskip-v4")
    kept = play_scripted_games(env, player, 1, seed=0, record_steps=10, frame_every=3).frames
    every = play_scripted_games(env, player, 1, seed=0, record_steps=10).frames
    env.close()
    assert len(kept) == 4 and len(every) == 10  # steps 0, 3, 6, 9 of 0-9
    assert all(np.array_equal(a, b) for a, b in zip(kept, every[::3]))
    assert not np.array_equal(every[0], every[9])


def test_the_same_seed_replays_the_same_game_on_sticky_v5() -> None:
    def first_frames(seed: int) -> list[np.ndarray]:
        env = capped_env(env_id="ALE/Breakout-v5")
        frames = play_scripted_games(env, player_for("ALE/Breakout-v5"), 1, seed=seed, record_steps=100).frames
        env.close()
        return frames

    same, again, other = first_frames(4), first_frames(4), first_frames(5)
    assert all(np.array_equal(a, b) for a, b in zip(same, again))
    assert not all(np.array_equal(a, b) for a, b in zip(same, other))


def test_player_for_takes_the_env_kwargs_seed_and_player_settings() -> None:
    skipping = player_for("BreakoutNoFrameskip-v4", env_kwargs={"frameskip": 3})
    assert skipping.frames_per_step == 3.0 and not skipping.max_pooled  # the emulator skips: no MaxAndSkip
    assert player_for("BreakoutNoFrameskip-v4", seed=5).seed == 5 and player_for("ALE/Breakout-v5").seed == 0
    assert player_for("BreakoutNoFrameskip-v4", dead_zone=3.0, aim_jitter=0.0).dead_zone == 3.0


def test_the_classic_players_env_skips_where_the_env_kwargs_say() -> None:
    """frameskip 3 in the emulator: no MaxAndSkip on top, so a step is 3 frames."""
    env = make_player_env("BreakoutNoFrameskip-v4", env_kwargs={"frameskip": 3}, noop_max=0)
    env.reset(seed=0)
    assert env.step(NOOP)[4]["episode_frame_number"] == 3
    env.close()


def test_record_fall_keeps_a_falling_ball_with_its_marker() -> None:
    fall = record_fall("BreakoutNoFrameskip-v4", seed=0, warmup_steps=5)
    assert 1 <= len(fall.frames) == len(fall.observations) == len(fall.impacts)
    assert fall.steps >= 5 and all(impact is not None for impact in fall.impacts[:1])
    first = fall.frames[0]
    assert first.shape == (G.SCREEN_HEIGHT, G.SCREEN_WIDTH, G.SCREEN_CHANNELS)
    assert fall.observations[0].shape == (84, 84, 1)
    assert fall.observations[0][-2:].any(), "the marker rows of the observation are lit"


def test_a_recorded_fall_is_one_falling_ball_until_it_reaches_the_paddle() -> None:
    from rlbreakout.aimbot import detect_ball

    whole = record_fall("BreakoutNoFrameskip-v4", seed=0, max_frames=100)
    balls = [detect_ball(frame) for frame in whole.frames]
    assert len(balls) >= 5 and all(ball is not None for ball in balls)
    assert all(a.row < b.row for a, b in zip(balls, balls[1:])), "falling all the way"
    assert balls[-1].row > G.PADDLE_ROW - 20, "ends at the paddle"
    assert all(impact is not None for impact in whole.impacts)
    assert record_fall("BreakoutNoFrameskip-v4", seed=0, max_frames=100).frames[0].tobytes() == whole.frames[0].tobytes()


def test_a_fall_keeps_at_most_max_frames_from_the_first_step_past_the_warm_up() -> None:
    first = record_fall("BreakoutNoFrameskip-v4", seed=0, max_frames=3)
    assert len(first.frames) == 3
    start = first.steps - 3  # the step of its first frame: it ended on taking the third
    again = record_fall("BreakoutNoFrameskip-v4", seed=0, max_frames=3, warmup_steps=start)
    assert all(np.array_equal(a, b) for a, b in zip(again.frames, first.frames)), "a warm-up of exactly that many steps"
    assert record_fall("BreakoutNoFrameskip-v4", max_frames=3).steps == first.steps, "seed 0 by default"


def test_a_fall_counts_the_env_steps_it_took() -> None:
    """Its frames are those the same player and env see before the last of exactly ``steps`` steps."""
    fall = record_fall("BreakoutNoFrameskip-v4", seed=0, max_frames=3)
    env, player = make_player_env("BreakoutNoFrameskip-v4"), player_for("BreakoutNoFrameskip-v4", aim_jitter=0.0)
    frame, _ = env.reset(seed=0)
    seen = []
    for _ in range(fall.steps):
        seen.append(frame)
        frame = env.step(player.act(frame))[0]
    env.close()
    assert all(np.array_equal(a, b) for a, b in zip(seen[-3:], fall.frames, strict=True))


def test_with_no_fall_in_reach_the_last_frame_is_kept_alone() -> None:
    """Two steps: no fall had begun on the frames the player acted on; the frame after them is kept."""
    fall = record_fall("BreakoutNoFrameskip-v4", seed=0, max_extra_steps=2)
    assert fall.steps == 2 and len(fall.frames) == len(fall.observations) == len(fall.impacts) == 1
    env, player = make_player_env("BreakoutNoFrameskip-v4"), player_for("BreakoutNoFrameskip-v4", aim_jitter=0.0)
    frame, _ = env.reset(seed=0)
    for _ in range(2):
        frame = env.step(player.act(frame))[0]
    env.close()
    observation = player.view(frame)  # the view of it, tracking since the reset
    assert np.array_equal(fall.frames[0], frame) and np.array_equal(fall.observations[0], observation)
    assert fall.impacts == [player.view.last_impact]


def test_a_fall_is_played_on_an_env_and_by_a_player_seeded_with_its_seed_and_aiming_without_jitter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The pictures show the paddle going to the marker itself, the same for the same seed."""
    envs, players = [], []

    def env_spy(env_id: str, **kwargs) -> gym.Env:
        envs.append(kwargs)
        return make_player_env(env_id, **kwargs)

    def player_spy(env_id: str, **kwargs) -> ScriptedPlayer:
        players.append(player_for(env_id, **kwargs))
        return players[-1]

    monkeypatch.setattr(scripted_player, "make_player_env", env_spy)
    monkeypatch.setattr(scripted_player, "player_for", player_spy)
    record_fall("BreakoutNoFrameskip-v4", seed=5, max_extra_steps=2)
    record_fall("BreakoutNoFrameskip-v4", max_extra_steps=2)
    record_fall("BreakoutNoFrameskip-v4", max_extra_steps=2, env_kwargs={"frameskip": 3})
    assert [env["seed"] for env in envs] == [player.seed for player in players] == [5, 0, 0]
    assert [player.aim_jitter for player in players] == [0.0, 0.0, 0.0]
    # the env_kwargs reach both: the emulator skips 3 frames, and the player's paddle model knows it
    assert [env["env_kwargs"] for env in envs] == [None, None, {"frameskip": 3}]
    assert [player.frames_per_step for player in players] == [4.0, 4.0, 3.0]


def test_a_game_that_ends_before_a_fall_is_followed_by_the_next_one() -> None:
    """400 frames a game (100 steps, less the no-ops): a warm-up of 150 steps outlasts the first game."""
    limit = {"max_num_frames_per_episode": 400}
    fall = record_fall("BreakoutNoFrameskip-v4", seed=0, warmup_steps=150, max_frames=3, env_kwargs=limit)
    assert len(fall.frames) == 3 and all(impact is not None for impact in fall.impacts) and fall.steps > 150
    # The same steps by hand, a new game (and a reset player) after the first one is cut off
    env = make_player_env("BreakoutNoFrameskip-v4", env_kwargs=limit)
    player = player_for("BreakoutNoFrameskip-v4", env_kwargs=limit, aim_jitter=0.0)
    frame, _ = env.reset(seed=0)
    seen, game_starts = [], []
    for step in range(1, fall.steps + 1):
        seen.append(frame)
        frame, _, terminated, truncated, _ = env.step(player.act(frame))
        if terminated or truncated:
            frame, _ = env.reset()
            player.reset()
            game_starts.append(step)
    env.close()
    assert len(game_starts) == 1 and game_starts[0] <= 100, "the first game was cut off, the second one not"
    assert fall.steps - 3 >= game_starts[0], "the fall is the second game's"
    assert all(np.array_equal(a, b) for a, b in zip(seen[-3:], fall.frames, strict=True))
