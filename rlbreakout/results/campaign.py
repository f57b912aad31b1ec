"""The results campaign: the planned runs as data, which are in the ledger, and running the rest.

A planned run is a chapter script with its flags, env, seed and steps. Running one means
what a learner would type: the script in a child process (its own run folder, TensorBoard
logs, checkpoints and summary.json), resumed with ``--resume`` when an earlier attempt
left a checkpoint; then the finished model evaluated with the same script's ``--load`` on
each eval env; then one ledger file (rlbreakout/results/ledger.py). Nothing reaches the ledger
from a run that failed, was interrupted, or came from uncommitted code.

Why not a job scheduler: the runs go one at a time (2 cores), must survive the sitting that
started them being killed, and each result must name its commit; a list of dataclasses
and a run folder per attempt give all three.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlbreakout.errors import ConfigError, RLBreakoutError
from rlbreakout.files import exclusive_lock
from rlbreakout.results.child_run import INTERRUPTED_EXIT, ChildRun, in_repo
from rlbreakout.results.ledger import LEDGER_DIR, Evaluation, build_entry, read_ledger, write_entry
from rlbreakout.results.long_runs import (
    IN_PROGRESS_DIR,
    checkpoint_steps,
    close_segments,
    code_checkout,
    open_segment,
    park,
    parked,
    read_segments,
    unpark,
    unpark_done,
)
from rlbreakout.provenance import REPO_ROOT, cpu_model, git_dirty
from rlbreakout.runs import CONFIG_FILE, SUMMARY_FILE, sanitize_env_id, script_name
from rlbreakout.training import CHECKPOINT_DIR, FINAL_MODEL_FILE, LATEST_CHECKPOINT

NO_FRAMESKIP = "BreakoutNoFrameskip-v4"
V5 = "ALE/Breakout-v5"
#: Every finished model is scored on both: the env it trained on, and the other one.
EVAL_ENVS: tuple[str, ...] = (NO_FRAMESKIP, V5)
#: Whole games per evaluation after training (the periodic ones during training are the script's).
EVAL_GAMES = 20
#: Where the campaign's run folders go (git-ignored, like every run folder).
CAMPAIGN_LOGDIR = REPO_ROOT / "runs" / "campaign"
#: Held (flock) by a running campaign in its logdir, with its pid and run written in it.
LOCK_FILE = "campaign.lock"
MILLION = 1_000_000
#: The published budget of the zoo and of the original tutorial's aimbot ("7 hours on my pc").
LONG_RUN_STEPS = 10 * MILLION
AIMBOT = "3_obswrapper/3.3_aimbot_training.py"
ZOO = "2_baselines/2.3_copying_hp_zoo.py"
#: Flags of every seeded run: the measured speed levers, and no gif (the READMEs' gifs are made apart).
SEEDED_FLAGS: tuple[str, ...] = ("--fast", "--gif-games", "0")
#: Flags that change only what a run shows (gifs), not what it trains: left out of group keys.
DISPLAY_ONLY_FLAGS = ("gif_games",)
#: Training speed assumed for a script the ledger has no run of yet (steps/s, labelled a guess).
GUESSED_STEPS_PER_SECOND = {True: 350.0, False: 75.0}
#: Evaluation time assumed when no entry measured it (two envs x 20 games).
GUESSED_EVAL_SECONDS = 300.0


@dataclass(frozen=True)
class PlannedRun:
    """One run of the campaign: ``python SCRIPT --env ENV --timesteps N --seed S FLAGS``."""

    script: str
    env_id: str
    seed: int
    timesteps: int
    flags: tuple[str, ...] = ()
    eval_envs: tuple[str, ...] = EVAL_ENVS
    eval_games: int = EVAL_GAMES
    #: What the README calls the group this run belongs to (seeds of one setting share it).
    label: str = ""
    #: Longer than a sitting: trained until the campaign's hours are up, then parked for the next.
    spans_sittings: bool = False

    @property
    def name(self) -> str:
        """The script's stem, as run folders and summary.json name it."""
        return script_name(self.script)

    @property
    def fast(self) -> bool:
        return "--fast" in self.flags


    @property
    def group(self) -> str:
        """Runs that differ only by seed share a group (one README table row)."""
        values = {name: value for name, value in self.flag_values().items() if name not in DISPLAY_ONLY_FLAGS}
        extra = "_".join(name if value == "True" else f"{name}-{value}" for name, value in values.items())
        return "__".join(p for p in (self.name, sanitize_env_id(self.env_id), str(self.timesteps), extra) if p)

    @property
    def key(self) -> str:
        """Its ledger entry's key (and file name)."""
        return f"{self.group}__s{self.seed}"

    def train_args(self, logdir: Path) -> list[str]:
        return [self.script, "--env", self.env_id, "--timesteps", str(self.timesteps), "--seed", str(self.seed),
                *self.flags, "--logdir", str(logdir)]

    def eval_args(self, model_path: str, env_id: str, logdir: Path) -> list[str]:
        """The script's own ``--load`` evaluation: same flags (same observation), no training, no gif."""
        return [self.script, *self.flags, "--load", model_path, "--env", env_id, "--seed", str(self.seed),
                "--eval-episodes", str(self.eval_games), "--gif-games", "0", "--logdir", str(logdir)]

    def flag_groups(self) -> list[tuple[str, tuple[str, ...]]]:
        """``--fast --gif-games 0`` -> ``[("fast", ("--fast",)), ("gif_games", ("--gif-games", "0"))]``."""
        groups: list[tuple[str, tuple[str, ...]]] = []
        tokens = list(self.flags)
        for i, token in enumerate(tokens):
            if not token.startswith("--"):
                continue
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            value = (following,) if following is not None and not following.startswith("--") else ()
            groups.append((token[2:].replace("-", "_"), (token, *value)))
        return groups

    def flag_values(self) -> dict[str, str]:
        """``--fast --gif-games 0`` -> ``{"fast": "True", "gif_games": "0"}`` (config.json's keys)."""
        return {name: tokens[1] if len(tokens) > 1 else "True" for name, tokens in self.flag_groups()}

    def matches(self, config: Mapping[str, Any]) -> bool:
        """Whether a run folder's config.json is this planned run."""
        # Without --fast a run must not have it (a default command is stock SB3).
        wanted = {"env": self.env_id, "seed": str(self.seed), "timesteps": str(self.timesteps), "fast": "False",
                  **self.flag_values()}
        return all(str(config.get(key)) == value for key, value in wanted.items())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "flags": list(self.flags), "eval_envs": list(self.eval_envs)}


