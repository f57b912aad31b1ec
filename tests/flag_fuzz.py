"""Every flag of every chapter script, fed the bad values that fit its kind (run by tests/test_flag_fuzz.py).

Importing torch, SB3, optuna and the emulators costs seconds, and a few hundred bad inputs
each paying it would take an hour. So this process imports them once, then forks one child
per bad input: the child sets ``sys.argv`` and runs the real script file with :mod:`runpy`,
exactly as ``python SCRIPT ...`` would from there on (its own parser, its own checks, its own
error hook). Each child runs in a fresh working folder with ``--logdir`` pointed into it, so a
run folder left behind is seen.

Usage: ``python tests/flag_fuzz.py OUT.json [SCRIPT ...]`` (default: every chapter script).
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import math
import os
import pkgutil
import runpy
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("0_setup", "1_gym", "2_baselines", "3_obswrapper", "4_tuning", "5_sonic")
#: Seconds a bad input may take to be refused ("within seconds").
CHILD_TIMEOUT_S = 30.0
#: Children at once: the machine may be shared, and each child is mostly one core.
PARALLEL = 2
#: The capabilities that let root read and write past a file's mode bits (linux/capability.h).
#: A child fed an unreadable or unwritable path drops them, so a mode-000 file is unreadable for
#: real when the suite runs as root. Becoming another user (nobody) would do the same, but that
#: user may not reach the checkout at all (a clone under a mode-0700 folder), and every case
#: would fail on the script file itself instead of on the flag.
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: Absurdly large for any count or number (digits, so an int parser reads it).
ABSURD = str(10**30)

#: What each text flag holds, by its dest: the fuzzer's bad values depend on it.
TEXT_KINDS: dict[str, str] = {
    "env": "env_id", "eval_env": "env_id", "train_env": "env_id",
    "device": "device",
    "logdir": "out_dir", "pictures": "out_dir", "in_progress": "out_dir",
    "out": "out_path", "picture": "out_path",
    "ledger": "in_dir",
    "load": "in_file", "model": "in_file",
    # 0.3 replays the pretrained models when they are there, and notes a missing one (a fresh fork has none)
    "pretrained": "free", "pretrained_aimbot": "free",
    # 0.2 notes a missing 2.4/2.5 script and skips that part (tests/test_benchmark_script.py)
    "scratch_script": "free", "fast_scratch_script": "free",
    "resume": "run_dir",
    "storage": "url",
    "state": "name", "script": "name", "reward_scale": "name",
    "n_envs_list": "list", "parts": "list", "parity_pairs": "list", "only": "list",
    "study_name": "free", "promote_study_name": "free",
}
#: Where one script's flag holds another kind than the same dest elsewhere.
SCRIPT_TEXT_KINDS: dict[tuple[str, str], str] = {
    ("make_plots", "out"): "out_dir", ("make_plots", "logdir"): "in_dir", ("campaign", "ledger"): "out_dir",
}


def chapter_scripts() -> list[Path]:
    """Every numbered chapter script and every pictures/ script."""
    found = [p for chapter in CHAPTERS for p in sorted((REPO_ROOT / chapter).glob("[0-9]*.py"))]
    return found + sorted((REPO_ROOT / "pictures").glob("*.py"))


def preimport() -> None:
    """Import what the scripts import, once, before any fork."""
    for name in ("torch", "stable_baselines3", "sb3_contrib", "gymnasium", "ale_py", "optuna", "retro",
                 "matplotlib.pyplot", "PIL.Image", "tensorboard"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    import rlbreakout

    for info in pkgutil.walk_packages(rlbreakout.__path__, "rlbreakout."):
        try:
            importlib.import_module(info.name)
        except Exception:  # an optional extra (e.g. a retro ROM) missing: the script will say so
            pass


class _Collected(Exception):
    pass


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_file_permission_override() -> None:
    """Make this process obey file modes as any user does: drop root's two DAC capabilities.

    A no-op for a process that never had them (not root). They leave the permitted set too, so
    ``os.access`` (which checks with the permitted set) answers as ``open`` does.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    keep = ~((1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH)) & 0xFFFFFFFF
    data[0].effective &= keep
    data[0].permitted &= keep
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _child(script: Path, argv: list[str], workdir: Path, out: Path, *, obey_file_modes: bool, collect: Path | None) -> None:
    """In the forked child: run ``script`` with ``argv`` as ``python script argv`` would; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        os.chdir(workdir)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        if obey_file_modes:
            drop_file_permission_override()
        if collect is not None:
            def capture(parser: argparse.ArgumentParser, *_: Any, **__: Any) -> Any:
                collect.write_text(json.dumps(describe(parser)))
                raise _Collected
            argparse.ArgumentParser.parse_known_args = capture  # type: ignore[method-assign]
        sys.argv = [str(script), *argv]
        sys.path[0] = str(script.parent)
        try:
            runpy.run_path(str(script), run_name="__main__")
            code = 0
        except _Collected:
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            sys.excepthook(*sys.exc_info())  # the script's hook: one line and exit 2, or a traceback
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def describe(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """Each option of a parser: its flags, dest, kind of value, range or choices."""
    options = []
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        kind = getattr(action.type, "__name__", None) if action.type is not None else None
        options.append({
            "flags": list(action.option_strings), "dest": action.dest,
            "takes_value": action.nargs != 0 and not isinstance(action, argparse.BooleanOptionalAction),
            "nargs": action.nargs if isinstance(action.nargs, (int, str, type(None))) else str(action.nargs),
            "choices": [str(c) for c in action.choices] if action.choices is not None else None,
            "type": kind, "type_repr": repr(action.type) if action.type is not None else None,
            "low": getattr(action.type, "low", None), "high": getattr(action.type, "high", None),
            "low_open": getattr(action.type, "low_open", False), "high_open": getattr(action.type, "high_open", False),
            "required": action.required,
        })
    return options


class Fork:
    """One forked child: its pid, output file and start time."""

    def __init__(self, script: Path, argv: list[str], workdir: Path, *, obey_file_modes: bool = False,
                 collect: Path | None = None) -> None:
        self.script, self.argv, self.workdir = script, argv, workdir
        self.out = workdir.parent / (workdir.name + ".out")
        self.started = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(script, argv, workdir, self.out, obey_file_modes=obey_file_modes, collect=collect)
        self.pid = pid
        self.code: int | None = None
        self.timed_out = False
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def poll(self) -> bool:
        done, status, usage = os.wait4(self.pid, os.WNOHANG)
        if done:
            self.code = os.waitstatus_to_exitcode(status)
            self.cpu_seconds = usage.ru_utime + usage.ru_stime
            self.seconds = time.monotonic() - self.started
            self._reap_group()
            return True
        if time.monotonic() - self.started > CHILD_TIMEOUT_S:
            self.timed_out = True
            self._reap_group()
            os.waitpid(self.pid, 0)
            self.code = -9
            self.seconds = time.monotonic() - self.started
            return True
        return False

    def _reap_group(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)  # the child's own helpers (SubprocVecEnv workers), if any
        except (ProcessLookupError, PermissionError):
            pass

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""


def run_all(jobs: list[dict[str, Any]]) -> None:
    """Run the jobs' forks, :data:`PARALLEL` at a time; fill in ``code``, ``output``, ``seconds``."""
    pending, running = list(jobs), []
    while pending or running:
        while pending and len(running) < PARALLEL:
            job = pending.pop(0)
            job["fork"] = Fork(Path(job["script"]), job["argv"], Path(job["workdir"]), obey_file_modes=job.get("obey_file_modes", False))
            running.append(job)
        select.select([], [], [], 0.02)
        for job in list(running):
            fork = job["fork"]
            if fork.poll():
                running.remove(job)
                job.update(code=fork.code, timed_out=fork.timed_out, seconds=round(fork.seconds, 2),
                           cpu_seconds=round(fork.cpu_seconds, 3), output=fork.output())
                del job["fork"]


