"""0.2 Benchmark: how fast, and how big, each way of training on Atari is on this machine.

What you learn: where the time of Atari PPO goes on a small CPU machine, and what
``--fast`` buys: ale-py's C++ vector env (``--backend ale_vector``), the network precision
(fp32, or bf16 where the hardware has it) and memory layout (NCHW or channels_last) that
measured fastest here, with torch and ALE threads chosen from the free cores. It measures

1. env steps/s of random play for DummyVecEnv, SubprocVecEnv and ale_vector (8 and 16 envs),
   and the peak memory (RSS) of each one's whole process tree;
2. SB3 PPO training steps/s at rl-zoo's Atari hyperparameters: stock (classic envs,
   fp32) against ``--fast``; speedup = fast / stock; and (part ``aimbot``) chapter 3.3's training,
   ``--fast`` on the aimbot view (the batched aimbot on ale_vector), against 2.3's ``--fast``;
3. the from-scratch PPO of 2.4, classic + fp32 against ale_vector + bf16;
4. the ceiling: training (4 epochs over the sample), batch-8 inference and ale_vector stepping,
   each timed alone per env step at the zoo settings; the steps/s if they ran back to back
   with nothing in between, and the fraction of it each side above reaches;
5. the physical limit: this CPU's peak for a large matrix multiply (fp32, and bf16 where the
   hardware has it), and the FLOP/s that SB3's training step, the network alone, a rollout
   inference and a whole env step reach, as a share of the peak in their precision
   (FLOPs counted by torch's FlopCounterMode, rlbreakout/speed/flops.py);
6. the training step split into forward, backward, optimiser and the rest, per minibatch,
   for stock and --fast (rlbreakout/speed/step_breakdown.py);
7. with ``--parity-steps N``: learning parity for each of ``--parity-pairs``: 2.3 trained N
   steps stock and with ``--fast``, and 2.4 against 2.5, for ``--parity-seeds`` seeds, each
   scored over 30 whole games (rlbreakout/speed/parity.py).

Every measurement runs in a fresh process; stock and fast alternate (A B, B A, ...)
and the table shows medians, because a shared machine drifts.

Run it:  python 0_setup/0.2_benchmark.py                   # ~15 min on 2 cores
         python 0_setup/0.2_benchmark.py --tiny            # seconds: checks that it runs
         python 0_setup/0.2_benchmark.py --device cuda     # the network on a GPU (envs stay on the CPU)
         RLBREAKOUT_COMPILE=1 python 0_setup/0.2_benchmark.py --parts peak --parity-steps 50000  # ~45 min
In Spyder: edit the Settings cell (no flag reaches a cell; TINY = True for a seconds-long check), then run
         it cell by cell (Ctrl+Return); the measurements and the table stay in the Variable Explorer.
Read:    0_setup/README.md and the README's "Performance" section
"""

