"""MultiEnvEvalCallback, GameScoreCallback and checkpoints: fake envs with known answers, real games from make_env."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fakes import FakeModel, scripted_vec_env
from rlbreakout.callbacks import (
    BEST_MODEL_FILE,
    LATEST_CHECKPOINT,
    PREVIOUS_CHECKPOINT,
    DescribedWriter,
    MultiEnvEvalCallback,
    StepCheckpointCallback,
    ctrl_c_held,
)
from rlbreakout.envs import make_env
from rlbreakout.errors import ConfigError
from rlbreakout.tags import description
from stable_baselines3.common.evaluation import evaluate_policy


def _drive(callback: MultiEnvEvalCallback, model: FakeModel, until: int) -> None:
    """Advance the fake model n_envs steps per call, as SB3 does, calling the callback each time."""
    while model.num_timesteps < until:
        model.num_timesteps += model.n_envs
        callback.on_step()


def test_statistics_on_known_returns_spread_evenly_over_envs(tmp_path: Path) -> None:
    # env 0 plays quick games of 10, 20, 30; env 1 a 1-point game, then a long 1000-point game.
    # Taking the first 4 games to finish would skip the long one; spreading 2 per env keeps it.
    venv = scripted_vec_env([[10, 20, 30], [1, 1000]], [[2, 2, 2], [3, 50]])
    model = FakeModel()
    callback = MultiEnvEvalCallback({"v4NoFS": venv}, eval_freq=100, n_eval_episodes=4, best_model_save_path=tmp_path)
    callback.init_callback(model)
    _drive(callback, model, 100)
    stats = callback.last_results["v4NoFS"]
    games = [10, 20, 1, 1000]
    assert stats["mean_reward"] == pytest.approx(np.mean(games))
    assert stats["median_reward"] == pytest.approx(np.median(games))
    assert stats["std_reward"] == pytest.approx(np.std(games))
    assert stats["q25_reward"] == pytest.approx(np.quantile(games, 0.25))
    assert stats["mean_ep_length"] == pytest.approx(np.mean([2, 2, 3, 50]))
    logged = model.writer.dumps[-1][1]
    for key in ("mean_reward", "median_reward", "std_reward", "q25_reward", "mean_ep_length"):
        assert f"eval/v4NoFS/{key}" in logged


def test_eval_freq_counts_env_steps_not_calls(tmp_path: Path) -> None:
    venv = scripted_vec_env([[1]], [[1]])
    model = FakeModel(n_envs=8)
    callback = MultiEnvEvalCallback({"eval": venv}, eval_freq=100, n_eval_episodes=1, verbose=0)
    callback.init_callback(model)
    _drive(callback, model, 1000)
    assert [step for step, _ in callback.history] == [104, 200, 304, 400, 504, 600, 704, 800, 904, 1000]


def test_several_named_envs_and_best_model_for_chosen_name(tmp_path: Path) -> None:
    # Each evaluation resets (one game) and the auto-reset after its end skips one more,
    # so v5 plays games 0, 2, 4, ...: scores 1, 9, 1, 9, ...
    envs = {"v4": scripted_vec_env([[5]], [[1]]), "v5": scripted_vec_env([[1, 0, 9, 0]], [[1, 1, 1, 1]])}
    model = FakeModel()
    callback = MultiEnvEvalCallback(envs, eval_freq=8, n_eval_episodes=1, best_model_env="v5",
                                    best_model_save_path=tmp_path, verbose=0)
    callback.init_callback(model)
    _drive(callback, model, 32)
    v5_scores = [results["v5"]["mean_reward"] for _, results in callback.history]
    assert set(v5_scores) == {1.0, 9.0}
    first_best_step = callback.history[v5_scores.index(9.0)][0]
    assert model.saved[-1][0] == first_best_step
    assert (tmp_path / BEST_MODEL_FILE).read_text() == f"weights at {first_best_step}"
    assert callback.best_score == 9.0


def test_a_negative_checkpoint_frequency_is_refused_and_0_saves_only_on_demand(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^checkpoint frequency must be >= 0 env steps, got -1\.$"):
        StepCheckpointCallback(-1, tmp_path)
    model = FakeModel(n_envs=1)
    callback = StepCheckpointCallback(0, tmp_path / "checkpoints")
    callback.init_callback(model)
    for _ in range(50):
        model.num_timesteps += 1
        callback.on_step()
    assert model.saved == [] and (tmp_path / "checkpoints").is_dir()
    assert callback.save() == tmp_path / "checkpoints" / LATEST_CHECKPOINT and [step for step, _ in model.saved] == [50]


def test_eval_freq_zero_never_evaluates() -> None:
    model = FakeModel()
    callback = MultiEnvEvalCallback({"eval": scripted_vec_env([[1]], [[1]])}, eval_freq=0, n_eval_episodes=1)
    callback.init_callback(model)
    _drive(callback, model, 500)
    assert callback.history == []


def test_bad_arguments() -> None:
    venv = scripted_vec_env([[1]], [[1]])
    with pytest.raises(ConfigError, match="best_model_env"):
        MultiEnvEvalCallback({"eval": venv}, eval_freq=1, best_model_env="v5")
    with pytest.raises(ConfigError, match=r"^MultiEnvEvalCallback needs at least one eval env\.$"):
        MultiEnvEvalCallback({}, eval_freq=1)
    with pytest.raises(ConfigError, match=r"^eval_freq must be >= 0 env steps, got -1\.$"):
        MultiEnvEvalCallback({"eval": venv}, eval_freq=-1)
    with pytest.raises(ConfigError, match=r"^n_eval_episodes must be >= 1, got 0\.$"):
        MultiEnvEvalCallback({"eval": venv}, eval_freq=1, n_eval_episodes=0)
    with pytest.raises(ConfigError, match=r"^best_metric must be mean_reward or median_reward, got 'max_reward'\.$"):
        MultiEnvEvalCallback({"eval": venv}, eval_freq=1, best_metric="max_reward")
    assert MultiEnvEvalCallback({"eval": venv}, eval_freq=1, best_metric="median_reward").best_metric == "median_reward"


class RandomModel(FakeModel):
    """A FakeModel that presses random buttons (its own generator), so real games score and end."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(n_envs=1)
        self.rng = np.random.default_rng(seed)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = False) -> tuple[np.ndarray, None]:
        super().predict(observation, state, episode_start, deterministic)
        return self.rng.integers(0, 4, size=len(observation)), None


