"""The README results tables and the sentences that compare, written from the ledger alone.

A README marks each generated block with a pair of comments::

    <!-- results: chapter3 -->
    ...written by pictures/make_tables.py...
    <!-- /results: chapter3 -->

:func:`render_block` writes a block's text from the ledger and the plan, and
:func:`rewrite` puts every block of a README in place; tests compare the READMEs with
what it would write, so a figure in a README cannot drift from results/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rlbreakout.env_ids import BACKEND_LABELS
from rlbreakout.errors import RLBreakoutError
from rlbreakout.results.campaign import (
    CAMPAIGN,
    DISPLAY_ONLY_FLAGS,
    LONG_RUN_STEPS,
    MILLION,
    NO_FRAMESKIP,
    REPO_ROOT,
    V5,
    PlannedRun,
)
from rlbreakout.results.fresh import FRESH_GAMES, FRESH_KEY
from rlbreakout.results.ledger import GroupFigures, aggregate, env_label

#: The comment pair around a generated block; ``name`` picks what it holds.
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results: (?P=name) -->)", re.S)
#: Which scripts each table shows (None: every planned run).
TABLE_SCRIPTS: dict[str, tuple[str, ...] | None] = {
    "all": None,
    "chapter1": ("1.3_train",),
    "chapter2": ("2.1_envs", "2.2_callbacks", "2.3_copying_hp_zoo"),
    "chapter3": ("3.3_aimbot_training",),
}
#: A block ``model-<stem>`` describes ``models/<stem>.pt`` from the record written beside it.
MODEL_BLOCK_PREFIX = "model-"
MODEL_RECORD_SUFFIX = ".json"
MODELS_DIR = REPO_ROOT / "models"
MISSING = "–"
HOW_TO_FILL = "`make results HOURS=...` (pictures/campaign.py)"
Ledger = Mapping[str, Mapping[str, Any]]


def groups(plans: Sequence[PlannedRun]) -> dict[str, list[PlannedRun]]:
    """Planned runs by group (same setting, several seeds), in plan order."""
    grouped: dict[str, list[PlannedRun]] = {}
    for plan in plans:
        grouped.setdefault(plan.group, []).append(plan)
    return grouped


def group_figures(runs: Sequence[PlannedRun], ledger: Ledger) -> GroupFigures | None:
    entries = [ledger[plan.key] for plan in runs if plan.key in ledger]
    return aggregate(entries, runs[0].eval_envs) if entries else None


def _seeds_cell(runs: Sequence[PlannedRun], figures: GroupFigures | None) -> str:
    done = set(figures.seeds) if figures else set()
    planned = [plan.seed for plan in runs]
    missing = [seed for seed in planned if seed not in done]
    text = f"{len(done)} of {len(planned)}"
    return text + (f" (to run: {', '.join(map(str, missing))})" if missing else "")


def _flags(plan: PlannedRun, backends: Sequence[str] = ()) -> str:
    """The flags of a group; ``--fast`` names the env backend it trained on (``--fast (C++ vector envs)``)."""
    flags = " ".join(" ".join(tokens) for name, tokens in plan.flag_groups() if name not in DISPLAY_ONLY_FLAGS)
    cell = f"`{flags}`" if flags else "defaults"
    if plan.fast and backends:
        cell += f" ({' / '.join(BACKEND_LABELS.get(b, b) for b in backends)})"
    return cell


def fast_backends(runs: Sequence[PlannedRun], ledger: Ledger) -> list[str]:
    """The env backends a group's ``--fast`` runs trained on, as their summary.json recorded them.

    A group not yet run names none: which backend ``--fast`` picks depends on the code that
    will run it (3.3's aimbot view trained on the classic envs in the ledger's runs, and has
    an ale_vector path since).
    """
    return sorted({backend for plan in runs if plan.key in ledger
                   if (backend := ledger[plan.key]["summary"].get("backend"))})


def render_table(plans: Sequence[PlannedRun], ledger: Ledger, scripts: tuple[str, ...] | None) -> str:
    """One row per group: per eval env the mean over seeds of per-seed means and medians (min–max)."""
    eval_envs = plans[0].eval_envs
    header = ["run", "script", "flags", "train env", "steps", "seeds"]
    for env_id in eval_envs:
        header += [f"{env_label(env_id)} mean", f"{env_label(env_id)} median"]
    header += ["steps/s", "commit", "CPU"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---|---:|---|" + "---:|" * (2 * len(eval_envs) + 1)
             + "---|---|"]
    for runs in groups(plans).values():
        first = runs[0]
        if scripts is not None and first.name not in scripts:
            continue
        figures = group_figures(runs, ledger)
        row = [first.label, f"`{first.name}.py`", _flags(first, fast_backends(runs, ledger)), first.env_id, f"{first.timesteps:,}",
               _seeds_cell(runs, figures)]
        for env_id in eval_envs:
            for table in ("means", "medians"):
                value = getattr(figures, table).get(env_id) if figures else None
                row.append(value.text() if value else MISSING)
        if figures and figures.steps_per_second:
            row += [f"{figures.steps_per_second.text(0)}", ", ".join(f"`{c}`" for c in figures.commits)
                    + (" (dirty)" if figures.dirty else ""), ", ".join(figures.cpus)]
        else:
            row += [MISSING, MISSING, MISSING]
        lines.append("| " + " | ".join(row) + " |")
    games = plans[0].eval_games
    lines.append("")
    lines.append(f"Each cell: the mean over seeds of each seed's mean (or median) over {games} whole games, "
                 f"with the seeds' min–max when there are several. `--fast (...)` names the env backend the runs "
                 f"trained on, from their summary.json; evaluation plays on the classic envs whatever trained. "
                 f"Runs not yet in `results/` show {MISSING}; {HOW_TO_FILL} makes them.")
    return "\n".join(lines)


def _find(plans: Sequence[PlannedRun], name: str, env_id: str, timesteps: int = MILLION) -> list[PlannedRun]:
    """The ``--fast`` seeds of one script, env and budget (the 1e6 comparison by default)."""
    return [plan for plan in plans if plan.name == name and plan.env_id == env_id and plan.fast
            and plan.timesteps == timesteps]


#: What others published at 1e7 steps on BreakoutNoFrameskip-v4, quoted beside the ledger's 1e7 figures (not measured here).
PUBLISHED_AT_1E7: dict[str, str] = {
    "2.3_copying_hp_zoo": "rl-baselines3-zoo reports 398 ± 33 for this PPO",
    "3.3_aimbot_training": "the original tutorial reported 200-400 points a game",
}


def _waits(runs: Sequence[PlannedRun], ledger: Ledger) -> str:
    missing = [plan for plan in runs if plan.key not in ledger]
    seeds = ", ".join(str(plan.seed) for plan in missing)
    return f"`{runs[0].name}.py --env {runs[0].env_id}` (seed{'s' if len(missing) > 1 else ''} {seeds})"


def render_comparison(plans: Sequence[PlannedRun], ledger: Ledger) -> str:
    """The sentences that compare: the aimbot view against the zoo PPO, and v5 against NoFrameskip-v4."""
    aimbot, zoo = _find(plans, "3.3_aimbot_training", NO_FRAMESKIP), _find(plans, "2.3_copying_hp_zoo", NO_FRAMESKIP)
    aimbot_v5 = _find(plans, "3.3_aimbot_training", V5)
    fig = {name: group_figures(runs, ledger) for name, runs in (("aimbot", aimbot), ("zoo", zoo), ("aimbot_v5", aimbot_v5))}
    sentences = []

    def partial(figures: GroupFigures, runs: Sequence[PlannedRun]) -> str:
        done = len(figures.seeds)
        return "" if done == len(runs) else f", from {done} of {len(runs)} seeds so far ({_waits(runs, ledger)} to come)"

    a, z = fig["aimbot"], fig["zoo"]
    if a and z and NO_FRAMESKIP in a.means and NO_FRAMESKIP in z.means and z.means[NO_FRAMESKIP].mean > 0:
        parts = []
        for env_id in (NO_FRAMESKIP, V5):
            if env_id in a.means and env_id in z.means and z.means[env_id].mean > 0:
                parts.append(f"{a.means[env_id].mean / z.means[env_id].mean:.1f}x on {env_id} "
                             f"({a.means[env_id].mean:.1f} against {z.means[env_id].mean:.1f})")
        sentences.append(f"At 1e6 steps the aimbot view scores {' and '.join(parts)}, mean over seeds of the "
                         f"per-seed means{partial(a, aimbot)}{partial(z, zoo)}.")
    else:
        waiting = [_waits(runs, ledger) for name, runs in (("aimbot", aimbot), ("zoo", zoo)) if not fig[name]]
        if waiting:
            sentences.append(f"How much the aimbot view helps at 1e6 steps waits for {' and '.join(waiting)}: "
                             f"{HOW_TO_FILL}.")
        else:  # both ran, but the zoo PPO scored no point on average: a ratio would mean nothing
            sentences.append("The zoo PPO's mean is 0 at 1e6 steps, so no ratio says how much the aimbot view helps.")
    for name, runs, who in (("aimbot", aimbot, "The aimbot agent"), ("zoo", zoo, "The zoo agent")):
        figures = fig[name]
        if figures and NO_FRAMESKIP in figures.means and V5 in figures.means and figures.means[NO_FRAMESKIP].mean > 0:
            kept = figures.means[V5].mean / figures.means[NO_FRAMESKIP].mean
            sentences.append(f"{who} trained on {NO_FRAMESKIP} keeps {kept:.0%} of its mean on sticky-action v5 "
                             f"({figures.means[V5].mean:.1f} of {figures.means[NO_FRAMESKIP].mean:.1f})"
                             f"{partial(figures, runs)}.")
        else:
            sentences.append(f"How much of {who.lower()}'s score survives on v5 waits for {_waits(runs, ledger)}.")
    for name, who in (("2.3_copying_hp_zoo", "the zoo agent"), ("3.3_aimbot_training", "the aimbot agent")):
        sentences.append(long_run_sentence(plans, ledger, name, who))
    v5, base = fig["aimbot_v5"], fig["aimbot"]
    if v5 and V5 in v5.means:
        against = (f", against {base.means[V5].mean:.1f} for the one trained on {NO_FRAMESKIP}"
                   if base and V5 in base.means else "")
        sentences.append(f"Trained on v5 itself, the aimbot agent scores {v5.means[V5].mean:.1f} there{against}.")
    else:
        sentences.append(f"What training on v5 itself gives waits for {_waits(aimbot_v5, ledger)}.")
    return "\n".join(sentences)


def long_run_sentence(plans: Sequence[PlannedRun], ledger: Ledger, name: str, who: str) -> str:
    """How far 1e7 steps take ``name`` past its 1e6 runs, how much of it survives on v5, and the published figure."""
    long_runs, short_runs = _find(plans, name, NO_FRAMESKIP, LONG_RUN_STEPS), _find(plans, name, NO_FRAMESKIP)
    published = f"{PUBLISHED_AT_1E7[name]} at 1e7 (its figure, not measured here)"
    long_figures, short_figures = group_figures(long_runs, ledger), group_figures(short_runs, ledger)
    if not long_figures or NO_FRAMESKIP not in long_figures.means:
        return f"How far 1e7 steps take {who} past 1e6 waits for {_waits(long_runs, ledger)} at 1e7 steps; {published}."
    mean = long_figures.means[NO_FRAMESKIP].mean
    done = len(long_figures.seeds)
    so_far = "" if done == len(long_runs) else f" (from {done} of {len(long_runs)} seeds so far)"
    text = f"At 1e7 steps {who} scores {mean:.1f} on {NO_FRAMESKIP}{so_far}"
    if short_figures and NO_FRAMESKIP in short_figures.means and short_figures.means[NO_FRAMESKIP].mean > 0:
        before = short_figures.means[NO_FRAMESKIP].mean
        text += f", {mean / before:.1f}x its 1e6 mean of {before:.1f}"
    text += f"; {published}."
    if V5 in long_figures.means and mean > 0:
        text += (f" On sticky-action v5 it keeps {long_figures.means[V5].mean / mean:.0%} of it "
                 f"({long_figures.means[V5].mean:.1f} of {mean:.1f}).")
    return text


def model_record(stem: str, models_dir: Path = MODELS_DIR) -> dict[str, Any]:
    """What pictures/export_best_policy.py recorded beside ``models/<stem>.pt``: its ledger key and checksum."""
    path = models_dir / f"{stem}{MODEL_RECORD_SUFFIX}"
    if not path.is_file():
        raise RLBreakoutError(f"{path} is missing; export the policy with pictures/export_best_policy.py --out "
                              f"models/{stem}.pt")
    return json.loads(path.read_text())


def render_model(stem: str, ledger: Ledger, models_dir: Path = MODELS_DIR) -> str:
    """Where ``models/<stem>.pt`` came from, and its scores, from the ledger entry it was exported from."""
    record = model_record(stem, models_dir)
    entry = ledger.get(record["ledger_key"])
    if entry is None:
        raise RLBreakoutError(f"models/{stem}.pt was exported from {record['ledger_key']}, which is not in results/.")
    summary = entry["summary"]
    lines = [f"Exported from the ledger entry `results/{record['ledger_key']}.json` (seed {summary['seed']}, "
             f"{summary['timesteps']:,} env steps, {summary['wall_seconds']:,.0f} s wall, "
             f"{summary['steps_per_second']:.1f} env steps/s of training, commit `{str(summary['git_commit'])[:7]}`"
             f"{' (dirty)' if summary.get('git_dirty') else ''}, {summary['cpu_model']} CPU"
             f"{' with an ' + summary['gpu_model'] + ' GPU' if summary.get('gpu_model') else ''}), trained by:",
             "", "```bash", entry["command"].replace("python3 ", "python ", 1), "```", ""]
    group = record["ledger_key"].rsplit("__s", 1)[0]
    seeds = sum(key.rsplit("__s", 1)[0] == group for key in ledger)
    lines += [f"Its evaluation in the ledger, with the seed it trained with, picked it ({record['picked_by']}, "
              f"the best of {seeds} seeds). The best of several noisy means is most likely a lucky one (the "
              f"winner's curse), so these figures overstate the file; they are not its score:", ""]
    for env_id, evaluation in entry["evaluations"].items():
        lines.append(f"* {env_id}: mean {evaluation['mean_reward']:.2f}, median {evaluation['median_reward']:.1f} "
                     f"over {evaluation['n_games']} whole games")
    fresh = record.get(FRESH_KEY)
    if fresh:
        lines += ["", "Its score, from a fresh evaluation of this very file (seeds apart from those that picked it):",
                  ""]
        lines += [f"* {env_id}: mean **{figures['mean']:.1f}** (standard error {figures['standard_error']:.1f}), "
                  f"median **{figures['median']:.1f}** over {figures['n_games']} whole games"
                  + (f" ({figures['min']:.0f}–{figures['max']:.0f})" if "min" in figures and "max" in figures else "")
                  + f", `--seed {figures['seed']}`"
                  + (f" (`{figures['script']}.py --load`, commit `{str(figures['git_commit'])[:7]}`"
                     f"{' (dirty)' if figures.get('git_dirty') else ''}, {figures['cpu_model']} CPU)"
                     if {"script", "git_commit", "cpu_model"} <= set(figures) else "")
                  for env_id, figures in fresh.items()]
    else:
        lines += ["", f"A fresh evaluation of this very file ({FRESH_GAMES} whole games on each env, seeds apart from "
                  f"those that picked it, with the standard error) is still to run; `{FRESH_KEY}` in "
                  f"`models/{stem}{MODEL_RECORD_SUFFIX}` will hold it, and this block will quote it."]
    return "\n".join(lines)


def render_block(name: str, ledger: Ledger, plans: Sequence[PlannedRun] = CAMPAIGN) -> str:
    """The text of the block called ``name``."""
    if name.startswith(MODEL_BLOCK_PREFIX):
        return render_model(name[len(MODEL_BLOCK_PREFIX):], ledger)
    if name == "comparison":
        return render_comparison(plans, ledger)
    if name not in TABLE_SCRIPTS:
        raise RLBreakoutError(f"unknown results block {name!r}; use comparison or one of {', '.join(TABLE_SCRIPTS)}.")
    return render_table(plans, ledger, TABLE_SCRIPTS[name])


def rewrite(text: str, render: Callable[[str], str]) -> str:
    """``text`` with every results block's body replaced by ``render(name)``."""
    return BLOCK.sub(lambda m: f"{m.group(1)}{render(m.group('name'))}\n{m.group(4)}", text)


def block_names(text: str) -> list[str]:
    return [m.group("name") for m in BLOCK.finditer(text)]
