"""The tag registry: the README tag tables are written from it, and TensorBoard shows each tag's meaning."""

from __future__ import annotations

from pathlib import Path

import pytest
from stable_baselines3.common.logger import configure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO_ROOT, TINY_PPO_FLAGS, run_script, tensorboard_runs, tensorboard_scalars
from rlbreakout.callbacks import tensorboard_writer
from rlbreakout.errors import RLBreakoutError
from rlbreakout.tags import (
    EVAL_FLAG,
    MEANINGS_BLOCKS,
    SCRIPTS,
    SCRIPTS_BLOCKS,
    TAGS,
    description,
    find,
    matches,
    render_block,
    rewrite_tag_blocks,
    script_tags,
    tag_block_names,
)

READMES = [REPO_ROOT / "README.md", *sorted(REPO_ROOT.glob("*/README.md"))]


def test_every_readme_tag_table_is_what_the_registry_writes() -> None:
    stale = [readme.relative_to(REPO_ROOT).as_posix() for readme in READMES
             if rewrite_tag_blocks(readme.read_text()) != readme.read_text()]
    assert not stale, f"README tag tables differ from rlbreakout/tags.py: run python pictures/make_tables.py ({stale})"


def test_every_tag_block_is_in_a_readme() -> None:
    names = [name for readme in READMES for name in tag_block_names(readme.read_text())]
    assert sorted(names) == sorted([*MEANINGS_BLOCKS, *SCRIPTS_BLOCKS])


def test_every_tag_a_script_writes_has_a_meaning_and_a_rule_of_thumb() -> None:
    for script, writes in SCRIPTS.items():
        for tag in (tag for each in writes for tag in each.tags):
            entry = find(tag)
            assert entry is not None, f"{script} writes {tag}, which rlbreakout/tags.py does not describe"
            assert entry.meaning and entry.healthy
    assert len({tag.name for tag in TAGS}) == len(TAGS)


def test_a_template_stands_for_one_path_part() -> None:
    assert find("eval/v5/mean_reward").name == "eval/<name>/mean_reward"
    assert find("eval/a/b/mean_reward") is None and find("eval/v5/mean_rewardx") is None
    assert description("nonsense/tag") == ""
    assert description("game/score").startswith("The unclipped score of one whole training game")


def test_optional_tags_come_with_their_flag() -> None:
    assert "train/clipped_value_loss" not in script_tags("2.4_ppo_atari_from_scratch")
    assert "train/clipped_value_loss" in script_tags("2.4_ppo_atari_from_scratch", ["`--loss cleanrl`"])
    assert not any(tag.startswith("eval/") for tag in script_tags("2.4_ppo_atari_from_scratch"))
    with pytest.raises(RLBreakoutError, match="no tags registered"):
        script_tags("9.9_nothing")


def test_the_scripts_table_says_what_2_4_writes_and_what_cleanrl_adds() -> None:
    row = next(line for line in render_block("chapter2-scripts").splitlines() if "2.4_ppo" in line)
    assert "SB3's PPO tags, `game/{score, length}`" in row and "`--loss cleanrl`: `train/clipped_value_loss`" in row
    assert "eval/" not in row


def test_an_unknown_block_is_one_clear_error() -> None:
    with pytest.raises(RLBreakoutError, match="unknown tags block"):
        render_block("nonsense")


def test_tensorboard_shows_each_described_tags_meaning(tmp_path: Path) -> None:
    logger = configure(str(tmp_path / "PPO_1"), ["tensorboard"])
    writer = tensorboard_writer(logger)
    assert tensorboard_writer(logger) is writer  # wrapped once
    for step in (10, 20):
        logger.record("rollout/ep_rew_mean", 1.5 * step)
        logger.record("eval/v5/median_reward", 2.0)
        logger.record("custom/unknown", 3.0)
        logger.dump(step)
    writer.add_scalar("game/score", 4.0, 30)
    logger.close()
    scalars = tensorboard_scalars(tmp_path)
    assert scalars["rollout/ep_rew_mean"].description == description("rollout/ep_rew_mean") != ""
    assert scalars["eval/v5/median_reward"].description == description("eval/v5/median_reward") != ""
    assert scalars["game/score"].description == description("game/score")
    assert scalars["custom/unknown"].description == ""
    assert scalars["rollout/ep_rew_mean"].steps == [10, 20]  # the described first value is a value too
    assert scalars["rollout/ep_rew_mean"].values == [15.0, 30.0]
    accumulator = EventAccumulator(str(tmp_path / "PPO_1"))  # the older loader reads the same metadata
    accumulator.Reload()
    assert accumulator.SummaryMetadata("game/score").summary_description == description("game/score")