def _play_one_game(venv: Any, model: RandomModel) -> tuple[list[float], dict]:
    """Step ``venv`` with ``model`` until the Monitor reports a game; the clipped reward summed per life."""
    observations = venv.reset()
    life_rewards, life_reward = [], 0.0
    for _ in range(10_000):
        actions, _ = model.predict(observations)
        observations, reward, done, infos = venv.step(actions)
        life_reward += float(reward[0])
        if done[0]:
            life_rewards.append(life_reward)
            life_reward = 0.0
        if "episode" in infos[0]:
            return life_rewards, infos[0]["episode"]
    raise AssertionError("no game ended in 10,000 steps")


def test_whole_game_score_versus_per_life_clipped_reward() -> None:
    # The factory's own order (make_env): Monitor (whole game, raw points) under EpisodicLife and ClipReward.
    venv = make_env("BreakoutNoFrameskip-v4", 1, seed=0, frame_stack=1)
    life_rewards, game = _play_one_game(venv, RandomModel(seed=5))
    venv.close()
    assert len(life_rewards) == 5  # what PPO sees: 5 "episodes", one per life, of clipped +1 bricks
    assert all(reward == int(reward) for reward in life_rewards)
    assert game["r"] >= sum(life_rewards) > 0  # what a player sees: one game of raw points (1, 4 or 7 a brick)


def test_sb3_evaluate_policy_counts_whole_games_under_the_life_wrapper() -> None:
    # What the eval callback and every chapter script rely on: SB3's evaluate_policy reads the
    # Monitor under EpisodicLife, so it returns whole-game scores, not per-life clipped ones.
    venv = make_env("BreakoutNoFrameskip-v4", 1, seed=0, frame_stack=1)
    life_rewards, game = _play_one_game(venv, RandomModel(seed=5))
    scores, lengths = evaluate_policy(RandomModel(seed=5), make_env("BreakoutNoFrameskip-v4", 1, seed=0, frame_stack=1),
                                      n_eval_episodes=1, return_episode_rewards=True)
    venv.close()
    assert scores == [game["r"]] and lengths == [game["l"]]  # the same game, to the point and the frame
    assert len(life_rewards) == 5


