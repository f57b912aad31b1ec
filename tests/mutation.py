"""Mutation testing (``make mutation``): mutmut 3 on the modules whose tests are fast, survivors to a report.

A mutant is the module with one small change (``<`` for ``<=``, another string, ``and`` for
``or``); a test that fails on it "kills" it. A surviving mutant is a bug the tests would
let through, or an equivalent mutant (one no test can tell apart: :data:`EQUIVALENT` says why).

Each module runs on its own, in ``build/mutation/<module>/`` (git ignores ``build/``), against
the test files listed for it, so one slow module does not hold up the rest::

    python tests/mutation.py                          # every module of FAST_MODULES
    python tests/mutation.py rlbreakout/schedules.py  # only these

The report (``build/mutation/report.md``) gives per module the mutants, how many were killed,
and each mutant not killed with mutmut's status and its diff, marked "equivalent" with its
reason where it is one.

mutmut switches a mutant on when the mutated function is called, in a process that has
already imported the package; code that runs only at import (a dataclass field's default
built by a helper) is never seen mutated there. So each mutant mutmut did not kill is tried
once more the plain way: its diff applied to a scratch copy of the checkout, the module's
tests run in a new process. A failure there is a kill ("killed in a fresh process"); the
scratch copy's tests must pass unmutated first, or no such kill counts.
Not part of ``make test``: each mutant reruns the module's tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
WORK_ROOT = REPO_ROOT / "build" / "mutation"
REPORT = WORK_ROOT / "report.md"

#: Module -> the test files that cover it (each a few seconds to a minute on a free CPU).
FAST_MODULES: dict[str, list[str]] = {
    "rlbreakout/schedules.py": ["tests/test_schedules.py"],
    "rlbreakout/hyperparams.py": ["tests/test_hyperparams.py"],
    "rlbreakout/env_ids.py": ["tests/test_envs.py"],
    "rlbreakout/aimbot/tracking.py": ["tests/test_aimbot_tracking.py"],
    "rlbreakout/aimbot/detection.py": ["tests/test_aimbot_detection.py"],
    "rlbreakout/aimbot/view.py": ["tests/test_aimbot.py"],
    "rlbreakout/results/ledger.py": ["tests/test_ledger.py"],
    "rlbreakout/results/tables.py": ["tests/test_results_tables.py"],
    "rlbreakout/callbacks.py": ["tests/test_callbacks.py", "tests/test_tags.py"],
    "rlbreakout/scripted_player.py": ["tests/test_scripted_player.py"],
}

#: Where a module's retry in a scratch copy (see confirm_in_scratch) runs fewer test files than
#: mutmut: the retry is for code that runs at import, which these files import and check, and
#: test_tags.py runs every chapter script (two minutes for each mutant retried).
SCRATCH_TESTS: dict[str, list[str]] = {"rlbreakout/callbacks.py": ["tests/test_callbacks.py"]}

#: Mutants no test can kill, with the reason (mutmut's names: ``module.x_function__mutmut_N``;
#: the numbers hold while the function's code stays as it is).
_VIEW = "rlbreakout.aimbot.view.xǁAimbotViewǁrender__mutmut_"
_VECTOR_PLAYER = "rlbreakout.scripted_player.xǁOneGameVectorEnvǁ__init____mutmut_"
_ACT = "rlbreakout.scripted_player.xǁScriptedPlayerǁact__mutmut_"
_PLAYER_ENV = "rlbreakout.scripted_player.x_make_player_env__mutmut_"
_EVALUATE = "rlbreakout.callbacks.xǁMultiEnvEvalCallbackǁevaluate__mutmut_"
_TRACKER_RESET = "rlbreakout.aimbot.tracking.xǁBallTrackerǁreset__mutmut_"
_PRINTS_NOTHING = "GameScoreCallback prints nothing: SB3's BaseCallback only stores verbose"
_SET_AT_START = "SB3 calls _on_training_start, which sets it, before the first _on_step reads it"
_SKIP_1_OR_4 = ("env_settings gives the player's envs a wrapper frame skip of 1 (the emulator skips) or 4 "
                "(MaxAndSkip), so > 1 and > 2 agree")
_WALL_SET_AT_END = "wall_seconds is assigned, not added to, when the games end, before anything reads it"
_FLUSH = "flush changes when the line leaves the buffer, not what is printed"
_NEVER_EMPTY = "evaluate_policy plays n_eval_episodes >= 1 games, so the lengths are never empty"
_OVERWRITTEN = "reset's value is overwritten when the next ball is anchored, before it is read"
EQUIVALENT: dict[str, str] = {
    f"{_VIEW}9": "astype copies by default: copy=True is numpy's default",
    f"{_VIEW}45": "an image already the asked size is resized to that same size, which OpenCV copies unchanged",
    f"{_VIEW}59": "the 0/255 floats become the same uint8 values in the final np.ascontiguousarray(dtype=uint8)",
    f"{_VIEW}73": "every branch has made the image uint8 before the last line",
    f"{_VIEW}75": "every branch has made the image uint8 before the last line",
    f"{_VECTOR_PLAYER}8": "with no wrapper_kwargs the 'atari' and 'aimbot' wrappers give the same refusals",
    f"{_VECTOR_PLAYER}18": "ALEVectorVecEnv takes bool(terminal_on_life_loss): None is False",
    f"{_VECTOR_PLAYER}19": "ALEVectorVecEnv takes bool(clip_reward): None is False",
    f"{_VECTOR_PLAYER}28": "ale-py's thread count changes the speed, not the frames",
    f"{_VECTOR_PLAYER}37": "ale-py's thread count changes the speed, not the frames",
    f"{_ACT}28": "the aim offset is uniform on [-jitter, jitter]: subtracting it draws the target from the same "
                 "distribution, which only a replay of the generator's draws could tell apart",
    f"{_ACT}57": "that branch runs only for a direction that is not 0, so > 0 and >= 0 agree",
    f"{_ACT}65": "rng.random() equals random_action_prob exactly with probability 0",
    "rlbreakout.scripted_player.x_plan_move__mutmut_1": "at frames_left == 0 every direction moves 0 frames, so "
                                                         "all tie and the first of (0, 1, -1) is returned: 0",
    "rlbreakout.scripted_player.x_plan_move__mutmut_30": "last runs over -1, 0 and 1, so adding or subtracting "
        "last * partial gives the same set of residuals",
    f"{_VECTOR_PLAYER}7": "None is wrapper_kwargs' default in ale_vector_unsupported_reason",
    "rlbreakout.scripted_player.x_player_for__mutmut_9": _SKIP_1_OR_4,
    "rlbreakout.scripted_player.x_player_for__mutmut_30": _SKIP_1_OR_4,
    "rlbreakout.scripted_player.x_play_scripted_games__mutmut_15": _WALL_SET_AT_END,
    "rlbreakout.scripted_player.x_play_scripted_games__mutmut_24": _WALL_SET_AT_END,
    "rlbreakout.scripted_player.xǁScriptedPlayerǁreset__mutmut_5": "after a reset the view has seen no motion, so "
        "the first act's impact is None: it sets _falling to False before _falling is read beside an impact",
    "rlbreakout.scripted_player.xǁScriptedPlayerǁ_steer__mutmut_27": "a displacement of 0 is within every dead zone "
        "(__post_init__ refuses a negative one), so the last line never sees 0",
    f"{_PLAYER_ENV}43": "the classic thunk's seed seeds only the action space, which the player never samples; the "
                        "env itself is seeded by reset(seed=...), as play_scripted_games and record_fall do",
    f"{_PLAYER_ENV}46": "the render mode only decides what env.render() returns; the player reads its frames from "
                        "the observations",
    f"{_PLAYER_ENV}56": "the skip is 1 or 4 (env_settings with no wrapper_frame_skip), and MaxAndSkipEnv at skip 1 "
                        "returns each frame as it is (the max with its first buffer, which stays zero)",
    f"{_PLAYER_ENV}57": _SKIP_1_OR_4,
    f"{_PLAYER_ENV}62": "the skip is 1 or 4 (env_settings with no wrapper_frame_skip), and this branch runs only at "
                        "4, MaxAndSkipEnv's default",
    "rlbreakout.scripted_player.x_plan_move__mutmut_65": "differs only where an error is exactly the best plus "
                                                          "TIE_TOLERANCE, a float coincidence",
    "rlbreakout.aimbot.tracking.x_fold__mutmut_8": "at u == width both branches give left_wall + width",
    f"{_TRACKER_RESET}1": "after a reset _anchor is None, so the next ball is anchored whatever _last holds; a '' "
                          "_last only lets a missing ball count a step, which anchoring ignores",
    f"{_TRACKER_RESET}2": "after a reset _last is None, so the next ball is anchored before _anchor is read",
    f"{_TRACKER_RESET}3": _OVERWRITTEN,
    f"{_TRACKER_RESET}4": _OVERWRITTEN,
    f"{_TRACKER_RESET}7": "_missing only counts steps after a ball was seen; a new ball resets it to 0 first",
    "rlbreakout.aimbot.tracking.xǁBallTrackerǁupdate__mutmut_13": "_last is None exactly when _anchor is None "
        "(reset clears both, a whole ball sets both, an entering ball leaves both None), so 'or' and 'and' agree",
    "rlbreakout.aimbot.tracking.xǁBallTrackerǁupdate__mutmut_16": "_anchor stays None, so the next ball is anchored "
        "whatever _last holds; a '' _last only lets a missing ball count a step, which anchoring ignores",
    "rlbreakout.results.ledger.x_training_curve__mutmut_16": "a curve of exactly MAX_CURVE_POINTS thinned with "
        "stride 1 is every point, the last included: the same list",
    "rlbreakout.results.tables.x_render_model__mutmut_174": "a fresh evaluation's figures always hold mean, median "
        "and the rest besides script, git_commit and cpu_model, so the subset is always a proper one",
    "rlbreakout.results.ledger.x_aggregate__mutmut_21": "the mean and median spreads come from the same evaluations, "
        "so both are None or neither is",
    "rlbreakout.callbacks.xǁMultiEnvEvalCallbackǁ_init_callback__mutmut_3": "with eval_freq 1 every step is a "
        "multiple: __init__'s next_eval_step of 1 makes the first step evaluate, as the next multiple does",
    "rlbreakout.callbacks.xǁStepCheckpointCallbackǁ__init____mutmut_10": "_init_callback sets next_save_step "
        "before any step when save_freq > 0, and _on_step reads it only then",
    "rlbreakout.callbacks.xǁStepCheckpointCallbackǁ__init____mutmut_11": "saved_step is only compared with a step "
        "count, which neither None nor '' equals",
    "rlbreakout.callbacks.xǁStepCheckpointCallbackǁ_init_callback__mutmut_8": "with save_freq 1 every step is a "
        "multiple: __init__'s next_save_step of 1 makes the first step save, as the next multiple does",
    "rlbreakout.callbacks.xǁGameScoreCallbackǁ__init____mutmut_1": _PRINTS_NOTHING,
    "rlbreakout.callbacks.xǁGameScoreCallbackǁ__init____mutmut_2": _PRINTS_NOTHING,
    "rlbreakout.callbacks.xǁGameScoreCallbackǁ__init____mutmut_5": _SET_AT_START,
    "rlbreakout.callbacks.xǁProgressLineCallbackǁ__init____mutmut_5": _SET_AT_START,
    f"{_EVALUATE}20": _NEVER_EMPTY,
    f"{_EVALUATE}23": _NEVER_EMPTY,
    f"{_EVALUATE}24": _NEVER_EMPTY,
    f"{_EVALUATE}25": _NEVER_EMPTY,
    f"{_EVALUATE}44": _FLUSH,
    f"{_EVALUATE}46": _FLUSH,
    f"{_EVALUATE}51": _FLUSH,
    "rlbreakout.callbacks.xǁStepCheckpointCallbackǁsave__mutmut_13": _FLUSH,
    "rlbreakout.callbacks.xǁStepCheckpointCallbackǁsave__mutmut_15": _FLUSH,
    "rlbreakout.callbacks.xǁStepCheckpointCallbackǁsave__mutmut_16": _FLUSH,
}

#: The test modules every test file imports from: a change there can change what any test calls.
TEST_HELPERS = ("conftest.py", "fakes.py", "helpers.py")

#: What the tests read besides the package and tests/ (copied into mutmut's working copy).
ALSO_COPY = ["README.md", "results", "models", "0_setup", "1_gym", "2_baselines", "3_obswrapper", "4_tuning",
             "5_sonic", "pictures"]


#: mutmut forks each mutant's test run from a process that has run torch: a fork of a process
#: whose OpenMP thread pool has started can hang in its first parallel region, so every test
#: that trains would time out (a "timeout" counts as a kill) whether or not it fails. One
#: OpenMP thread starts no pool.
FORK_SAFE_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run mutmut in ``work`` (its setup.cfg); mutmut puts its mutated copy first on the path."""
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, capture_output=True, text=True,
                          env={**os.environ, **FORK_SAFE_THREADS})