# %% Each training script's tiny run writes the tags its README row says, each with its meaning
#: A few hundred steps: enough for whole training games (game/score) and one update (train/*).
SB3_RUN = [*TINY_PPO_FLAGS, "--timesteps", "512", "--gif-games", "0"]
SB3_EVAL = [*SB3_RUN, "--eval-freq", "512"]
SCRATCH_RUN = ["--timesteps", "512", "--n-envs", "2", "--num-steps", "64", "--update-epochs", "1", "--eval-games", "0",
               "--gif-games", "0", "--device", "cpu", "--torch-threads", "1"]
TRIALS = ["--timesteps", "512", "--n-envs", "2", "--eval-episodes", "1", "--evals-per-trial", "1", "--device", "cpu"]
RETRO = ["--game", "Airstriker-Genesis", "--max-episode-steps", "60", "--device", "cpu"]
CLEANRL = "`--loss cleanrl`"
COLLAPSE = EVAL_FLAG + " and `--collapse-fraction` > 0"
TAG_RUNS = [
    pytest.param("1_gym/1.3_train.py", SB3_RUN, (), id="1.3"),
    pytest.param("2_baselines/2.1_envs.py", SB3_RUN, (), id="2.1"),
    pytest.param("2_baselines/2.2_callbacks.py", SB3_EVAL, (EVAL_FLAG,), id="2.2"),
    pytest.param("2_baselines/2.3_copying_hp_zoo.py", SB3_EVAL, (EVAL_FLAG,), id="2.3"),
    pytest.param("2_baselines/2.4_ppo_atari_from_scratch.py", SCRATCH_RUN, (), id="2.4"),
    pytest.param("2_baselines/2.4_ppo_atari_from_scratch.py", [*SCRATCH_RUN, "--loss", "cleanrl"], (CLEANRL,),
                 id="2.4-cleanrl"),
    pytest.param("2_baselines/2.5_ppo_fast.py", [*SCRATCH_RUN, "--precision", "fp32"], (), id="2.5"),
    pytest.param("3_obswrapper/3.3_aimbot_training.py", SB3_EVAL, (EVAL_FLAG,), id="3.3"),
    pytest.param("0_setup/0.3_demo.py", SB3_EVAL, (EVAL_FLAG,), id="0.3"),
    pytest.param("4_tuning/4.0_wrapperOptuna_PPO.py", [*TRIALS, "--n-trials", "1", "--top-k", "1",
                                                       "--promote-timesteps", "512", "--promote-eval-episodes", "1"],
                 (), id="4.0"),
    pytest.param("4_tuning/4.1_PPO_env_comparison.py", [*SB3_EVAL, "--train-envs", "BreakoutNoFrameskip-v4"],
                 (EVAL_FLAG,), id="4.1"),
    pytest.param("4_tuning/4.2_PPO_tuning_grid.py", [*TRIALS, "--batch-sizes", "64", "--n-epochs-grid", "1",
                                                     "--n-steps-grid", "64"], (), id="4.2"),
    pytest.param("4_tuning/4.3_PPO_tuning_schedules.py", [*TRIALS, "--n-trials", "1", "--n-steps", "64",
                                                          "--batch-size", "64"], (), id="4.3"),
    pytest.param("5_sonic/5.1_jerk.py", [*RETRO, "--timesteps", "300"], (), id="5.1", marks=pytest.mark.retro),
    pytest.param("5_sonic/5.2_ppo_sonic.py", [*RETRO, "--timesteps", "256", "--n-envs", "2", "--n-steps", "64",
                                              "--batch-size", "64", "--n-epochs", "1", "--eval-freq", "64",
                                              "--eval-episodes", "1", "--gif-max-steps", "0"],
                 (EVAL_FLAG, COLLAPSE), id="5.2", marks=pytest.mark.retro),
    pytest.param("5_sonic/5.3_dqn_sonic.py", [*RETRO, "--timesteps", "200", "--buffer-size", "500", "--learning-starts",
                                              "100", "--target-update", "50", "--eval-freq", "100",
                                              "--eval-episodes", "1", "--gif-max-steps", "0"],
                 (EVAL_FLAG, COLLAPSE), id="5.3", marks=pytest.mark.retro),
]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "flags", "when"), TAG_RUNS)
def test_a_script_writes_the_tags_its_readme_says_each_with_its_meaning(script: str, flags: list[str],
                                                                        when: tuple[str, ...], logdir: Path) -> None:
    run_script(script, *flags, "--logdir", str(logdir))
    runs = tensorboard_runs(logdir)
    written = {tag for tags in runs.values() for tag in tags}
    promised = script_tags(Path(script).stem, when)  # what the README's row of this script says
    assert not [tag for tag in written if not any(matches(template, tag) for template in promised)], \
        f"{script} writes tags its README row lacks"
    assert not [template for template in promised if not any(matches(template, tag) for tag in written)], \
        f"{script} does not write tags its README row promises"
    undescribed = {(run, tag) for run, tags in runs.items() for tag, series in tags.items()
                   if not series.description or series.description != description(tag)}
    assert not undescribed, f"TensorBoard shows no (or another) description for {sorted(undescribed)}"