def _seeded(script: str, label: str, env_id: str = NO_FRAMESKIP, seeds: Sequence[int] = (0, 1, 2)) -> list[PlannedRun]:
    return [PlannedRun(script, env_id, seed, MILLION, SEEDED_FLAGS, label=label) for seed in seeds]


#: The planned runs, in the order they are run.
CAMPAIGN: tuple[PlannedRun, ...] = (
    *_seeded(AIMBOT, "aimbot PPO"),
    *_seeded(ZOO, "zoo PPO"),
    *_seeded(AIMBOT, "aimbot PPO on v5", env_id=V5, seeds=(0,)),
    # The default commands of the first PPO chapters: only --seed 0 spelled out.
    PlannedRun("1_gym/1.3_train.py", NO_FRAMESKIP, 0, 100_000, label="first PPO, default command"),
    PlannedRun("2_baselines/2.1_envs.py", NO_FRAMESKIP, 0, 100_000, label="8 envs, default command"),
    PlannedRun("2_baselines/2.2_callbacks.py", NO_FRAMESKIP, 0, 200_000, label="callbacks, default command"),
    # The published budget (rl-baselines3-zoo, the original tutorial): 1e7 steps, each spanning sittings.
    # The zoo's first: its fast path exists today. Then the aimbot, seed 0 and then seeds 1 and 2.
    PlannedRun(ZOO, NO_FRAMESKIP, 0, LONG_RUN_STEPS, SEEDED_FLAGS, label="zoo PPO, 1e7 steps", spans_sittings=True),
    *[PlannedRun(AIMBOT, NO_FRAMESKIP, seed, LONG_RUN_STEPS, SEEDED_FLAGS, label="aimbot PPO, 1e7 steps",
                 spans_sittings=True) for seed in (0, 1, 2)],
)