def prepare(module: str, tests: list[str]) -> Path:
    """A working folder for one module: links to the checkout and a setup.cfg naming module and tests."""
    work = WORK_ROOT / Path(module).stem
    work.mkdir(parents=True, exist_ok=True)
    for name in ["rlbreakout", "tests", "pyproject.toml", *ALSO_COPY]:
        link = work / name
        if not link.exists():
            link.symlink_to(REPO_ROOT / name)
    lines = ["[mutmut]", "source_paths=rlbreakout", f"only_mutate={module}",
             "pytest_add_cli_args_test_selection=", *(f"    {test}" for test in tests),
             "pytest_add_cli_args=", "    -p", "    no:cacheprovider",
             "also_copy=", *(f"    {name}" for name in ALSO_COPY)]
    (work / "setup.cfg").write_text("\n".join(lines) + "\n")
    return work


#: mutmut's statuses that count as a kill: a test failed (or hung, or crashed) on the mutant.
KILLED_STATUSES = ("killed", "timeout", "segfault")


def survivors(work: Path) -> tuple[int, dict[str, str]]:
    """All mutants of the run in ``work``, and each one not killed with its status.

    Only a failing test kills: "no tests" (no test of the module's list calls the mutated
    function), "suspicious", "skipped" and "not checked" are not kills, so they are listed
    with the survivors and count against the share.
    """
    return not_killed(mutmut(work, "results", "--all", "true").stdout.splitlines())