# %% Imports
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from rlbreakout.cli import common_parser, parse_script_args, resolve_device
from rlbreakout.env_ids import check_env_id
from rlbreakout.errors import ConfigError
from rlbreakout.flag_types import MAX_ENVS, MAX_THREADS, whole
from rlbreakout.runs import Run
from rlbreakout.speed.benchmark import (
    AIMBOT_FAST,
    ENV_SETUPS,
    PPO_SIDES,
    STOCK_MATCHED,
    alternating,
    child_command,
    cpu_model,
    load_average,
    median,
    relevant_cpu_flags,
    run_child,
    uneven_threads_note,
)
from rlbreakout.speed.hardware import bf16_supported
from rlbreakout.speed.measure import lever_label
from rlbreakout.speed.parity import (
    PARITY_EVAL_GAMES,
    PARITY_PAIRS,
    SCRATCH_PAIR,
    ZOO_PAIR,
    parity_markdown,
    run_parity,
    score_difference,
    within_spread,
)
from rlbreakout.speed.step_breakdown import PARTS as BREAKDOWN_PARTS
from rlbreakout.speed.threads import free_cores

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The scripts measured here are the parity pairs' (one place names their paths).
SCRATCH_SCRIPT = SCRATCH_PAIR.stock_script
#: 2.4's algorithm with every speed lever, the envs stepping while the network acts.
FAST_SCRATCH_SCRIPT = SCRATCH_PAIR.fast_script
ZOO_SCRIPT = ZOO_PAIR.stock_script
#: Whole games in the final evaluation of the --zoo-steps run (the README tables use 20).
ZOO_EVAL_GAMES = 20
TABLE_FILE = "benchmark.md"
#: What summary.json keeps of each parity run.
PARITY_KEYS = ("seed", "timesteps", "steps_per_second", "mean_reward", "median_reward", "wall_seconds", "run_dir")
#: Tiny mode: a few seconds per measurement, same code paths.
TINY_SETTINGS = {"n_envs_list": [2], "repeats": 1, "env_steps": 64, "timesteps": 128, "n_envs": 2}
ALL_PARTS: tuple[str, ...] = ("env", "ppo", "aimbot", "scratch", "ceiling", "peak", "breakdown")
#: 3.3 --fast (the batched aimbot on ale_vector) should train at least this share of 2.3 --fast's env steps/s.
AIMBOT_SPEED_TARGET = 0.9
TINY_SCRATCH_FLAGS = ["--num-steps", "16", "--num-minibatches", "1", "--update-epochs", "1"]
#: Tiny mode's PPO settings for each parity pair's scripts (SB3's flags for 2.3 and 3.3, 2.4's for 2.4 / 2.5).
TINY_SB3_FLAGS = ["--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1"]
TINY_PARITY_FLAGS = {"2.3": TINY_SB3_FLAGS, "3.3": TINY_SB3_FLAGS,
                     "2.5": ["--n-envs", "2", *TINY_SCRATCH_FLAGS]}

# %% Settings: edit these in Spyder (no flag reaches a cell); in a terminal or with F5, a flag overrides them
ENV_ID = "BreakoutNoFrameskip-v4"  # --env: the game every measurement plays
SEED = 0  # --seed
TIMESTEPS = 8192  # --timesteps (or --train-steps): PPO env steps per training measurement
N_ENVS = 8  # --n-envs: envs of the PPO measurements (the zoo's 8)
REPEATS = 3  # --repeats: measurements of each side, alternating (the table shows medians)
PARTS = list(ALL_PARTS)  # --parts: which tables to measure (e.g. ["ppo", "aimbot"]; on the command line: ppo,aimbot)
TINY = False  # --tiny: seconds-long measurements, the same code paths: checks that it runs
#: A child that runs longer than this is stuck (a full measurement takes about a minute).
CHILD_TIMEOUT_SECONDS = 1800