def find_run_folder(plan: PlannedRun, logdir: Path) -> tuple[Path | None, bool]:
    """The newest run folder of ``plan`` under ``logdir`` and whether it finished.

    A finished one (summary.json) wins; else one with a checkpoint to resume; else none.
    """
    root = Path(logdir) / plan.name
    candidates = sorted(root.glob(f"{sanitize_env_id(plan.env_id)}__s{plan.seed}__*")) if root.is_dir() else []
    resumable = None
    for run_dir in reversed(candidates):
        config_path = run_dir / CONFIG_FILE
        if not config_path.is_file() or not plan.matches(json.loads(config_path.read_text())):
            continue
        if (run_dir / SUMMARY_FILE).is_file():
            return run_dir, True
        if resumable is None and (run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT).is_file():
            resumable = run_dir
    return resumable, False


@dataclass(frozen=True)
class Estimate:
    """Expected wall time of a planned run on this machine, and where the figure comes from."""

    seconds: float
    source: str

    def text(self) -> str:
        return f"~{self.seconds / 60:.0f} min ({self.source})"


def estimate(plan: PlannedRun, ledger: Mapping[str, Mapping[str, Any]], cpu: str | None = None) -> Estimate:
    """Expected seconds from the newest ledger entry of the same script and speed flag on this CPU.

    It falls back to any CPU, then to any script with the same speed flag (steps/s), then to
    :data:`GUESSED_STEPS_PER_SECOND`, and says which it used.
    """
    cpu = cpu_model() if cpu is None else cpu
    entries = sorted(ledger.values(), key=lambda e: str(e.get("campaign", {}).get("finished_at", "")))

    def pick(same_script: bool, same_cpu: bool) -> Mapping[str, Any] | None:
        found = [e for e in entries
                 if ("--fast" in e["planned"]["flags"]) == plan.fast
                 and (not same_script or e["planned"]["script"] == plan.script)
                 and (not same_cpu or e["summary"].get("cpu_model") == cpu)]
        return found[-1] if found else None

    for same_script, same_cpu in ((True, True), (True, False), (False, True), (False, False)):
        entry = pick(same_script, same_cpu)
        if entry is None:
            continue
        summary = entry["summary"]
        eval_seconds = float(entry.get("campaign", {}).get("eval_seconds", GUESSED_EVAL_SECONDS))
        # Training steps/s of the run's last process, times that process's wall/train ratio
        # (its periodic evaluations): right for resumed runs too, whose wall time is partial.
        seconds = plan.timesteps / max(float(summary["steps_per_second"]), 1e-9)
        if same_script and float(summary.get("train_seconds", 0)) > 0:
            seconds *= float(summary["wall_seconds"]) / float(summary["train_seconds"])
        where = "this CPU" if same_cpu else str(summary.get("cpu_model"))
        what = "its last run" if same_script else f"{entry['planned']['script']}'s steps/s"
        return Estimate(seconds + eval_seconds, f"{what} on {where}")
    rate = GUESSED_STEPS_PER_SECOND[plan.fast]
    return Estimate(plan.timesteps / rate + GUESSED_EVAL_SECONDS, f"a guess: {rate:.0f} steps/s, nothing measured yet")