def number_bad_values(option: dict[str, Any]) -> list[tuple[str, str]]:
    """Wrong type, negative, zero where zero is invalid, absurdly large, out of the declared range."""
    low, high = option["low"], option["high"]
    is_int = option["type"] == "whole"
    bad = [("wrong type", "abc")]
    bad.append(("wrong type", "1.5") if is_int else ("not a number", "nan"))
    in_range = (lambda v: (low is None or (v > low if option["low_open"] else v >= low))
                and (high is None or (v < high if option["high_open"] else v <= high)))
    if not in_range(-1):
        bad.append(("negative", "-1"))
    if not in_range(0):
        bad.append(("zero", "0"))
    if low is not None and low not in (0, 1) and not in_range(low - 1 if is_int else low - abs(low) / 2 - 1e-9):
        bad.append(("below the range", str(low - 1 if is_int else low - abs(low) / 2 - 1e-9)))
    if high is not None and math.isfinite(high) and high < 10**29:
        above = high + 1 if is_int else high * 2 + 1
        bad.append(("above the range", str(above)))
    if not in_range(10**30):
        bad.append(("absurdly large", ABSURD))
    if not is_int:
        bad.append(("infinite", "inf"))
    return bad


def text_bad_values(kind: str, fixtures: dict[str, str]) -> list[tuple[str, str]]:
    """The bad values that fit a text flag's kind."""
    missing = fixtures["missing"]
    table = {
        "env_id": [("unknown id", "NoSuchGame-v9")],
        "device": [("unknown device", "gpu0"), ("absent device", "cuda:7")],
        "out_dir": [("a file where a folder goes", fixtures["file"]), ("under a file", fixtures["file"] + "/sub"),
                    ("unwritable", fixtures["locked_dir"] + "/sub")],
        "out_path": [("a folder where a file goes", fixtures["dir"]), ("under a file", fixtures["file"] + "/x.png"),
                     ("unwritable", fixtures["locked_dir"] + "/x.png")],
        "in_dir": [("missing", missing), ("a file where a folder goes", fixtures["file"])],
        "in_file": [("missing", missing), ("a folder where a file goes", fixtures["dir"]),
                    ("unreadable", fixtures["locked_file"]), ("empty (corrupt)", fixtures["empty"])],
        "run_dir": [("missing", missing), ("a file where a folder goes", fixtures["file"]),
                    ("a folder with no config", fixtures["dir"])],
        "url": [("malformed", "not-a-url"), ("malformed", "postgresql://user@host:notaport/db"),
                ("unknown dialect", "nosuchdb://x/y"), ("sqlite under a file", "sqlite:///" + fixtures["file"] + "/x.db")],
        "name": [("unknown", "no-such-name")],
        "list": [("unknown item", "bogus")],
    }
    return table.get(kind, [])


