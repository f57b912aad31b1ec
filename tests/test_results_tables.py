"""The README results blocks: written from the ledger alone, and guarded against drifting from it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run_script
from rlbreakout.errors import RLBreakoutError
from rlbreakout.results.campaign import CAMPAIGN, NO_FRAMESKIP, V5, PlannedRun
from rlbreakout.results.ledger import read_ledger, write_entry
from rlbreakout.results.tables import (
    HOW_TO_FILL,
    _flags,
    block_names,
    group_figures,
    render_block,
    render_model,
    render_table,
    rewrite,
)

READMES = [REPO_ROOT / "README.md", *sorted(REPO_ROOT.glob("*/README.md"))]


def entry_for(plan, means: dict[str, float], medians: dict[str, float] | None = None) -> dict:
    medians = medians or means
    return {"key": plan.key, "planned": plan.as_dict(),
            "summary": {"seed": plan.seed, "steps_per_second": 350.0, "wall_seconds": 3000.0, "timesteps": plan.timesteps,
                        "git_commit": "1234567890", "git_dirty": False, "cpu_model": "Test CPU"},
            "evaluations": {env: {"mean_reward": means[env], "median_reward": medians[env]} for env in means}}


def test_every_readme_block_is_what_make_tables_writes_from_the_ledger() -> None:
    ledger = read_ledger()
    stale = [readme.relative_to(REPO_ROOT).as_posix() for readme in READMES
             if rewrite(readme.read_text(), lambda name: render_block(name, ledger)) != readme.read_text()]
    assert not stale, f"README results differ from results/: run python pictures/make_tables.py ({stale})"


def test_the_readmes_carry_the_tables() -> None:
    names = {name for readme in READMES for name in block_names(readme.read_text())}
    assert {"all", "comparison", "chapter1", "chapter2", "chapter3"} <= names


def test_a_table_row_is_the_mean_of_per_seed_means_with_min_max() -> None:
    aimbot = [plan for plan in CAMPAIGN
              if plan.name == "3.3_aimbot_training" and plan.env_id == NO_FRAMESKIP and plan.timesteps == 1_000_000]
    ledger = {aimbot[0].key: entry_for(aimbot[0], {NO_FRAMESKIP: 80.0, V5: 40.0}, {NO_FRAMESKIP: 50.0, V5: 30.0}),
              aimbot[2].key: entry_for(aimbot[2], {NO_FRAMESKIP: 100.0, V5: 50.0}, {NO_FRAMESKIP: 70.0, V5: 44.0})}
    table = render_block("chapter3", ledger)
    row = next(line for line in table.splitlines() if "BreakoutNoFrameskip-v4 | 1,000,000" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[5] == "2 of 3 (to run: 1)"
    assert cells[6:10] == ["90.0 (80.0–100.0)", "60.0 (50.0–70.0)", "45.0 (40.0–50.0)", "37.0 (30.0–44.0)"]
    assert cells[10:] == ["350 (350–350)", "`1234567`", "Test CPU"]
    assert "2.3_copying" not in table  # chapter 3's table holds chapter 3's script only
    missing_row = next(line for line in table.splitlines() if "ALE/Breakout-v5 | 1,000,000" in line)
    assert "0 of 1 (to run: 0)" in missing_row and "–" in missing_row


def test_the_flag_cell_names_the_backend_fast_trained_on() -> None:
    """From each entry's summary.json; a group not yet run names none."""
    zoo = [plan for plan in CAMPAIGN if plan.name == "2.3_copying_hp_zoo" and plan.fast]
    short = next(plan for plan in zoo if plan.timesteps == 1_000_000)
    entry = entry_for(short, {NO_FRAMESKIP: 10.0, V5: 5.0})
    for backend, label in (("ale_vector", "`--fast` (C++ vector envs)"), ("classic", "`--fast` (classic envs)")):
        entry["summary"]["backend"] = backend
        rows = [line for line in render_block("chapter2", {short.key: entry}).splitlines() if "2.3_copying" in line]
        assert [row.split(" | ")[2] for row in rows] == [label if "1,000,000" in row else "`--fast`" for row in rows]
    entry["summary"].pop("backend")  # a backend nobody recorded is not guessed
    rows = [line for line in render_block("chapter2", {short.key: entry}).splitlines() if "2.3_copying" in line]
    assert all(row.split(" | ")[2] == "`--fast`" for row in rows)