@dataclass
class Status:
    plan: PlannedRun
    in_ledger: bool
    run_dir: Path | None
    finished: bool
    estimate: Estimate
    #: Env steps already saved (the run folder's checkpoint, or the parked one's), 0 for none.
    steps_done: int = 0
    #: Whether the run waits in results/in_progress/ (a run of an earlier sitting, on another machine).
    is_parked: bool = False

    @property
    def seconds_left(self) -> float:
        """The estimate for the steps still to train (all of it for a missing run), plus evaluation."""
        share = max(self.plan.timesteps - self.steps_done, 0) / self.plan.timesteps
        return self.estimate.seconds * share

    def line(self) -> str:
        args = shlex.join(self.plan.train_args(Path("runs/campaign"))[:-2])
        if self.in_ledger:
            return f"  in ledger  {args}"
        state = "finished, to evaluate" if self.finished else ("to resume" if self.steps_done else "missing")
        where = " (parked in results/in_progress)" if self.is_parked and self.run_dir is None else ""
        done = f", {self.steps_done:,} of {self.plan.timesteps:,} steps done{where}" if self.steps_done else ""
        left = Estimate(self.seconds_left, self.estimate.source).text()
        return f"  {state:<10} {args}   {left}{' left' if self.steps_done else ''}{done}"


def campaign_status(plans: Sequence[PlannedRun], ledger_dir: Path = LEDGER_DIR,
                    logdir: Path = CAMPAIGN_LOGDIR, in_progress: Path = IN_PROGRESS_DIR) -> list[Status]:
    ledger = read_ledger(ledger_dir)
    statuses = []
    for plan in plans:
        run_dir, finished = find_run_folder(plan, logdir)
        record = parked(plan.key, in_progress)
        steps = checkpoint_steps(run_dir) if run_dir is not None else int(record["checkpoint_steps"]) if record else 0
        finished = finished or bool(run_dir is None and record and record.get("finished"))
        statuses.append(Status(plan, plan.key in ledger, run_dir, finished, estimate(plan, ledger), steps,
                               record is not None))
    return statuses


def require_clean_tree(dirty: bool | None, allow_dirty: bool) -> None:
    """The ledger takes runs of committed code only: refuse to start one from a dirty tree."""
    if dirty and not allow_dirty:
        raise RLBreakoutError("tracked files differ from the commit (git status), and the ledger takes runs of "
                              "committed code only; commit or stash first (--allow-dirty runs anyway, marked dirty).")


def may_stop(plan: PlannedRun, logdir: Path, started: float) -> bool:
    """Whether the plan's run may be interrupted now: it saved a checkpoint since ``started``, and
    it is still training (no final model yet: an interrupt in its evaluation would lose the summary)."""
    run_dir, finished = find_run_folder(plan, logdir)
    if finished or run_dir is None or (run_dir / FINAL_MODEL_FILE).is_file():
        return False
    return (run_dir / CHECKPOINT_DIR / LATEST_CHECKPOINT).stat().st_mtime >= started


def started_commit(run_dir: Path) -> str | None:
    """The commit a run folder's first process ran (its config.json)."""
    return json.loads((Path(run_dir) / CONFIG_FILE).read_text()).get("git_commit")