def make_fixtures(root: Path) -> dict[str, str]:
    """Files and folders the path flags are pointed at (shared by all children, read-only)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "a_file.txt").write_text("not what a flag wants\n")
    (root / "a_dir").mkdir(exist_ok=True)
    (root / "empty.zip").write_bytes(b"")
    locked_file = root / "locked.zip"
    locked_file.write_bytes(b"PK\x03\x04 not readable")
    locked_file.chmod(0)
    locked_dir = root / "locked_dir"
    locked_dir.mkdir(exist_ok=True)
    locked_dir.chmod(0o500)
    root.chmod(0o755)
    return {"file": str(root / "a_file.txt"), "dir": str(root / "a_dir"), "empty": str(root / "empty.zip"),
            "missing": str(root / "no_such_thing"), "locked_file": str(locked_file), "locked_dir": str(locked_dir)}


def base_argv(script: Path, options: list[dict[str, Any]], workdir: Path, skip: str) -> list[str]:
    """Flags every child gets so that nothing it writes lands outside its working folder."""
    argv = []
    for option in options:
        kind = text_kind(script, option["dest"])
        if option["dest"] != skip and kind in ("out_dir", "out_path") and option["nargs"] is None:
            argv += [option["flags"][0], str(workdir / (option["dest"] + (".out" if kind == "out_path" else "")))]
    return argv


def text_kind(script: Path, dest: str) -> str | None:
    return SCRIPT_TEXT_KINDS.get((script.stem, dest)) or TEXT_KINDS.get(dest)


def check(job: dict[str, Any], option: dict[str, Any]) -> str | None:
    """Why this bad input's handling breaks the contract, or None when it is kept."""
    lines = [line for line in job["output"].splitlines() if line.strip()]
    names = set(option["flags"]) | set(job["aliases"])
    workdir = Path(job["workdir"])
    left = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
    if job["timed_out"]:
        return f"still running after {CHILD_TIMEOUT_S:.0f} s (the bad value was accepted)"
    if job["code"] == 0:
        return "exit 0 (the bad value was accepted)"
    if "Traceback" in job["output"]:
        return "traceback"
    if len(lines) != 1:
        return f"{len(lines)} lines of output, not one"
    if not lines[0].startswith("error: ") or not any(name in lines[0] for name in names):
        return "the line does not name the flag"
    if left:
        return f"left behind: {left[:3]}"
    return None