# %% Flags
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags (in Spyder: the defaults, about 15 minutes; --tiny for seconds)."""
    parser = common_parser(__doc__.splitlines()[0], env=ENV_ID, timesteps=TIMESTEPS, seed=SEED, n_envs=N_ENVS,
                           device="cpu")
    parser.add_argument("--train-steps", dest="timesteps", type=whole(1),
                        help="PPO env steps per training measurement (same as --timesteps)")
    parser.add_argument("--n-envs-list", default="8,16", help="env counts of the env-stepping and memory table")
    parser.add_argument("--repeats", type=whole(1, 100), default=REPEATS,
                        help="measurements of each side (medians are reported)")
    parser.add_argument("--env-steps", type=whole(1), default=4000, help="env steps per env-stepping measurement")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"which tables to measure: {', '.join(ALL_PARTS)}")
    parser.add_argument("--stock-torch-threads", type=whole(0, MAX_THREADS), default=0,
                        help="torch threads of the stock PPO side (0: torch's default, what stock SB3 gets)")
    parser.add_argument("--matched-stock", action="store_true",
                        help="also measure stock SB3 with torch threads chosen like --fast (isolates that lever)")
    parser.add_argument("--scratch-script", default=str(SCRATCH_SCRIPT), help="the from-scratch PPO script (2.4)")
    parser.add_argument("--fast-scratch-script", default=str(FAST_SCRATCH_SCRIPT),
                        help="its fastest path (2.5: ale_vector, bf16 where it pays, overlapped stepping where the cores allow)")
    parser.add_argument("--zoo-steps", type=whole(0), default=0,
                        help="also train 2.3 --fast for this many env steps on --device and evaluate it "
                             f"over {ZOO_EVAL_GAMES} games (1000000 on a GPU gives the README's figures; 0: skip)")
    parser.add_argument("--parity-steps", type=whole(0), default=0,
                        help="also train each parity pair this many env steps, stock and fast, for each parity "
                             "seed and compare the scores (50000 gives the README's table; 0: skip)")
    parser.add_argument("--parity-seeds", type=whole(1, 100), default=3, help="seeds 0..N-1 of the parity runs")
    parser.add_argument("--parity-pairs", default=",".join(PARITY_PAIRS),
                        help="which stock / fast pairs the parity runs train: 2.3 (2.3 stock against 2.3 --fast), "
                             "2.5 (2.4 against 2.5), 3.3 (3.3 --fast on the classic envs against ale_vector)")
    parser.add_argument("--tiny", action=argparse.BooleanOptionalAction, default=TINY,
                        help="seconds-long measurements (tests)")
    args = parse_script_args(parser, argv)
    try:
        args.n_envs_list = [int(n) for n in str(args.n_envs_list).split(",") if n.strip()]
    except ValueError as exc:
        raise ConfigError(f"--n-envs-list must be comma-separated integers, e.g. 8,16; got {args.n_envs_list!r}.") from exc
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(args.parts) - set(ALL_PARTS))
    if unknown:
        raise ConfigError(f"unknown --parts {unknown}; choose from {', '.join(ALL_PARTS)}.")
    if args.tiny:
        for key, value in TINY_SETTINGS.items():
            setattr(args, key, value)
    if not args.n_envs_list or not 1 <= min(args.n_envs_list) <= max(args.n_envs_list) <= MAX_ENVS:
        raise ConfigError(f"--n-envs-list must be env counts from 1 to {MAX_ENVS}, e.g. 8,16; got {args.n_envs_list}.")
    args.parity_pairs = [name.strip() for name in str(args.parity_pairs).split(",") if name.strip()]
    unknown_pairs = sorted(set(args.parity_pairs) - set(PARITY_PAIRS))
    if unknown_pairs or not args.parity_pairs:
        raise ConfigError(f"unknown --parity-pairs {unknown_pairs or args.parity_pairs}; choose from "
                          f"{', '.join(PARITY_PAIRS)}, comma-separated.")
    args.device = resolve_device(args.device)  # envs always step on the CPU; --device moves the network
    return args


# %% 1. Env stepping and memory
def measure_envs(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for n_envs in args.n_envs_list:
        samples: dict[str, list[dict[str, Any]]] = {setup: [] for setup in ENV_SETUPS}
        for repeat, setup in alternating(list(ENV_SETUPS), args.repeats):
            spec = {"kind": "env", "setup": setup, "n_envs": n_envs, "steps": args.env_steps,
                    "env_id": args.env, "seed": args.seed}
            child = run_child(child_command(spec), timeout=CHILD_TIMEOUT_SECONDS)
            samples[setup].append({**child.result, "peak_rss_mb": child.peak_rss_mb, "load": load_average()})
            print(f"env  {setup:13s} n_envs={n_envs:2d} repeat {repeat}: {child.result['steps_per_second']:7.0f} "
                  f"steps/s, peak RSS {child.peak_rss_mb} MB", flush=True)
        for setup, runs in samples.items():
            rows.append({"setup": setup, "n_envs": n_envs,
                         "steps_per_second": median([r["steps_per_second"] for r in runs]),
                         "peak_rss_mb": median([r["peak_rss_mb"] for r in runs]), "runs": runs})
    return rows


# %% 2. SB3 PPO: stock against --fast
def measure_ppo(args: argparse.Namespace) -> dict[str, Any]:
    """Stock against --fast ("ppo"), and 3.3's --fast aimbot training against 2.3's --fast ("aimbot")."""
    sides = list(PPO_SIDES) if "ppo" in args.parts else ["fast"]
    sides += [STOCK_MATCHED] * args.matched_stock + [AIMBOT_FAST] * ("aimbot" in args.parts)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for repeat, side in alternating(sides, args.repeats):
        spec = {"kind": "ppo", "side": side, "train_steps": args.timesteps, "n_envs": args.n_envs,
                "env_id": args.env, "seed": args.seed, "tiny": args.tiny,
                "stock_torch_threads": args.stock_torch_threads, "device": args.device}
        child = run_child(child_command(spec), timeout=CHILD_TIMEOUT_SECONDS)
        runs[side].append({**child.result, "peak_rss_mb": child.peak_rss_mb, "load": load_average()})
        print(f"ppo  {side:13s} repeat {repeat}: {child.result['steps_per_second']:6.1f} steps/s "
              f"({child.result['backend']}, {child.result['precision']}"
              f"{', compiled' if child.result.get('compile') else ''}, torch threads "
              f"{child.result['torch_threads']}, rollout {child.result['rollout_fraction']:.0%} of the time)", flush=True)
    medians = {side: median([r["steps_per_second"] for r in runs[side]]) for side in sides}
    threads_note = uneven_threads_note(runs)
    if threads_note:
        print(threads_note, flush=True)
    speedup = medians["fast"] / medians["stock"] if medians.get("stock") else None
    aimbot = medians[AIMBOT_FAST] / medians["fast"] if medians.get(AIMBOT_FAST) and medians["fast"] else None
    if aimbot is not None:
        print(f"3.3 --fast / 2.3 --fast: {aimbot:.2f} (target >= {AIMBOT_SPEED_TARGET})", flush=True)
    return {"medians": medians, "speedup": speedup, "aimbot_vs_zoo_fast": aimbot, "threads_note": threads_note,
            "runs": runs}


# %% 3. The from-scratch PPO of 2.4
SCRATCH_SIDES = {"stock": ["--backend", "classic", "--precision", "fp32"],
                 "fast": ["--backend", "ale_vector", "--precision", "bf16"]}


def measure_scratch(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    scripts = {"stock": Path(args.scratch_script), "fast": Path(args.fast_scratch_script)}
    for script in scripts.values():
        if not script.is_file():
            return {"skipped": f"{script} not found"}
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SCRATCH_SIDES}
    for repeat, side in alternating(list(SCRATCH_SIDES), args.repeats):
        script = scripts[side]
        command = [sys.executable, str(script), "--env", args.env, "--timesteps", str(args.timesteps),
                   "--n-envs", str(args.n_envs), "--seed", str(args.seed), "--logdir", str(run_dir / "scratch"),
                   "--eval-games", "0", "--gif-games", "0", "--device", args.device, *SCRATCH_SIDES[side],
                   *(TINY_SCRATCH_FLAGS if args.tiny else [])]
        done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=CHILD_TIMEOUT_SECONDS)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines or not Path(lines[-1]).is_file():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {"skipped": f"{script.name} failed (exit {done.returncode}): {tail}", "runs": runs}
        summary = json.loads(Path(lines[-1]).read_text())
        # Without the first iteration (first-call costs), as the SB3 measurements above.
        steady = summary.get("steps_per_second_after_first_iteration") or summary["steps_per_second"]
        runs[side].append({"steps_per_second": steady, "summary": lines[-1],
                           "precision": summary.get("precision"), "overlap": summary.get("overlap"),
                           "load": load_average()})
        print(f"{script.stem[:3]}  {side:5s} repeat {repeat}: {steady:6.1f} steps/s", flush=True)
    return {"medians": {side: median([r["steps_per_second"] for r in runs[side]]) for side in SCRATCH_SIDES},
            "runs": runs}


# %% 4. The ceiling: the parts of a --fast iteration, each alone
def measure_ceiling(args: argparse.Namespace) -> dict[str, Any]:
    spec = {"kind": "ceiling", "n_envs": args.n_envs, "env_id": args.env, "seed": args.seed, "tiny": args.tiny,
            "device": args.device, "env_steps": args.env_steps}
    result = run_child(child_command(spec), timeout=CHILD_TIMEOUT_SECONDS).result
    per_step = result["per_step_ms"]
    print(f"ceiling: levers {result['levers']} (ms per minibatch: {result['timings_ms']}); per env step "
          f"train {per_step['train']:.3f} + inference {per_step['inference']:.3f} + env {per_step['env']:.3f} ms "
          f"= {result['seconds_per_step'] * 1000:.3f} ms -> {result['ceiling_steps_per_second']:.0f} steps/s", flush=True)
    return result


def ceiling_fractions(ceiling: dict[str, Any] | None, ppo: dict[str, Any] | None,
                      scratch: dict[str, Any] | None) -> dict[str, float | None]:
    """Each measured side's steps/s as a fraction of the ceiling."""
    if not ceiling:
        return {}
    top = ceiling["ceiling_steps_per_second"]
    sides = {**{f"sb3_{k}": v for k, v in (ppo or {}).get("medians", {}).items()},
             **{f"scratch_{k}": v for k, v in (scratch or {}).get("medians", {}).items()}}
    return {side: (value / top if value and top else None) for side, value in sides.items()}