def train(plan: PlannedRun, logdir: Path, child: ChildRun, in_progress: Path = IN_PROGRESS_DIR) -> Path | None:
    """Train or resume the planned run; its run folder once summary.json exists, None when stopped at the deadline.

    A run parked by an earlier sitting is copied back first; a resume runs the code of the
    commit the run started from (a worktree), and each process is one segment of segments.json.
    """
    unpark(plan.key, plan.name, logdir, in_progress)
    run_dir, finished = find_run_folder(plan, logdir)
    if finished and run_dir is not None:
        return run_dir
    args = plan.train_args(in_repo(logdir))
    if run_dir is not None and ((run_dir / FINAL_MODEL_FILE).is_file()
                                or checkpoint_steps(run_dir) >= plan.timesteps):
        # Killed after its last step but before summary.json: nothing left to resume (the
        # script refuses a --resume with no steps left), so the run starts over in a new folder.
        print(f"{run_dir} trained all its steps but wrote no {SUMMARY_FILE}; starting {plan.key} again", flush=True)
    elif run_dir is not None:
        commit = started_commit(run_dir)
        child = child.rooted(code_checkout(commit))
        args = [*plan.train_args(in_repo(logdir, child.root)), "--resume", str(in_repo(run_dir, child.root))]
        open_segment(run_dir, steps=checkpoint_steps(run_dir), commit=commit)
    code, summary_path = child(args)
    run_dir = run_dir or find_run_folder(plan, logdir)[0]
    if run_dir is not None:
        close_segments(run_dir)
    if code == INTERRUPTED_EXIT and child.deadline is not None and time.monotonic() >= child.deadline:
        return None
    if code != 0:
        raise RLBreakoutError(f"{plan.key} exited {code}; nothing written to the ledger "
                              f"(its run folder keeps any checkpoint, and the next campaign resumes it).")
    return (child.root / summary_path).parent  # the child printed it relative to its checkout


def evaluate(plan: PlannedRun, run_dir: Path, logdir: Path, child: ChildRun) -> list[Evaluation]:
    """Score the finished model over ``plan.eval_games`` whole games on each eval env, with the code that trained it."""
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    child = ChildRun(child.python, child.echo, code_checkout(started_commit(run_dir)))
    evaluations = []
    for env_id in plan.eval_envs:
        model_path = Path(str(summary["model_path"]))
        model_path = in_repo(model_path if model_path.is_absolute() else child.root / model_path, child.root)
        args = plan.eval_args(str(model_path), env_id, in_repo(logdir / "evals", child.root))
        code, last = child(args)
        if code != 0:
            raise RLBreakoutError(f"evaluating {plan.key} on {env_id} exited {code}; nothing written to the ledger.")
        scores = json.loads((child.root / last).read_text())["scores"]
        evaluations.append(Evaluation(env_id, tuple(float(s) for s in scores), shlex.join(["python", *args])))
    return evaluations