def test_the_comparison_says_the_ratio_or_which_run_will_make_it() -> None:
    by_name = {(plan.name, plan.env_id, plan.seed): plan for plan in CAMPAIGN if plan.timesteps == 1_000_000}
    aimbot, zoo = by_name[("3.3_aimbot_training", NO_FRAMESKIP, 0)], by_name[("2.3_copying_hp_zoo", NO_FRAMESKIP, 0)]
    only_aimbot = {aimbot.key: entry_for(aimbot, {NO_FRAMESKIP: 80.0, V5: 40.0})}
    text = render_block("comparison", only_aimbot)
    assert "waits for `2.3_copying_hp_zoo.py --env BreakoutNoFrameskip-v4` (seeds 0, 1, 2)" in text
    assert "keeps 50% of its mean on sticky-action v5 (40.0 of 80.0), from 1 of 3 seeds so far" in text
    both = {**only_aimbot, zoo.key: entry_for(zoo, {NO_FRAMESKIP: 20.0, V5: 8.0})}
    text = render_block("comparison", both)
    assert "4.0x on BreakoutNoFrameskip-v4 (80.0 against 20.0) and 5.0x on ALE/Breakout-v5 (40.0 against 8.0)" in text


def test_a_zoo_mean_of_zero_gives_no_ratio() -> None:
    by_name = {(plan.name, plan.env_id, plan.seed): plan for plan in CAMPAIGN if plan.timesteps == 1_000_000}
    aimbot, zoo = by_name[("3.3_aimbot_training", NO_FRAMESKIP, 0)], by_name[("2.3_copying_hp_zoo", NO_FRAMESKIP, 0)]
    ledger = {aimbot.key: entry_for(aimbot, {NO_FRAMESKIP: 80.0, V5: 40.0}),
              zoo.key: entry_for(zoo, {NO_FRAMESKIP: 0.0, V5: 0.0})}
    text = render_block("comparison", ledger)
    assert "no ratio" in text and "waits for :" not in text


def test_an_unknown_block_is_one_clear_error() -> None:
    with pytest.raises(RLBreakoutError, match="unknown results block"):
        render_block("nonsense", {})


@pytest.mark.slow
def test_make_tables_check_fails_when_the_ledger_changes(tmp_path: Path) -> None:
    ledger_dir = tmp_path / "results"
    for path in (REPO_ROOT / "results").glob("*.json"):
        (ledger_dir / path.name).parent.mkdir(parents=True, exist_ok=True)
        (ledger_dir / path.name).write_text(path.read_text())
    assert run_script("pictures/make_tables.py", "--check", "--ledger", str(ledger_dir)).returncode == 0
    plan = CAMPAIGN[-1]  # 2.2's default command: a row every README table layout shows
    if plan.key in read_ledger(ledger_dir):
        entry = json.loads((ledger_dir / f"{plan.key}.json").read_text())
        entry["evaluations"][NO_FRAMESKIP]["mean_reward"] += 1.0
    else:
        entry = entry_for(plan, {NO_FRAMESKIP: 3.0, V5: 2.0})
    write_entry(entry, ledger_dir)
    before = {readme: readme.read_text() for readme in READMES}
    result = run_script("pictures/make_tables.py", "--check", "--ledger", str(ledger_dir), expect_ok=False)
    assert result.returncode == 1 and "README.md" in result.stderr and "make_tables.py" in result.stderr
    assert all(readme.read_text() == text for readme, text in before.items())  # --check changes nothing