def test_evaluation_samples_actions_unless_asked_for_greedy_ones() -> None:
    # Breakout agents often stall when greedy, so every evaluation samples from the policy by default.
    for kwargs, expected in (({}, {False}), ({"deterministic": True}, {True})):
        model = FakeModel(n_envs=1)
        callback = MultiEnvEvalCallback({"eval": scripted_vec_env([[3]], [[4]])}, eval_freq=1, n_eval_episodes=2,
                                        verbose=0, **kwargs)
        callback.init_callback(model)
        _drive(callback, model, 1)
        assert model.deterministic_calls and set(model.deterministic_calls) == expected


def test_ctrl_c_inside_a_held_block_is_raised_when_it_ends() -> None:
    # Python's own Ctrl-C handler, as in a terminal (a suite started in the background ignores SIGINT)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    finished = False
    try:
        with pytest.raises(KeyboardInterrupt):
            with ctrl_c_held():
                os.kill(os.getpid(), signal.SIGINT)  # delivered now, held until the block ends
                finished = True
        assert finished and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_held_block_without_ctrl_c_raises_nothing_and_an_ignored_one_stays_ignored() -> None:
    with ctrl_c_held():
        pass
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ctrl_c_held():
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_checkpoints_come_every_save_freq_env_steps_of_a_real_training(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from stable_baselines3 import PPO

    # 2 envs: the step count goes 2, 4, 6, ...; a save lands on each multiple of 40 (not of 40 calls)
    venv = make_env("BreakoutNoFrameskip-v4", 2, seed=0, frame_stack=1)
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    capsys.readouterr()
    callback = StepCheckpointCallback(40, tmp_path / "nested" / "checkpoints", verbose=1)
    model.learn(128, callback=callback)
    venv.close()
    folder = tmp_path / "nested" / "checkpoints"
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("checkpoint at")]
    assert lines == [f"checkpoint at {step} steps: {folder / LATEST_CHECKPOINT}" for step in (40, 80, 120)]
    steps = {name: PPO.load(folder / name, device="cpu").num_timesteps for name in (LATEST_CHECKPOINT, PREVIOUS_CHECKPOINT)}
    assert steps == {LATEST_CHECKPOINT: 120, PREVIOUS_CHECKPOINT: 80}, "the newest, and the one it replaced"
    # on demand at 128 (as Ctrl-C saves), then again at the same step, which writes nothing
    assert callback.save() == folder / LATEST_CHECKPOINT
    assert capsys.readouterr().out == f"checkpoint at 128 steps: {folder / LATEST_CHECKPOINT}\n"
    assert callback.save() == folder / LATEST_CHECKPOINT and not capsys.readouterr().out
    assert PPO.load(folder / PREVIOUS_CHECKPOINT, device="cpu").num_timesteps == 120
    quiet = StepCheckpointCallback(40, tmp_path / "quiet")  # verbose 0 by default, as SB3's callbacks
    quiet.init_callback(model)
    assert quiet.save().is_file() and not capsys.readouterr().out
    tmp_path = folder
    # resumed at 128: the next multiple of 40 is 160, not the first step
    venv = make_env("BreakoutNoFrameskip-v4", 2, seed=0, frame_stack=1)
    model.set_env(venv)
    model.learn(64, callback=StepCheckpointCallback(40, tmp_path, verbose=1), reset_num_timesteps=False)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("checkpoint at")]
    assert lines == [f"checkpoint at 160 steps: {tmp_path / LATEST_CHECKPOINT}"]
    # a save_freq of 1: every env step is a multiple, so one rollout (16 steps of 2 envs) saves at each
    start, every_step = model.num_timesteps, tmp_path / "every_step"
    model.learn(2, callback=StepCheckpointCallback(1, every_step), reset_num_timesteps=False)
    venv.close()
    assert PPO.load(every_step / PREVIOUS_CHECKPOINT, device="cpu").num_timesteps == start + 30