# %% 5. The physical limit: the matrix-multiply peak
def measure_peak(args: argparse.Namespace) -> dict[str, Any]:
    spec = {"kind": "peak", "n_envs": args.n_envs, "tiny": args.tiny, "device": args.device}
    result = run_child(child_command(spec), timeout=CHILD_TIMEOUT_SECONDS).result
    print("peak: " + ", ".join(f"{p} {flops / 1e9:,.0f} GFLOP/s" for p, flops in result["peak_flops"].items())
          + f" ({result['matrix_size']}x{result['matrix_size']} matrices, {result['torch_threads']} torch threads)",
          flush=True)
    return result


# %% 6. The training step, part by part
def measure_breakdown(args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in PPO_SIDES}
    for repeat, side in alternating(list(PPO_SIDES), args.repeats):
        spec = {"kind": "breakdown", "side": side, "train_steps": args.timesteps, "n_envs": args.n_envs,
                "env_id": args.env, "seed": args.seed, "tiny": args.tiny, "device": args.device}
        result = run_child(child_command(spec), timeout=CHILD_TIMEOUT_SECONDS).result
        runs[side].append(result)
        parts = result["per_minibatch_ms"]
        print(f"step {side:5s} repeat {repeat}: " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
              + " ms per minibatch", flush=True)
    medians = {side: {part: median([r["per_minibatch_ms"][part] for r in side_runs])
                      for part in (*BREAKDOWN_PARTS, "total")} for side, side_runs in runs.items()}
    return {"medians_ms": medians, "runs": runs, "flops": runs["fast"][0]["flops"],
            "precision": {side: side_runs[0]["precision"] for side, side_runs in runs.items()},
            "batch_size": runs["fast"][0]["batch_size"], "n_epochs": runs["fast"][0]["n_epochs"]}