def timed_out(work: Path) -> set[str]:
    """The mutants whose verdict is "timeout": re-tested on each run, as a loaded machine can time out a test."""
    listed = verdicts(mutmut(work, "results", "--all", "true").stdout.splitlines())
    return {name for name, status in listed if status == "timeout"}


def verdicts(listed: list[str]) -> list[tuple[str, str]]:
    """``(name, status)`` of each of ``mutmut results --all true``'s lines (``    name: status``)."""
    return [tuple(line.strip().rsplit(": ", 1)) for line in listed if ": " in line]  # type: ignore[misc]


def not_killed(listed: list[str]) -> tuple[int, dict[str, str]]:
    """From ``mutmut results --all true``'s lines: the count, and the mutants not killed."""
    statuses = verdicts(listed)
    return len(statuses), {name: status for name, status in statuses if status not in KILLED_STATUSES}


#: The status of a mutant that mutmut did not kill and whose tests failed in a scratch copy.
KILLED_FRESH = "killed in a fresh process"


class ScratchCopy:
    """A copy of the checkout in ``folder`` where one mutant's diff at a time is applied and tested."""

    def __init__(self, folder: Path, tests: list[str]) -> None:
        self.folder, self.tests = folder, tests
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name in ["rlbreakout", "tests", "pyproject.toml", *ALSO_COPY]:
            source = REPO_ROOT / name
            if source.is_dir():
                shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, folder / name)

    def tests_fail(self) -> bool:
        """Run the tests in a new process that imports the copy's package; True if any failed."""
        environ = {**os.environ, "PYTHONPATH": str(self.folder)}
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *self.tests],
                             cwd=self.folder, env=environ, capture_output=True, text=True)
        return run.returncode != 0

    def kills(self, diff: str) -> bool:
        """Whether the tests fail with ``diff`` (``mutmut show``'s, paths from the checkout) applied."""
        path, before, after = hunk_texts(diff)
        target = self.folder / path
        original = target.read_text()
        # mutmut shows a method dedented to its def: find the indent it has in the file
        for indent in ("", "    ", "        "):
            if original.count(indented(before, indent)) == 1:
                break
        else:
            raise RuntimeError(f"the mutant's diff does not match exactly one place of {target}")
        target.write_text(original.replace(indented(before, indent), indented(after, indent)))
        try:
            return self.tests_fail()
        finally:
            target.write_text(original)