def fuzz(scripts: list[Path], scratch: Path) -> dict[str, Any]:
    preimport()
    fixtures = make_fixtures(scratch / "fixtures")
    results: dict[str, Any] = {"scripts": [], "inputs": [], "failures": [], "help": []}
    n = 0
    jobs: list[dict[str, Any]] = []
    collect_jobs = []
    for script in scripts:
        rel = str(script.relative_to(REPO_ROOT))
        work = scratch / f"w{n}"
        n += 1
        work.mkdir()
        collected = scratch / f"w{n - 1}.json"
        fork = Fork(script, [], work, collect=collected)
        while not fork.poll():
            time.sleep(0.02)
        if not collected.exists():
            continue  # no parser: the script takes no flags
        options = json.loads(collected.read_text())
        shutil.rmtree(work)
        results["scripts"].append(rel)
        help_work = scratch / f"w{n}"
        n += 1
        help_work.mkdir()
        collect_jobs.append({"script": str(script), "rel": rel, "argv": ["--help"], "workdir": str(help_work)})
        by_dest: dict[str, list[str]] = {}
        for option in options:
            by_dest.setdefault(option["dest"], []).extend(option["flags"])
        for option in options:
            if not option["takes_value"]:
                continue
            if option["choices"] is not None:
                bad = [("unknown choice", "no-such-choice")]
            elif option["type"] in ("whole", "number"):
                bad = number_bad_values(option)
            elif option["type"] in ("int", "float"):
                results["failures"].append({"script": rel, "flag": option["flags"][0], "case": "declared range",
                                            "why": f"plain {option['type']}: declare its range with "
                                                   f"rlbreakout.cli.whole() or number()"})
                continue
            elif text_kind(script, option["dest"]) is not None:
                bad = text_bad_values(text_kind(script, option["dest"]), fixtures)
            else:
                results["failures"].append({"script": rel, "flag": option["flags"][0], "case": "kind",
                                            "why": "a text flag of unknown kind: add its dest to TEXT_KINDS"})
                continue
            for case, value in bad:
                work = scratch / f"w{n}"
                n += 1
                work.mkdir()
                argv = [option["flags"][0], value, *base_argv(script, options, work, option["dest"])]
                jobs.append({"script": str(script), "rel": rel, "argv": argv, "workdir": str(work), "case": case,
                             "option": option, "aliases": by_dest[option["dest"]],
                             "obey_file_modes": case in ("unreadable", "unwritable")})
    run_all(collect_jobs)
    for job in collect_jobs:
        if job["code"] != 0 or "usage:" not in job["output"]:
            results["failures"].append({"script": job["rel"], "flag": "--help", "case": "help",
                                        "why": f"exit {job['code']}", "output": job["output"][-500:]})
        results["help"].append(job["rel"])
    run_all(jobs)
    for job in jobs:
        option = job["option"]
        why = check(job, option)
        record = {"script": job["rel"], "flag": option["flags"][0], "case": job["case"], "argv": job["argv"],
                  "code": job["code"], "seconds": job["seconds"], "cpu_seconds": job["cpu_seconds"],
                  "traceback": "Traceback" in job["output"], "line": job["output"].strip()[-600:]}
        results["inputs"].append(record)
        if why:
            results["failures"].append({**record, "why": why})
    results["tracebacks"] = sum(r["traceback"] for r in results["inputs"])
    return results


def main() -> None:
    out = Path(sys.argv[1])
    scripts = [REPO_ROOT / s for s in sys.argv[2:]] or chapter_scripts()
    from rlbreakout.tune.storage import STORAGE_ENV_VAR

    os.environ.pop(STORAGE_ENV_VAR, None)
    scratch = Path(tempfile.mkdtemp(prefix="flag_fuzz_"))
    scratch.chmod(0o755)
    started = time.monotonic()
    try:
        results = fuzz(scripts, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(results, indent=1))
    sys.stdout.flush()
    os._exit(0)  # skip tearing down torch, the emulators and optuna: tens of seconds on a loaded machine


if __name__ == "__main__":
    main()