def physical_limit(peak: dict[str, Any] | None, breakdown: dict[str, Any] | None, ceiling: dict[str, Any] | None,
                   ppo: dict[str, Any] | None, n_envs: int) -> list[dict[str, Any]]:
    """Rows of achieved FLOP/s and their share of the peak in the precision that ran."""
    if not peak or not breakdown:
        return []
    peaks, flops = peak["peak_flops"], breakdown["flops"]
    rows = []

    def add(label: str, work_flops: float, seconds: float | None, precision: str) -> None:
        if not seconds:
            return
        achieved = work_flops / seconds
        top = peaks.get(precision) or peaks["fp32"]
        rows.append({"what": label, "precision": precision, "flops_per_second": achieved, "peak": top,
                     "share": achieved / top})

    for side in PPO_SIDES:
        ms = breakdown["medians_ms"][side]
        precision = breakdown["precision"][side]
        add(f"SB3 {side} training step (train(), per minibatch of {breakdown['batch_size']})",
            flops["training_minibatch"], (ms["total"] or 0) / 1000, precision)
        add(f"SB3 {side} network alone (forward + backward)", flops["training_minibatch"],
            ((ms["forward"] or 0) + (ms["backward"] or 0)) / 1000, precision)
    fast_precision = breakdown["precision"]["fast"]
    if ceiling:
        add(f"rollout inference, batch {n_envs} (--fast levers, fp32 heads)", flops["inference_batch"],
            ceiling["per_step_ms"]["inference"] * n_envs / 1000, fast_precision)
    if ppo and ppo["medians"].get("fast"):
        per_step = (flops["training_minibatch"] / breakdown["batch_size"] * breakdown["n_epochs"]
                    + flops["inference_batch"] / n_envs)
        add(f"a whole env step of SB3 --fast ({per_step / 1e6:.0f} MFLOP) at its measured steps/s",
            per_step, 1.0 / ppo["medians"]["fast"], fast_precision)
    return rows