def indented(text: str, indent: str) -> str:
    """``text`` with ``indent`` before each line that is not empty."""
    return "".join(indent + line if line.strip() else line for line in text.splitlines(keepends=True))


def hunk_texts(diff: str) -> tuple[str, str, str]:
    """The file a one-hunk unified diff changes, and its text before and after.

    Applied by text, not by line number: mutmut numbers a hunk's lines from its function's
    start, and git refuses a hunk said to start at line 1 anywhere else.
    """
    lines = diff.splitlines()
    path = next(line[4:].strip() for line in lines if line.startswith("+++ "))
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("@@")) + 1:]
    before = [line[1:] for line in body if line[:1] in (" ", "-")]
    after = [line[1:] for line in body if line[:1] in (" ", "+")]
    return path, "\n".join(before) + "\n", "\n".join(after) + "\n"


def mutant_diff(shown: str) -> str:
    """The unified diff in ``mutmut show``'s output (after its ``# name: status`` line)."""
    start = shown.find("--- ")
    return shown[start:] if start >= 0 else ""


def confirm_in_scratch(work: Path, module: str, tests: list[str], alive: dict[str, str]) -> dict[str, str]:
    """Retry each mutant mutmut did not kill in a scratch copy; return ``alive`` with the kills marked."""
    if not alive:
        return alive
    scratch = ScratchCopy(WORK_ROOT / "scratch" / Path(module).stem, SCRATCH_TESTS.get(module, tests))
    if scratch.tests_fail():
        print(f"{module}: its tests fail in the unmutated scratch copy {scratch.folder}; no fresh-process kills "
              "counted", flush=True)
        return alive
    return {name: KILLED_FRESH if scratch.kills(mutant_diff(mutmut(work, "show", name).stdout)) else status
            for name, status in alive.items()}