def test_a_real_training_logs_each_games_score_the_table_and_progress_lines(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Games cut at 100 frames (25 agent steps): each ends in a TensorBoard point, read back with TensorBoard's reader."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rlbreakout.callbacks import GameScoreCallback, HyperparamTableCallback, ProgressLineCallback

    venv = make_env("BreakoutNoFrameskip-v4", 2, seed=0, frame_stack=1, env_kwargs={"max_num_frames_per_episode": 100})
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path), ["tensorboard"]))
    scores, table = GameScoreCallback(), HyperparamTableCallback("| parameter | value |\n|---|---|\n| n_steps | 16 |")
    progress = ProgressLineCallback(128, every=32, enabled=True)
    capsys.readouterr()
    model.learn(128, callback=[scores, table, progress])
    venv.close()
    model.logger.close()
    assert len(scores.scores) == len(scores.lengths) >= 4 and set(scores.lengths) == {100}  # 100 emulator frames
    assert progress.scores == scores.scores
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step ")]
    assert [line.split(" (")[0] for line in lines] == ["step 32/128", "step 64/128", "step 96/128", "step 128/128"]
    assert lines[-1].endswith("last games: " + " ".join(f"{s:g}" for s in scores.scores[-5:]))
    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    logged = events.Scalars("game/score")
    assert [point.value for point in logged] == scores.scores
    assert [point.value for point in events.Scalars("game/length")] == [100.0] * len(scores.lengths)
    assert all(0 < point.step <= 128 for point in logged) and [p.step for p in logged] == sorted(p.step for p in logged)
    assert [point.step for point in events.Scalars("game/length")] == [point.step for point in logged]
    (text,) = events.Tensors("hyperparameters/text_summary")
    assert text.step == 0 and b"| n_steps | 16 |" in text.tensor_proto.string_val[0]

    # resumed at 128: the table is written at the step training starts from, the lines go on from there,
    # and enabled=False prints none even where no terminal shows a bar
    model.set_logger(configure(str(tmp_path / "resumed"), ["tensorboard"]))
    resumed, quiet = ProgressLineCallback(192, every=32, enabled=True), ProgressLineCallback(192, every=32, enabled=False)
    capsys.readouterr()
    model.learn(64, callback=[HyperparamTableCallback("| again |", tag="again"), resumed, quiet],
                reset_num_timesteps=False)
    model.logger.close()
    assert [line.split(" (")[0] for line in resumed.progress.lines] == ["step 160/192", "step 192/192"]  # type: ignore[union-attr]
    assert quiet.progress is not None and quiet.progress.lines == []
    assert [line.split(" (")[0] for line in capsys.readouterr().out.splitlines() if line.startswith("step ")] == [
        "step 160/192", "step 192/192"]
    events = EventAccumulator(str(tmp_path / "resumed"), size_guidance={"tensors": 0})
    events.Reload()
    assert [text.step for text in events.Tensors("again/text_summary")] == [128]


CAPPED = {"max_num_frames_per_episode": 100}  # 25 agent steps a game: evaluations take a moment