def test_each_exported_model_is_the_file_its_record_names() -> None:
    """models/<stem>.json names the ledger entry and checksum of models/<stem>.pt: both must hold."""
    records = sorted((REPO_ROOT / "models").glob("*.json"))
    assert any(path.stem == "ppo_aimbot_policy" for path in records)
    ledger = read_ledger()
    for path in records:
        record = json.loads(path.read_text())
        weights = path.with_suffix(".pt")
        assert hashlib.sha256(weights.read_bytes()).hexdigest() == record["sha256"], f"{weights} is not the exported file"
        assert record["ledger_key"] in ledger
        assert weights.stat().st_size < 10 * 1024 * 1024


def test_a_model_block_without_its_record_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RLBreakoutError, match="export_best_policy.py"):
        render_model("nothing", {}, models_dir=tmp_path)


def test_make_tables_names_a_ledger_file_broken_by_a_hand_edit_in_one_line(tmp_path: Path) -> None:
    ledger_dir = tmp_path / "results"
    ledger_dir.mkdir()
    broken = ledger_dir / "1.3_train.json"
    broken.write_text('{"key": "1.3_train", "summary": {"seed": 0,}}\n')  # a trailing comma
    result = run_script("pictures/make_tables.py", "--check", "--ledger", str(ledger_dir), expect_ok=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert str(broken) in line and "line 1 column" in line and "restore it with git" in line


def test_a_model_block_quotes_the_picking_evaluation_as_such_and_a_fresh_one_as_the_score(tmp_path: Path) -> None:
    """The seed that picked a model scored best of three: its figure is labelled, never quoted as the file's score."""
    plans = [plan for plan in CAMPAIGN if plan.name == "3.3_aimbot_training" and plan.timesteps == 1_000_000
             and plan.env_id == NO_FRAMESKIP]
    ledger = {plan.key: {**entry_for(plan, {NO_FRAMESKIP: 80.0 + plan.seed, V5: 40.0}), "command": "python x.py"}
              for plan in plans}
    for entry in ledger.values():
        for evaluation in entry["evaluations"].values():
            evaluation["n_games"] = 20
    record = {"ledger_key": plans[-1].key, "picked_by": f"highest mean on {NO_FRAMESKIP}", "sha256": "0"}
    (tmp_path / "m.json").write_text(json.dumps(record))
    text = render_model("m", ledger, models_dir=tmp_path)
    assert f"the best of {len(plans)} seeds" in text and "they are not its score" in text
    assert "**" not in text and "still to run" in text  # nothing in bold: no figure is the file's score
    record["fresh_evaluations"] = {NO_FRAMESKIP: {"mean": 61.23, "standard_error": 3.04, "median": 55.0,
                                                  "n_games": 100, "seed": 100}}
    (tmp_path / "m.json").write_text(json.dumps(record))
    text = render_model("m", ledger, models_dir=tmp_path)
    assert ("mean **61.2** (standard error 3.0), median **55.0** over 100 whole games, `--seed 100`" in text
            and "still to run" not in text)
    # where it ran: the script, the commit (marked when the tree differed from it) and the CPU
    record["fresh_evaluations"][NO_FRAMESKIP].update(script="3.3_aimbot_training", git_commit="89b26d99e3",
                                                     git_dirty=True, cpu_model="Some CPU", min=15.0, max=396.0)
    (tmp_path / "m.json").write_text(json.dumps(record))
    text = render_model("m", ledger, models_dir=tmp_path)
    assert ("over 100 whole games (15–396), `--seed 100` (`3.3_aimbot_training.py --load`, commit `89b26d9` (dirty), "
            "Some CPU CPU)") in text


def test_the_comparison_says_how_far_1e7_goes_past_1e6_and_what_survives_on_v5() -> None:
    plans = {(plan.name, plan.timesteps, plan.seed): plan for plan in CAMPAIGN if plan.env_id == NO_FRAMESKIP}
    zoo_1e6 = [plans[("2.3_copying_hp_zoo", 1_000_000, seed)] for seed in (0, 1, 2)]
    zoo_1e7, aimbot_1e7 = plans[("2.3_copying_hp_zoo", 10_000_000, 0)], plans[("3.3_aimbot_training", 10_000_000, 0)]
    ledger = {plan.key: entry_for(plan, {NO_FRAMESKIP: score, V5: score / 2}) for plan, score in zip(zoo_1e6, (10, 15, 20))}
    text = render_block("comparison", ledger)
    assert ("How far 1e7 steps take the zoo agent past 1e6 waits for `2.3_copying_hp_zoo.py --env "
            "BreakoutNoFrameskip-v4` (seed 0) at 1e7 steps; rl-baselines3-zoo reports 398 ± 33") in text
    ledger[zoo_1e7.key] = entry_for(zoo_1e7, {NO_FRAMESKIP: 300.0, V5: 75.0})
    text = render_block("comparison", ledger)
    # 300 against the 1e6 seeds' mean of 15: 20x; v5 keeps a quarter
    assert ("At 1e7 steps the zoo agent scores 300.0 on BreakoutNoFrameskip-v4, 20.0x its 1e6 mean of 15.0; "
            "rl-baselines3-zoo reports 398 ± 33 for this PPO at 1e7 (its figure, not measured here). "
            "On sticky-action v5 it keeps 25% of it (75.0 of 300.0).") in text
    ledger[aimbot_1e7.key] = entry_for(aimbot_1e7, {NO_FRAMESKIP: 250.0, V5: 125.0})
    text = render_block("comparison", ledger)
    assert ("At 1e7 steps the aimbot agent scores 250.0 on BreakoutNoFrameskip-v4 (from 1 of 3 seeds so far); "
            "the original tutorial reported 200-400 points a game at 1e7") in text  # no 1e6 aimbot run here


def plan_of(name: str, env_id: str, seed: int = 0, timesteps: int = 1_000_000):
    return next(plan for plan in CAMPAIGN if (plan.name, plan.env_id, plan.seed, plan.timesteps) == (name, env_id, seed, timesteps))


def test_a_run_from_uncommitted_code_is_marked_dirty_in_its_commit_cell() -> None:
    aimbot = plan_of("3.3_aimbot_training", NO_FRAMESKIP)
    entry = entry_for(aimbot, {NO_FRAMESKIP: 80.0, V5: 40.0})
    entry["summary"]["git_dirty"] = True
    row = next(line for line in render_block("chapter3", {aimbot.key: entry}).splitlines()
               if "BreakoutNoFrameskip-v4 | 1,000,000" in line)
    assert "| `1234567` (dirty) | Test CPU |" in row


def test_the_unknown_block_error_names_the_blocks_there_are() -> None:
    with pytest.raises(RLBreakoutError) as refused:
        render_block("nonsense", {})
    assert str(refused.value) == "unknown results block 'nonsense'; use comparison or one of all, chapter1, chapter2, chapter3."


def test_the_zero_mean_sentence_and_the_v5_training_sentences() -> None:
    aimbot, zoo = plan_of("3.3_aimbot_training", NO_FRAMESKIP), plan_of("2.3_copying_hp_zoo", NO_FRAMESKIP)
    on_v5 = plan_of("3.3_aimbot_training", V5)
    ledger = {aimbot.key: entry_for(aimbot, {NO_FRAMESKIP: 80.0, V5: 40.0}),
              zoo.key: entry_for(zoo, {NO_FRAMESKIP: 0.0, V5: 0.0})}
    lines = render_block("comparison", ledger).splitlines()
    assert lines[0] == "The zoo PPO's mean is 0 at 1e6 steps, so no ratio says how much the aimbot view helps."
    assert lines[-1] == "What training on v5 itself gives waits for `3.3_aimbot_training.py --env ALE/Breakout-v5` (seed 0)."
    ledger[on_v5.key] = entry_for(on_v5, {NO_FRAMESKIP: 30.0, V5: 55.5})
    assert render_block("comparison", ledger).splitlines()[-1] == (
        "Trained on v5 itself, the aimbot agent scores 55.5 there, against 40.0 for the one trained on "
        "BreakoutNoFrameskip-v4.")
    del ledger[aimbot.key]
    assert render_block("comparison", ledger).splitlines()[-1] == "Trained on v5 itself, the aimbot agent scores 55.5 there."


def test_rewrite_fills_each_block_between_its_comments_and_keeps_the_rest() -> None:
    text = ("intro\n<!-- results: all -->\nold\n<!-- /results: all -->\nmiddle\n"
            "<!-- results: chapter1 -->\n<!-- /results: chapter1 -->\nend\n")
    assert block_names(text) == ["all", "chapter1"]
    assert rewrite(text, lambda name: f"new {name}") == (
        "intro\n<!-- results: all -->\nnew all\n<!-- /results: all -->\nmiddle\n"
        "<!-- results: chapter1 -->\nnew chapter1\n<!-- /results: chapter1 -->\nend\n")


# %% The sentences and cells at their edges (each kills a mutant the tests above let through)


def sentences(ledger: dict) -> list[str]:
    return render_block("comparison", ledger).splitlines()


def test_a_group_with_no_run_in_the_ledger_has_no_figures() -> None:
    runs = [plan for plan in CAMPAIGN if plan.group == CAMPAIGN[0].group]
    assert group_figures(runs, {}) is None
    assert group_figures(runs, {runs[0].key: entry_for(runs[0], {NO_FRAMESKIP: 5.0})}).seeds == (0,)  # type: ignore[union-attr]


def test_the_flag_cell_joins_flags_and_backends_and_names_an_unknown_backend_as_it_is() -> None:
    plan = PlannedRun(script="3_obswrapper/3.3_aimbot_training.py", env_id=NO_FRAMESKIP, seed=0, timesteps=1000,
                      flags=("--fast", "--n-envs", "16", "--gif-games", "0"))
    assert _flags(plan) == "`--fast --n-envs 16`"  # --gif-games only changes what is shown
    assert _flags(plan, ["ale_vector", "some_new_backend"]) == "`--fast --n-envs 16` (C++ vector envs / some_new_backend)"


def test_a_table_of_one_planned_run_and_a_group_on_two_cpus() -> None:
    plans = [plan_of("3.3_aimbot_training", NO_FRAMESKIP, seed) for seed in (0, 1, 2)]
    first, second = entry_for(plans[0], {NO_FRAMESKIP: 80.0, V5: 40.0}), entry_for(plans[1], {NO_FRAMESKIP: 60.0, V5: 30.0})
    second["summary"]["cpu_model"] = "Other CPU"
    table = render_table(plans, {plans[0].key: first, plans[1].key: second}, None)
    assert table.splitlines()[2].endswith("| `1234567` | Other CPU, Test CPU |")
    alone = render_table(plans[:1], {plans[0].key: first}, None)
    assert "1 of 1 |" in alone and "over 20 whole games" in alone


def test_two_seeds_to_come_are_named_in_the_plural() -> None:
    aimbot, zoo = plan_of("3.3_aimbot_training", NO_FRAMESKIP), plan_of("2.3_copying_hp_zoo", NO_FRAMESKIP)
    ledger = {aimbot.key: entry_for(aimbot, {NO_FRAMESKIP: 80.0, V5: 40.0}), zoo.key: entry_for(zoo, {NO_FRAMESKIP: 20.0, V5: 8.0})}
    assert sentences(ledger)[0].endswith(
        "from 1 of 3 seeds so far (`3.3_aimbot_training.py --env BreakoutNoFrameskip-v4` (seeds 1, 2) to come), "
        "from 1 of 3 seeds so far (`2.3_copying_hp_zoo.py --env BreakoutNoFrameskip-v4` (seeds 1, 2) to come).")


def test_the_aimbot_sentence_waits_for_each_missing_group_by_name() -> None:
    aimbot = plan_of("3.3_aimbot_training", NO_FRAMESKIP)
    assert sentences({})[0] == ("How much the aimbot view helps at 1e6 steps waits for `3.3_aimbot_training.py --env "
                                "BreakoutNoFrameskip-v4` (seeds 0, 1, 2) and `2.3_copying_hp_zoo.py --env "
                                f"BreakoutNoFrameskip-v4` (seeds 0, 1, 2): {HOW_TO_FILL}.")
    only_aimbot = {aimbot.key: entry_for(aimbot, {NO_FRAMESKIP: 80.0, V5: 40.0})}
    assert sentences(only_aimbot)[0] == ("How much the aimbot view helps at 1e6 steps waits for `2.3_copying_hp_zoo.py "
                                         f"--env BreakoutNoFrameskip-v4` (seeds 0, 1, 2): {HOW_TO_FILL}.")
    assert sentences(only_aimbot)[2] == ("How much of the zoo agent's score survives on v5 waits for "
                                         "`2.3_copying_hp_zoo.py --env BreakoutNoFrameskip-v4` (seeds 0, 1, 2).")


def test_ratios_are_given_for_any_mean_above_zero_and_only_where_both_were_evaluated() -> None:
    aimbot, zoo = plan_of("3.3_aimbot_training", NO_FRAMESKIP), plan_of("2.3_copying_hp_zoo", NO_FRAMESKIP)
    ledger = {aimbot.key: entry_for(aimbot, {NO_FRAMESKIP: 0.5, V5: 40.0}), zoo.key: entry_for(zoo, {NO_FRAMESKIP: 0.5, V5: 0.5})}
    lines = sentences(ledger)
    assert lines[0].startswith("At 1e6 steps the aimbot view scores 1.0x on BreakoutNoFrameskip-v4 (0.5 against 0.5) "
                               "and 80.0x on ALE/Breakout-v5 (40.0 against 0.5),")
    assert lines[1].startswith("The aimbot agent trained on BreakoutNoFrameskip-v4 keeps 8000% of its mean")
    ledger[zoo.key] = entry_for(zoo, {NO_FRAMESKIP: 20.0, V5: 0.0})  # no v5 ratio against a mean of 0
    assert sentences(ledger)[0].startswith("At 1e6 steps the aimbot view scores 0.0x on BreakoutNoFrameskip-v4 "
                                           "(0.5 against 20.0), mean over seeds")
    ledger[zoo.key] = entry_for(zoo, {NO_FRAMESKIP: 20.0})  # the zoo not evaluated on v5
    assert "x on ALE/Breakout-v5" not in sentences(ledger)[0]
    ledger = {aimbot.key: entry_for(aimbot, {NO_FRAMESKIP: 80.0}), zoo.key: entry_for(zoo, {NO_FRAMESKIP: 20.0, V5: 8.0})}
    assert sentences(ledger)[0].startswith("At 1e6 steps the aimbot view scores 4.0x on BreakoutNoFrameskip-v4 "
                                           "(80.0 against 20.0), mean over seeds")


def test_the_1e7_sentence_at_means_of_zero_and_half_a_point() -> None:
    short = [plan_of("2.3_copying_hp_zoo", NO_FRAMESKIP, seed) for seed in (0, 1, 2)]
    long = plan_of("2.3_copying_hp_zoo", NO_FRAMESKIP, timesteps=10_000_000)
    ledger = {plan.key: entry_for(plan, {NO_FRAMESKIP: 0.5, V5: 0.1}) for plan in short}
    ledger[long.key] = entry_for(long, {NO_FRAMESKIP: 0.5, V5: 0.25})
    line = next(line for line in sentences(ledger) if line.startswith("At 1e7 steps the zoo agent"))
    assert line.startswith("At 1e7 steps the zoo agent scores 0.5 on BreakoutNoFrameskip-v4, 1.0x its 1e6 mean of 0.5;")
    assert line.endswith("On sticky-action v5 it keeps 50% of it (0.2 of 0.5).")
    ledger = {plan.key: entry_for(plan, {NO_FRAMESKIP: 0.0, V5: 0.0}) for plan in short}
    ledger[long.key] = entry_for(long, {NO_FRAMESKIP: 0.0, V5: 0.0})
    line = next(line for line in sentences(ledger) if line.startswith("At 1e7 steps the zoo agent"))
    assert line == ("At 1e7 steps the zoo agent scores 0.0 on BreakoutNoFrameskip-v4; rl-baselines3-zoo reports 398 ± 33 "
                    "for this PPO at 1e7 (its figure, not measured here).")  # no ratio against 0
    ledger[long.key] = entry_for(long, {NO_FRAMESKIP: 300.0})  # not evaluated on v5: no v5 sentence
    line = next(line for line in sentences(ledger) if line.startswith("At 1e7 steps the zoo agent"))
    assert line.endswith("(its figure, not measured here).")


def model_ledger(tmp_path: Path, record: dict, summary: dict | None = None, command: str = "python x.py") -> dict:
    """Three seeds of a group whose key holds another '__s', the record of seed 2's model, and one other group."""
    keys = [f"x__small__s{seed}" for seed in (0, 1, 2)] + ["x__other__s0"]
    plan = plan_of("3.3_aimbot_training", NO_FRAMESKIP)
    ledger = {key: {**entry_for(plan, {NO_FRAMESKIP: 80.0}), "key": key, "command": command} for key in keys}
    ledger["x__small__s2"]["summary"].update(summary or {})
    for entry in ledger.values():
        entry["evaluations"][NO_FRAMESKIP]["n_games"] = 20
    (tmp_path / "m.json").write_text(json.dumps({"ledger_key": "x__small__s2", "picked_by": "highest mean", **record}))
    return ledger


def test_a_model_block_names_a_dirty_gpu_run_its_command_as_python_and_its_group_s_seeds(tmp_path: Path) -> None:
    ledger = model_ledger(tmp_path, {}, {"git_dirty": True, "gpu_model": "NVIDIA H200"},
                          command="python3 x.py --note python3 stays")
    lines = render_model("m", ledger, models_dir=tmp_path).splitlines()
    assert lines[0].endswith("commit `1234567` (dirty), Test CPU CPU with an NVIDIA H200 GPU), trained by:")
    assert lines[1:5] == ["", "```bash", "python x.py --note python3 stays", "```"]
    assert "(highest mean, the best of 3 seeds)" in lines[6]
    clean = render_model("m", model_ledger(tmp_path, {}), models_dir=tmp_path).splitlines()
    assert clean[0].endswith("commit `1234567`, Test CPU CPU), trained by:")
    assert clean[-2:] == ["", "A fresh evaluation of this very file (100 whole games on each env, seeds apart from "
                          "those that picked it, with the standard error) is still to run; `fresh_evaluations` in "
                          "`models/m.json` will hold it, and this block will quote it."]


def test_a_model_block_quotes_a_clean_fresh_run_and_only_a_whole_range(tmp_path: Path) -> None:
    figures = {"mean": 61.23, "standard_error": 3.04, "median": 55.0, "n_games": 100, "seed": 100, "min": 15.0}
    ledger = model_ledger(tmp_path, {"fresh_evaluations": {NO_FRAMESKIP: figures}})
    assert render_model("m", ledger, models_dir=tmp_path).splitlines()[-1] == (
        f"* {NO_FRAMESKIP}: mean **61.2** (standard error 3.0), median **55.0** over 100 whole games, `--seed 100`")
    figures.update(max=396.0, script="3.3_aimbot_training", git_commit="89b26d99e3", git_dirty=False, cpu_model="Some CPU")
    ledger = model_ledger(tmp_path, {"fresh_evaluations": {NO_FRAMESKIP: figures}})
    assert render_model("m", ledger, models_dir=tmp_path).splitlines()[-1].endswith(
        "(15–396), `--seed 100` (`3.3_aimbot_training.py --load`, commit `89b26d9`, Some CPU CPU)")


def test_a_model_exported_from_an_entry_not_in_the_ledger_is_one_clear_error(tmp_path: Path) -> None:
    ledger = model_ledger(tmp_path, {})
    del ledger["x__small__s2"]
    with pytest.raises(RLBreakoutError) as refused:
        render_model("m", ledger, models_dir=tmp_path)
    assert str(refused.value) == "models/m.pt was exported from x__small__s2, which is not in results/."