# %% The table
def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown_table(env_rows: list[dict[str, Any]], ppo: dict[str, Any] | None, scratch: dict[str, Any] | None,
                   machine: dict[str, Any], ceiling: dict[str, Any] | None = None, peak: dict[str, Any] | None = None,
                   limit_rows: list[dict[str, Any]] | None = None, breakdown: dict[str, Any] | None = None) -> str:
    lines = [f"Machine: {machine['cpu']}, {machine['cores']} cores, flags {' '.join(machine['cpu_flags']) or '-'}, "
             f"bf16 used: {machine['bf16']}; load average {machine['load_before']} before, {machine['load_after']} after. "
             f"Medians of {machine['repeats']} alternating runs each.", ""]
    if env_rows:
        lines += ["| env stepping (random play) | n_envs | env steps/s | peak RSS, process tree |",
                  "|---|---:|---:|---:|"]
        for row in env_rows:
            rss = "-" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb'] / 1024:.2f} GB"
            lines.append(f"| {row['setup']} | {row['n_envs']} | {_fmt(row['steps_per_second'])} | {rss} |")
        lines.append("")
    stock = ppo["medians"].get("stock") if ppo else None
    top = ceiling["ceiling_steps_per_second"] if ceiling else None

    def row(label: str, value: float | None) -> str:
        ratio = value / stock if value and stock else None
        share = value / top if value and top else None
        return f"| {label} | {_fmt(value, 1)} | {_fmt(ratio, 2)}x | {'-' if share is None else f'{share:.0%}'} |"

    if ppo or scratch or ceiling:
        lines += ["| PPO training (zoo Atari hyperparameters) | env steps/s | vs SB3 stock | of ceiling |",
                  "|---|---:|---:|---:|"]
    if ppo:
        lines.append(row("SB3 PPO stock (classic DummyVecEnv, fp32)", stock))
        lines.append(row(f"SB3 PPO --fast (ale_vector, {machine.get('levers') or 'measured levers'})", ppo["medians"]["fast"]))
        if STOCK_MATCHED in ppo["medians"]:
            lines.append(row("SB3 PPO stock, torch threads chosen like --fast", ppo["medians"][STOCK_MATCHED]))
        if AIMBOT_FAST in ppo["medians"]:
            lines.append(row(f"3.3 aimbot PPO --fast ({_fmt(ppo['aimbot_vs_zoo_fast'], 2)}x 2.3 --fast)",
                             ppo["medians"][AIMBOT_FAST]))
    if scratch and "medians" in scratch:
        # the precision 2.5 really ran (its summary.json), not the one asked for: bf16 falls back to fp32
        fast_run = (scratch["runs"]["fast"] or [{}])[0]
        fast_precision = fast_run.get("precision") or "bf16"
        overlap = "no overlap on these cores" if fast_run.get("overlap") is False else "overlap"
        for side, label in (("stock", "2.4 from scratch, classic fp32"),
                            ("fast", f"2.5: 2.4 with its speed levers (ale_vector, {fast_precision} update, {overlap})")):
            lines.append(row(label, scratch["medians"][side]))
    if ceiling:
        per_step = ceiling["per_step_ms"]
        lines.append(row(f"ceiling: train {per_step['train']:.2f} + inference {per_step['inference']:.2f} + "
                         f"env {per_step['env']:.2f} ms per env step, back to back", top))
    if scratch and "skipped" in scratch:
        lines.append(f"\n2.4 from scratch skipped: {scratch['skipped']}")
    if peak:
        lines += ["", "| the physical limit | precision | GFLOP/s | of the matmul peak |", "|---|---|---:|---:|"]
        for precision, flops in peak["peak_flops"].items():
            lines.append(f"| matrix multiply {peak['matrix_size']}x{peak['matrix_size']}, "
                         f"{peak['torch_threads']} threads: the peak | {precision} | {flops / 1e9:,.0f} | 100% |")
        for row in limit_rows or []:
            lines.append(f"| {row['what']} | {row['precision']} | {row['flops_per_second'] / 1e9:,.1f} | "
                         f"{row['share']:.0%} |")
    if breakdown:
        lines += ["", "| ms per training minibatch | " + " | ".join(BREAKDOWN_PARTS) + " | total |",
                  "|---|" + "---:|" * (len(BREAKDOWN_PARTS) + 1)]
        for side, ms in breakdown["medians_ms"].items():
            total = ms["total"] or 0
            cells = [f"{ms[part]:.1f} ({ms[part] / total:.0%})" if total else "-" for part in BREAKDOWN_PARTS]
            lines.append(f"| SB3 {side} ({breakdown['precision'][side]}) | " + " | ".join(cells) + f" | {total:.1f} |")
    if ppo and ppo.get("threads_note"):  # under the tables: a ratio of runs with uneven threads mixes in load
        lines += ["", ppo["threads_note"]]
    return "\n".join(lines) + "\n"