def complete(plan: PlannedRun, logdir: Path, ledger_dir: Path, child: ChildRun,
             in_progress: Path = IN_PROGRESS_DIR) -> Path | None:
    """Train or resume, evaluate on every eval env, write the ledger file; its path.

    None when the deadline stopped the training first: the run is then parked in
    ``in_progress`` for the next sitting (commit it).
    """
    run_dir = train(plan, logdir, child, in_progress)
    if run_dir is None:
        stopped, _ = find_run_folder(plan, logdir)
        if stopped is not None:
            print(f"parked {plan.key} at {checkpoint_steps(stopped):,} of {plan.timesteps:,} steps: "
                  f"{park(plan.key, stopped, in_progress)} (commit it; the next campaign resumes it)", flush=True)
        return None
    started = time.perf_counter()
    evaluations = evaluate(plan, run_dir, logdir, child)
    entry = build_entry(plan.key, plan.as_dict(), run_dir, evaluations)
    entry["campaign"] = {"eval_seconds": round(time.perf_counter() - started, 1),
                         "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    entry["segments"] = read_segments(run_dir)
    path = write_entry(entry, ledger_dir)
    unpark_done(plan.key, in_progress)
    return path


def park_unfinished(plans: Sequence[PlannedRun], logdir: Path = CAMPAIGN_LOGDIR,
                    in_progress: Path = IN_PROGRESS_DIR, ledger_dir: Path = LEDGER_DIR) -> list[Path]:
    """Park every planned run that has a checkpoint but no ledger entry (before a sitting ends); the parks."""
    parks = []
    for status in campaign_status(plans, ledger_dir, logdir, in_progress):
        if not status.in_ledger and status.run_dir is not None:
            parks.append(park(status.plan.key, status.run_dir, in_progress))
            print(f"parked {status.plan.key} at {status.steps_done:,} of {status.plan.timesteps:,} steps: "
                  f"{parks[-1]}", flush=True)
    return parks


def select_plans(plans: Sequence[PlannedRun], only: Sequence[str]) -> list[PlannedRun]:
    """The planned runs whose ledger key contains one of ``only`` (all of them when it is empty).

    Why: a borrowed machine (a GPU for a few minutes) or a second sitting can take a part of the
    plan. A pattern that matches no planned run is a typo, and says so with the keys to choose from.
    """
    patterns = [p for p in only if p]
    unmatched = [p for p in patterns if not any(p in plan.key for plan in plans)]
    if unmatched:
        raise ConfigError(f"--only {', '.join(unmatched)} matches no planned run; use a part of one of these keys "
                          f"(--list shows them): {', '.join(plan.key for plan in plans)}")
    return [plan for plan in plans if not patterns or any(p in plan.key for p in patterns)]


def run_campaign(plans: Sequence[PlannedRun], hours: float, *, ledger_dir: Path = LEDGER_DIR,
                 logdir: Path = CAMPAIGN_LOGDIR, child: ChildRun | None = None,
                 dirty: bool | None = None, allow_dirty: bool = False,
                 in_progress: Path = IN_PROGRESS_DIR) -> list[Path]:
    """Complete missing planned runs in order, one at a time, each only if it fits in what is left of ``hours``.

    A run that spans sittings (:attr:`PlannedRun.spans_sittings`) is trained anyway, until the
    hours are up; then it saves a checkpoint, is parked, and the campaign stops. Returns the
    ledger files written. A run that fails stops the campaign with one line, and so does a
    second campaign on the same ``logdir`` (:data:`LOCK_FILE` names the running one).
    """
    holder = f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M')}"
    with exclusive_lock(logdir / LOCK_FILE, holder, _refusal) as lock:
        return _run_plans(plans, hours, ledger_dir, logdir, child or ChildRun(), dirty, allow_dirty, in_progress,
                          lambda plan: lock.note(f"{holder}, running {plan.key}"))


def _refusal(holder: str) -> str:
    return (f"another campaign is running on this repository ({holder}); wait for it to end, or stop it "
            f"(kill -INT <its pid>: it keeps its checkpoint) and start this one again.")


def _run_plans(plans: Sequence[PlannedRun], hours: float, ledger_dir: Path, logdir: Path, child: ChildRun,
               dirty: bool | None, allow_dirty: bool, in_progress: Path, starting: Callable[[PlannedRun], None]
               ) -> list[Path]:
    deadline = time.monotonic() + hours * 3600
    written = []
    for plan in plans:
        # Read afresh each time: the run just finished is the newest measure of this machine's speed.
        (status,) = campaign_status([plan], ledger_dir, logdir, in_progress)
        if status.in_ledger:
            continue
        left = deadline - time.monotonic()
        needed = GUESSED_EVAL_SECONDS if status.finished else status.seconds_left  # trained: evaluation only
        if needed > left and not plan.spans_sittings:
            print(f"skipped {status.plan.key}: expected {status.estimate.text()}, {left / 60:.0f} min left", flush=True)
            continue
        require_clean_tree(git_dirty() if dirty is None else dirty, allow_dirty)  # evaluation runs code too
        starting(plan)  # the lock file names the run now training
        timed = ChildRun(child.python, child.echo, child.root, deadline if plan.spans_sittings else None,
                         lambda started, plan=plan: may_stop(plan, logdir, started))
        path = complete(status.plan, logdir, ledger_dir, timed, in_progress)
        if path is None:
            break  # the hours are up
        print(f"ledger: {path}", flush=True)
        written.append(path)
    return written