def forget_verdicts(work: Path, names: set[str]) -> int:
    """Clear mutmut's cached verdict of the mutants ``names`` in ``work``; returns how many were cleared.

    mutmut keeps a verdict until the mutated function changes: a test written since does not
    reopen a survivor. Its verdicts live in ``mutants/**/*.meta`` (``exit_code_by_key``);
    None there means "not checked yet".
    """
    cleared = 0
    for meta in (work / "mutants").rglob("*.meta"):
        data = json.loads(meta.read_text())
        reopened = [key for key, code in data["exit_code_by_key"].items() if key in names and code is not None]
        for key in reopened:
            data["exit_code_by_key"][key] = None
        if reopened:
            meta.write_text(json.dumps(data))
            cleared += len(reopened)
    return cleared


def forget_stale_stats(work: Path, tests: list[str]) -> bool:
    """Delete mutmut's record of which tests call which function if a test file changed since; True if deleted.

    mutmut collects that record again only for tests it has not seen: a test it knows, edited
    to call another function, is never run on that function's mutants, and they survive.
    """
    stats = work / "mutants" / "mutmut-stats.json"
    watched = [REPO_ROOT / test for test in tests] + [REPO_ROOT / "tests" / name for name in TEST_HELPERS]
    if stats.is_file() and any(path.stat().st_mtime > stats.stat().st_mtime for path in watched if path.is_file()):
        stats.unlink()
        return True
    return False