class AfterEval(MultiEnvEvalCallback):
    """Records what each evaluation handed its hook, and stops training when told to."""

    def __init__(self, *args: Any, stop_after: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handed: list[dict] = []
        self.seconds: list[float] = []
        self.stop_after = stop_after

    def after_evaluation(self, results: dict) -> bool:
        self.handed.append(results)
        self.seconds.append(self.eval_seconds)
        return self.stop_after is None or len(self.handed) < self.stop_after


def test_before_any_evaluation_the_figures_are_sb3s_starting_values() -> None:
    venv = make_env("BreakoutNoFrameskip-v4", 1, frame_stack=1)
    callback = MultiEnvEvalCallback({"nf": venv}, 64)
    venv.close()
    assert (callback.n_eval_episodes, callback.verbose, callback.next_eval_step, callback.eval_seconds) == (10, 1, 64, 0.0)
    assert callback.best_mean_reward == callback.last_mean_reward == -np.inf and callback.last_results == {}
    assert callback.best_metric == "mean_reward"


@pytest.mark.slow
def test_a_real_training_evaluates_on_schedule_logs_eval_tags_and_keeps_the_best(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import configure
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    class Count(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def _on_step(self) -> bool:
            self.calls += 1
            return True

    venv = make_env("BreakoutNoFrameskip-v4", 2, seed=0, frame_stack=1, env_kwargs=CAPPED)
    evals = {"nf": make_env("BreakoutNoFrameskip-v4", 1, seed=1, frame_stack=1, env_kwargs=CAPPED)}
    model = PPO("CnnPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path / "log"), ["tensorboard", "csv"]))
    after, best = Count(), tmp_path / "a" / "b"  # a folder two levels down: made with its parents
    callback = AfterEval(evals, 64, 2, best_model_save_path=best, best_metric="median_reward", callback_after_eval=after)
    capsys.readouterr()
    model.learn(128, callback=callback)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("eval ")]
    steps = [step for step, _ in callback.history]
    assert steps == [64, 128] and after.calls == 2 and callback.handed == [results for _, results in callback.history]
    assert printed == [f"eval nf @ {step} steps: mean {results['nf']['mean_reward']:.1f}, median "
                       f"{results['nf']['median_reward']:.1f} over 2 games" for step, results in callback.history]
    means = [results["nf"]["mean_reward"] for _, results in callback.history]
    assert callback.last_results == callback.history[-1][1] and callback.last_mean_reward == means[-1]
    assert callback.best_mean_reward == means[0] and (best / BEST_MODEL_FILE).is_file()  # the first is the best so far
    assert callback.history[0][1]["nf"]["mean_ep_length"] == 100.0  # emulator frames, as Monitor counts them
    assert 0 < callback.seconds[0] < callback.seconds[1] < 600
    model.logger.close()
    events = EventAccumulator(str(tmp_path / "log"), size_guidance={"scalars": 0})
    events.Reload()
    for key in ("mean_reward", "median_reward", "std_reward", "q25_reward", "mean_ep_length"):
        logged = events.Scalars(f"eval/nf/{key}")
        assert [(p.step, p.value) for p in logged] == [(s, pytest.approx(r["nf"][key])) for s, r in callback.history]
    assert "time/total_timesteps" not in events.Tags()["scalars"]
    # the evaluation callback alone gives its tags their meaning in TensorBoard
    assert events.SummaryMetadata("eval/nf/mean_reward").summary_description == description("eval/nf/mean_reward") != ""
    csv = (tmp_path / "log" / "progress.csv").read_text().splitlines()
    header = csv[0].split(",")
    total, mean = header.index("time/total_timesteps"), header.index("eval/nf/mean_reward")
    eval_rows = [row.split(",") for row in csv[1:] if row.split(",")[mean]]
    assert [row[total] for row in eval_rows] == ["64", "128"], "each evaluation's row says its step outside TensorBoard"

    # resumed at 128 with evaluations every 48 steps: the next is at 144, the next multiple, then 192
    model.set_logger(configure(str(tmp_path / "resumed"), ["csv"]))
    resumed = AfterEval(evals, 48, 1, verbose=0)
    capsys.readouterr()
    model.learn(64, callback=resumed, reset_num_timesteps=False)
    assert [step for step, _ in resumed.history] == [144, 192]
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("eval ")], "verbose 0: quiet"

    # the base class's hook goes on training after each evaluation
    plain = MultiEnvEvalCallback(evals, 16, 1, verbose=0)
    model.learn(32, callback=plain, reset_num_timesteps=False)
    assert [step for step, _ in plain.history] == [208, 224] and model.num_timesteps == 224

    # the hook's False, or the chained callback's, stops training at that evaluation
    stopping = AfterEval(evals, 16, 1, verbose=0, stop_after=1)
    model.learn(64, callback=stopping, reset_num_timesteps=False)
    assert len(stopping.history) == 1 and model.num_timesteps == 224 + 16
    evals["nf"].close()
    venv.close()


def test_only_a_described_tags_first_value_carries_its_meaning_and_each_value_keeps_its_wall_time(
        tmp_path: Path) -> None:
    """Read back event by event as TensorBoard reads its files: metadata, wall times, and torch's options passed on."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto.event_pb2 import Event
    from torch.utils.tensorboard import SummaryWriter

    described, plain = "eval/nf/mean_reward", "zz/a_tag_with_no_meaning"
    assert description(described) and not description(plain)
    writer = DescribedWriter(SummaryWriter(str(tmp_path)))
    for step in (1, 2):
        writer.add_scalar(described, float(step), step, walltime=1000.0 + step)
        writer.add_scalar(plain, float(step), step, walltime=2000.0 + step)
    writer.add_scalar(plain + "_new_style", 5.0, 3, new_style=True)  # a tensor summary instead of a simple value
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    events = [Event.FromString(record) for record in RawEventFileLoader(str(path)).Load()]
    values = [(value.tag, event.step, event.wall_time, value.metadata.display_name, value.metadata.summary_description,
               value.WhichOneof("value")) for event in events for value in event.summary.value]
    assert values == [(described, 1, 1001.0, described, description(described), "simple_value"),
                      (plain, 1, 2001.0, "", "", "simple_value"),
                      (described, 2, 1002.0, "", "", "simple_value"),
                      (plain, 2, 2002.0, "", "", "simple_value"),
                      (plain + "_new_style", 3, values[-1][2], "", "", "tensor")]