# %% Flags, run folder, machine
args = parse_args()
check_env_id(args.env)
run = Run.from_args(__file__, args)
cores, busy_before, free = free_cores()
load_before = load_average() or 0.0
flags = relevant_cpu_flags()
print(f"machine: {cpu_model()}, {cores} cores, {busy_before:.2f} busy now, "
      f"load average {load_before:.2f} ({free} free)\ncpu flags: {' '.join(flags) or 'none of the relevant ones'}; "
      f"bf16 used: {bf16_supported(args.device)}; network on {args.device}", flush=True)
if busy_before > 0.5:
    print("note: other processes are running; timings will be noisy (see the load in the table).", flush=True)

# %% Env stepping and memory: DummyVecEnv, SubprocVecEnv and ale_vector
env_rows = measure_envs(args) if "env" in args.parts else []

# %% SB3 PPO: stock against --fast, alternating
ppo = measure_ppo(args) if {"ppo", "aimbot"} & set(args.parts) else None

# %% The from-scratch PPO of 2.4
scratch = measure_scratch(args, run.dir) if "scratch" in args.parts else None

# %% The ceiling: each part alone, and the fraction of their sum each side reaches
ceiling = measure_ceiling(args) if "ceiling" in args.parts else None
fractions = ceiling_fractions(ceiling, ppo, scratch)

# %% The physical limit: the peak, the training step part by part, FLOP/s as a share of the peak
peak = measure_peak(args) if "peak" in args.parts else None
breakdown = measure_breakdown(args) if "breakdown" in args.parts else None
limit_rows = physical_limit(peak, breakdown, ceiling, ppo, args.n_envs)