def run_module(module: str, tests: list[str], fresh: bool = False) -> list[str]:
    """Mutate one module, and its report section (markdown lines).

    Mutants killed in an earlier run keep their verdict (tests only grow); the others are
    tested again. ``fresh`` starts the module over.
    """
    if fresh:
        shutil.rmtree(WORK_ROOT / Path(module).stem, ignore_errors=True)
    work = prepare(module, tests)
    if (work / "mutants").is_dir():
        forget_verdicts(work, set(survivors(work)[1]) | timed_out(work))
        forget_stale_stats(work, tests)
    run = mutmut(work, "run", "--max-children", str(max(1, (os.cpu_count() or 2) // 2)))
    if run.returncode != 0:
        print(f"{module}: mutmut failed ({run.returncode}); see the report", flush=True)
        return [f"## {module}", "", f"mutmut failed ({run.returncode}) in {work}:", "", "```",
                (run.stdout + run.stderr)[-3000:], "```", ""]
    total, alive = survivors(work)
    checked = confirm_in_scratch(work, module, tests, alive)
    killed_fresh = [name for name, status in checked.items() if status == KILLED_FRESH]
    alive = {name: status for name, status in checked.items() if status != KILLED_FRESH}
    explained = [name for name in alive if name in EQUIVALENT]
    killed = total - len(alive)
    by_timeout = len(timed_out(work))
    share = killed / total if total else 1.0
    lines = [f"## {module}", "", f"{total} mutants, {killed} killed ({share:.0%}; {len(killed_fresh)} of them only in a "
             f"fresh process, {by_timeout} by a timeout), {len(alive)} not killed ({len(explained)} of them equivalent). "
             f"Tests: {', '.join(tests)}", ""]
    lines += [f"Killed in a fresh process (import-time code): {', '.join(killed_fresh)}", ""] if killed_fresh else []
    for name, status in alive.items():
        reason = EQUIVALENT.get(name)
        lines += [f"### {name}: {status}" + (f" (equivalent: {reason})" if reason else ""), "", "```diff",
                  mutant_diff(mutmut(work, "show", name).stdout).strip(), "```", ""]
    unexplained = len(alive) - len(explained)
    print(f"{module}: {total} mutants, {killed} killed ({share:.0%}; {by_timeout} by a timeout), {len(alive)} not killed, "
          f"{unexplained} of them unexplained", flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {len(FAST_MODULES)})")
    parser.add_argument("--fresh", action="store_true", help="forget every earlier verdict (kills too) and start over")
    args = parser.parse_args(argv)
    unknown = [module for module in args.modules if module not in FAST_MODULES]
    if unknown:
        print(f"error: {', '.join(unknown)} not in FAST_MODULES; choose from: {', '.join(FAST_MODULES)}",
              file=sys.stderr)
        return 2
    chosen = args.modules or list(FAST_MODULES)
    report = ["# Mutation testing report", "", "Made by `make mutation` (tests/mutation.py, mutmut 3).", ""]
    for module in chosen:
        report += run_module(module, FAST_MODULES[module], fresh=args.fresh)
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(report))
    print(f"report: {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
