"""The results campaign: which planned runs the ledger (results/) has, and running the rest.

Run it:  python pictures/campaign.py --list          # what is in results/, what is missing, how long each takes
         python pictures/campaign.py --hours 2.5     # run missing ones, one at a time, while they fit
         make results HOURS=2.5                      # the same through the Makefile
         python pictures/campaign.py --hours 1 --only 1.3_train,2.1_envs   # a part of the plan
In the background, for a long sitting (commit each results/*.json as soon as it appears):
         nohup python pictures/campaign.py --hours 2.5 > campaign.log 2>&1 &
         python pictures/campaign.py --park          # before the sitting ends: commit results/in_progress/
A 1e7-step run spans sittings: --hours trains it until the hours are up, then it saves a
checkpoint and is parked in results/in_progress/ (tracked: commit it); the next campaign,
on any machine, copies it back and resumes it with the code of the commit it started from
(a git worktree under runs/worktrees/). Each process is a segment in the ledger entry.
The planned runs are data: rlbreakout.results.campaign.CAMPAIGN. Each is its chapter script run as a
learner would run it; a run folder with a checkpoint is resumed; each finished model is
scored over 20 whole games on BreakoutNoFrameskip-v4 and on ALE/Breakout-v5 with the
script's own --load; then one JSON file lands in results/. Only committed code runs.
Read: README.md#results (tables drawn from results/ by pictures/make_tables.py).
"""

# %% Imports
import argparse
from pathlib import Path

from rlbreakout.cli import parse_script_args
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import number, output_folder
from rlbreakout.provenance import cpu_model
from rlbreakout.results.campaign import (
    CAMPAIGN,
    CAMPAIGN_LOGDIR,
    campaign_status,
    park_unfinished,
    run_campaign,
    select_plans,
)
from rlbreakout.results.ledger import LEDGER_DIR
from rlbreakout.results.long_runs import IN_PROGRESS_DIR


# %% Settings
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="only print the plan (the default without --hours)")
    action.add_argument("--hours", type=number(0, 10_000, low_open=True), help="run missing planned runs while they fit in this many hours "
                                                    "(a 1e7-step run trains until they are up, then is parked)")
    action.add_argument("--park", action="store_true",
                        help="copy every unfinished planned run's checkpoint, segments and curves into "
                             "results/in_progress/ (commit it before the sitting ends)")
    parser.add_argument("--ledger", type=output_folder, default=str(LEDGER_DIR), help="the ledger folder")
    parser.add_argument("--logdir", type=output_folder, default=str(CAMPAIGN_LOGDIR), help="root of the campaign's run folders")
    parser.add_argument("--in-progress", type=output_folder, default=str(IN_PROGRESS_DIR),
                        help="where unfinished long runs are parked between sittings (tracked: commit it)")
    parser.add_argument("--only", default="",
                        help="comma-separated parts of ledger keys: only the planned runs whose key holds one "
                             "(e.g. 1.3_train or __s2); default: the whole plan")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run from uncommitted code (its entries say git_dirty: true)")
    args = parse_script_args(parser)
    if args.hours is not None and args.hours <= 0:
        raise ConfigError(f"--hours must be > 0, got {args.hours}.")
    args.plans = select_plans(CAMPAIGN, [part.strip() for part in args.only.split(",")])
    return args


args = parse_args()

# %% The plan: in the ledger, finished but not yet evaluated, resumable, or missing
statuses = campaign_status(args.plans, Path(args.ledger), Path(args.logdir), Path(args.in_progress))
print(f"{sum(s.in_ledger for s in statuses)} of {len(statuses)} planned runs in {args.ledger} "
      f"(times expected on {cpu_model()}):")
for status in statuses:
    print(status.line())

# %% Park what is unfinished, for the next sitting (another machine: only git crosses)
if args.park:
    parks = park_unfinished(args.plans, Path(args.logdir), Path(args.in_progress), Path(args.ledger))
    print(f"{len(parks)} run(s) parked" + (": commit results/in_progress/" if parks else ""))

# %% Run what is missing, one at a time
if args.hours is not None:
    written = run_campaign(args.plans, args.hours, ledger_dir=Path(args.ledger), logdir=Path(args.logdir),
                           allow_dirty=args.allow_dirty, in_progress=Path(args.in_progress))
    print(f"{len(written)} ledger file(s) written" + "".join(f"\n  {path}" for path in written))