# %% A whole 2.3 run on --device (--zoo-steps): the figures a GPU machine gives in one command
zoo_run = None
if args.zoo_steps > 0:
    zoo_games = 2 if args.tiny else ZOO_EVAL_GAMES
    tiny_ppo = ["--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1"] if args.tiny else []
    zoo = subprocess.run(
        [sys.executable, str(ZOO_SCRIPT), "--timesteps", str(args.zoo_steps), "--fast", "--device", args.device,
         "--seed", str(args.seed), "--eval-episodes", str(zoo_games), "--gif-games", "0", *tiny_ppo,
         "--logdir", str(run.dir / "zoo")], capture_output=True, text=True,
    )
    if zoo.returncode != 0:
        raise ConfigError(f"the --zoo-steps run of {ZOO_SCRIPT.name} failed: {zoo.stderr.strip().splitlines()[-1:]}")
    zoo_run = json.loads(Path(zoo.stdout.strip().splitlines()[-1]).read_text())
    print(f"2.3 --fast on {args.device}: {zoo_run['timesteps']} steps at {zoo_run['steps_per_second']} steps/s, "
          f"{zoo_games}-game mean {zoo_run['mean_reward']:.1f} / median {zoo_run['median_reward']:.1f}",
          flush=True)

# %% Learning parity (--parity-steps): each pair's short run stock and fast, seed by seed
parity = {}
for pair_name in args.parity_pairs if args.parity_steps > 0 else []:
    pair = PARITY_PAIRS[pair_name]
    parity_runs = run_parity(pair, args.parity_steps, range(args.parity_seeds), run.dir / "parity",
                             eval_games=2 if args.tiny else PARITY_EVAL_GAMES,
                             extra=["--env", args.env, *(TINY_PARITY_FLAGS[pair_name] if args.tiny else [])])
    difference = score_difference(parity_runs)
    parity[pair_name] = {"steps": args.parity_steps, "within_spread": within_spread(parity_runs),
                         "score_difference": None if difference is None else
                         {"fast_minus_stock": round(difference[0], 3), "standard_error": round(difference[1], 3)},
                         "table": parity_markdown(parity_runs, args.parity_steps, pair),
                         "runs": {side: [{key: summary.get(key) for key in PARITY_KEYS} for summary in summaries]
                                  for side, summaries in parity_runs.items()}}

# %% Table and summary.json
fast_runs = ppo["runs"]["fast"] if ppo else []
levers = ceiling["levers"] if ceiling else (
    {key: fast_runs[0].get(key, False) for key in ("precision", "channels_last", "compile")} if fast_runs else None)
lever_text = lever_label(levers) if levers else None
if lever_text:
    print(f"levers --fast chose on this machine: {lever_text}", flush=True)
machine = {"cpu": cpu_model(), "cores": cores, "cpu_flags": flags, "bf16": bf16_supported(args.device),
           "device": args.device, "levers": lever_text, "repeats": args.repeats,
           "busy_cores_before": round(busy_before, 2), "load_before": round(load_before, 2), "load_after": load_average()}
table = markdown_table(env_rows, ppo, scratch, machine, ceiling, peak, limit_rows, breakdown)
for pair_result in parity.values():
    table += "\n" + pair_result["table"]
(run.dir / TABLE_FILE).write_text(table)
print("\n" + table, flush=True)
fast_sps = ppo["medians"]["fast"] if ppo else None
scratch_fast = scratch["medians"]["fast"] if scratch and "medians" in scratch else None
stock_sps = ppo["medians"].get("stock") if ppo else None
run.finish(
    timesteps=args.timesteps, steps_per_second=fast_sps, speedup=ppo["speedup"] if ppo else None,
    stock_steps_per_second=stock_sps, aimbot_vs_zoo_fast=ppo["aimbot_vs_zoo_fast"] if ppo else None,
    scratch_speedup=scratch_fast / stock_sps if scratch_fast and stock_sps else None,
    table=table, table_path=str(run.dir / TABLE_FILE), env_stepping=env_rows, ppo=ppo, scratch=scratch,
    ceiling=ceiling, ceiling_fractions=fractions, levers=levers, peak=peak, breakdown=breakdown,
    physical_limit=limit_rows, machine=machine, n_envs=args.n_envs,
    repeats=args.repeats, tiny=args.tiny, device=args.device,
    zoo_run={key: zoo_run[key] for key in ("timesteps", "steps_per_second", "mean_reward", "median_reward", "run_dir")}
    if zoo_run else None, parity=parity or None,
)
