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
Not part of ``make test``: each mutant reruns the module's tests.
"""

from __future__ import annotations

import argparse
import os
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
    "rlbreakout/callbacks.py": ["tests/test_callbacks.py"],
    "rlbreakout/scripted_player.py": ["tests/test_scripted_player.py"],
}

#: Mutants no test can kill, with the reason (mutmut's names: ``module.x_function__mutmut_N``;
#: the numbers hold while the function's code stays as it is).
EQUIVALENT: dict[str, str] = {}

#: What the tests read besides the package and tests/ (copied into mutmut's working copy).
ALSO_COPY = ["README.md", "results", "models", "0_setup", "1_gym", "2_baselines", "3_obswrapper", "4_tuning",
             "5_sonic", "pictures"]


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run mutmut in ``work`` (its setup.cfg); mutmut puts its mutated copy first on the path."""
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, capture_output=True, text=True)


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


def not_killed(listed: list[str]) -> tuple[int, dict[str, str]]:
    """From ``mutmut results --all true``'s lines (``    name: status``): the count, and the mutants not killed."""
    statuses = [line.strip().rsplit(": ", 1) for line in listed if ": " in line]
    return len(statuses), {name: status for name, status in statuses if status not in KILLED_STATUSES}


def run_module(module: str, tests: list[str]) -> list[str]:
    """Mutate one module, and its report section (markdown lines)."""
    work = prepare(module, tests)
    run = mutmut(work, "run", "--max-children", str(max(1, (os.cpu_count() or 2) // 2)))
    if run.returncode != 0:
        print(f"{module}: mutmut failed ({run.returncode}); see the report", flush=True)
        return [f"## {module}", "", f"mutmut failed ({run.returncode}) in {work}:", "", "```",
                (run.stdout + run.stderr)[-3000:], "```", ""]
    total, alive = survivors(work)
    explained = [name for name in alive if name in EQUIVALENT]
    killed = total - len(alive)
    share = killed / total if total else 1.0
    lines = [f"## {module}", "", f"{total} mutants, {killed} killed ({share:.0%}), {len(alive)} not killed "
             f"({len(explained)} of them equivalent). Tests: {', '.join(tests)}", ""]
    for name, status in alive.items():
        reason = EQUIVALENT.get(name)
        lines += [f"### {name}: {status}" + (f" (equivalent: {reason})" if reason else ""), "", "```diff",
                  mutmut(work, "show", name).stdout.strip(), "```", ""]
    print(f"{module}: {total} mutants, {killed} killed ({share:.0%}), {len(alive)} not killed", flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"modules to mutate (default: all of {len(FAST_MODULES)})")
    args = parser.parse_args(argv)
    unknown = [module for module in args.modules if module not in FAST_MODULES]
    if unknown:
        print(f"error: {', '.join(unknown)} not in FAST_MODULES; choose from: {', '.join(FAST_MODULES)}",
              file=sys.stderr)
        return 2
    chosen = args.modules or list(FAST_MODULES)
    report = ["# Mutation testing report", "", "Made by `make mutation` (tests/mutation.py, mutmut 3).", ""]
    for module in chosen:
        report += run_module(module, FAST_MODULES[module])
    WORK_ROOT.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(report))
    print(f"report: {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
