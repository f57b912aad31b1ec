"""0.2 Benchmark: how fast, and how big, each way of training on Atari is on this machine.

What you learn: where the time of Atari PPO goes on a small CPU machine, and what
``--fast`` buys: ale-py's C++ vector env (``--backend ale_vector``) and a Nature-CNN
under bf16 autocast (``--precision bf16``; channels_last weights on CUDA), with torch and
ALE threads chosen from the free cores. It measures

1. env steps/s of random play for DummyVecEnv, SubprocVecEnv and ale_vector (8 and 16 envs),
   and the peak memory (RSS) of each one's whole process tree;
2. SB3 PPO training steps/s at rl-zoo's Atari hyperparameters: stock (classic envs,
   fp32) against ``--fast``; speedup = fast / stock;
3. the from-scratch PPO of 2.4, classic + fp32 against ale_vector + bf16.

Every measurement runs in a fresh process; stock and fast alternate (A B, B A, ...)
and the table shows medians, because a shared machine drifts.

Run it:  python 0_setup/0.2_benchmark.py                   # ~15 min on 2 cores
         python 0_setup/0.2_benchmark.py --tiny            # seconds: checks that it runs
Read:    0_setup/README.md and the README's "Performance" section
"""

# %% Imports
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rlbreakout.benchmark import (
    ENV_SETUPS,
    PPO_SIDES,
    STOCK_MATCHED,
    alternating,
    child_command,
    cpu_model,
    load_average,
    median,
    run_child,
)
from rlbreakout.cli import common_parser, run_main
from rlbreakout.envs import check_env_id
from rlbreakout.errors import ConfigError
from rlbreakout.fast import bf16_supported, free_cores
from rlbreakout.runs import create_run_dir, save_run_config, script_name, write_summary

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRATCH_SCRIPT = REPO_ROOT / "2_baselines" / "2.4_ppo_atari_from_scratch.py"
TABLE_FILE = "benchmark.md"
#: Tiny mode: a few seconds per measurement, same code paths.
TINY = {"n_envs_list": [2], "repeats": 1, "env_steps": 64, "timesteps": 128, "n_envs": 2}
TINY_SCRATCH_FLAGS = ["--num-steps", "16", "--num-minibatches", "1", "--update-epochs", "1"]
#: A child that runs longer than this is stuck (a full measurement takes about a minute).
CHILD_TIMEOUT_SECONDS = 1800


# %% Flags
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = common_parser(__doc__.splitlines()[0], timesteps=8192, n_envs=8, device="cpu")
    parser.add_argument("--train-steps", dest="timesteps", type=int,
                        help="PPO env steps per training measurement (same as --timesteps)")
    parser.add_argument("--n-envs-list", default="8,16", help="env counts of the env-stepping and memory table")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each side (medians are reported)")
    parser.add_argument("--env-steps", type=int, default=4000, help="env steps per env-stepping measurement")
    parser.add_argument("--parts", default="env,ppo,scratch", help="which tables to measure: env, ppo, scratch")
    parser.add_argument("--stock-torch-threads", type=int, default=0,
                        help="torch threads of the stock PPO side (0: torch's default, what stock SB3 gets)")
    parser.add_argument("--matched-stock", action="store_true",
                        help="also measure stock SB3 with torch threads chosen like --fast (isolates that lever)")
    parser.add_argument("--scratch-script", default=str(SCRATCH_SCRIPT), help="the from-scratch PPO script (2.4)")
    parser.add_argument("--tiny", action="store_true", help="seconds-long measurements (tests)")
    args = parser.parse_args(argv)
    try:
        args.n_envs_list = [int(n) for n in str(args.n_envs_list).split(",") if n.strip()]
    except ValueError as exc:
        raise ConfigError(f"--n-envs-list must be comma-separated integers, e.g. 8,16; got {args.n_envs_list!r}.") from exc
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(args.parts) - {"env", "ppo", "scratch"})
    if unknown:
        raise ConfigError(f"unknown --parts {unknown}; choose from env, ppo, scratch.")
    if args.tiny:
        for key, value in TINY.items():
            setattr(args, key, value)
    if args.repeats < 1 or args.env_steps < 1 or args.timesteps < 1 or not args.n_envs_list:
        raise ConfigError("--repeats, --env-steps, --timesteps and --n-envs-list must be positive.")
    if args.device != "cpu":
        raise ConfigError("the benchmark measures the CPU path; use --device cpu.")
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
    sides = [*PPO_SIDES, STOCK_MATCHED] if args.matched_stock else list(PPO_SIDES)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for repeat, side in alternating(sides, args.repeats):
        spec = {"kind": "ppo", "side": side, "train_steps": args.timesteps, "n_envs": args.n_envs,
                "env_id": args.env, "seed": args.seed, "tiny": args.tiny,
                "stock_torch_threads": args.stock_torch_threads}
        child = run_child(child_command(spec), timeout=CHILD_TIMEOUT_SECONDS)
        runs[side].append({**child.result, "peak_rss_mb": child.peak_rss_mb, "load": load_average()})
        print(f"ppo  {side:13s} repeat {repeat}: {child.result['steps_per_second']:6.1f} steps/s "
              f"({child.result['backend']}, {child.result['precision']}, torch threads "
              f"{child.result['torch_threads']}, rollout {child.result['rollout_fraction']:.0%} of the time)", flush=True)
    medians = {side: median([r["steps_per_second"] for r in runs[side]]) for side in sides}
    speedup = medians["fast"] / medians["stock"] if medians["stock"] else None
    return {"medians": medians, "speedup": speedup, "runs": runs}


# %% 3. The from-scratch PPO of 2.4
SCRATCH_SIDES = {"stock": ["--backend", "classic", "--precision", "fp32"],
                 "fast": ["--backend", "ale_vector", "--precision", "bf16"]}


def measure_scratch(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    script = Path(args.scratch_script)
    if not script.is_file():
        return {"skipped": f"{script} not found"}
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SCRATCH_SIDES}
    for repeat, side in alternating(list(SCRATCH_SIDES), args.repeats):
        command = [sys.executable, str(script), "--env", args.env, "--timesteps", str(args.timesteps),
                   "--n-envs", str(args.n_envs), "--seed", str(args.seed), "--logdir", str(run_dir / "scratch"),
                   "--eval-games", "0", "--gif-games", "0", *SCRATCH_SIDES[side],
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
                           "precision": summary.get("precision"), "load": load_average()})
        print(f"2.4  {side:5s} repeat {repeat}: {steady:6.1f} steps/s", flush=True)
    return {"medians": {side: median([r["steps_per_second"] for r in runs[side]]) for side in SCRATCH_SIDES},
            "runs": runs}


# %% The table
def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown_table(env_rows: list[dict[str, Any]], ppo: dict[str, Any] | None, scratch: dict[str, Any] | None,
                   machine: dict[str, Any]) -> str:
    lines = [f"Machine: {machine['cpu']}, {machine['cores']} cores, bf16 hardware: {machine['bf16']}; "
             f"load average {machine['load_before']} before, {machine['load_after']} after. "
             f"Medians of {machine['repeats']} alternating runs each.", ""]
    if env_rows:
        lines += ["| env stepping (random play) | n_envs | env steps/s | peak RSS, process tree |",
                  "|---|---:|---:|---:|"]
        for row in env_rows:
            rss = "-" if row["peak_rss_mb"] is None else f"{row['peak_rss_mb'] / 1024:.2f} GB"
            lines.append(f"| {row['setup']} | {row['n_envs']} | {_fmt(row['steps_per_second'])} | {rss} |")
        lines.append("")
    stock = ppo["medians"]["stock"] if ppo else None
    if ppo or scratch:
        lines += ["| PPO training (zoo Atari hyperparameters) | env steps/s | vs SB3 stock |", "|---|---:|---:|"]
    if ppo:
        lines.append(f"| SB3 PPO stock (classic DummyVecEnv, fp32) | {_fmt(stock, 1)} | 1.00x |")
        lines.append(f"| SB3 PPO --fast (ale_vector, bf16) | {_fmt(ppo['medians']['fast'], 1)} | "
                     f"{_fmt(ppo['speedup'], 2)}x |")
        if STOCK_MATCHED in ppo["medians"]:
            matched = ppo["medians"][STOCK_MATCHED]
            ratio = matched / stock if matched and stock else None
            lines.append(f"| SB3 PPO stock, torch threads chosen like --fast | {_fmt(matched, 1)} | {_fmt(ratio, 2)}x |")
    if scratch and "medians" in scratch:
        for side, label in (("stock", "2.4 from scratch, classic fp32"), ("fast", "2.4 from scratch, ale_vector bf16")):
            value = scratch["medians"][side]
            ratio = value / stock if value and stock else None
            lines.append(f"| {label} | {_fmt(value, 1)} | {_fmt(ratio, 2)}x |")
    if scratch and "skipped" in scratch:
        lines.append(f"\n2.4 from scratch skipped: {scratch['skipped']}")
    return "\n".join(lines) + "\n"


# %% Main
def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    check_env_id(args.env)
    started = time.perf_counter()
    run_dir = create_run_dir(args.logdir, script_name(__file__), args.env, args.seed)
    save_run_config(run_dir, vars(args))
    cores, busy_before, free = free_cores()
    load_before = load_average() or 0.0
    print(f"run folder: {run_dir}\nmachine: {cpu_model()}, {cores} cores, {busy_before:.2f} busy now, "
          f"load average {load_before:.2f} "
          f"({free} free)", flush=True)
    if busy_before > 0.5:
        print("note: other processes are running; timings will be noisy (see the load in the table).", flush=True)

    env_rows = measure_envs(args) if "env" in args.parts else []
    ppo = measure_ppo(args) if "ppo" in args.parts else None
    scratch = measure_scratch(args, run_dir) if "scratch" in args.parts else None

    machine = {"cpu": cpu_model(), "cores": cores, "bf16": bf16_supported("cpu"), "repeats": args.repeats,
               "busy_cores_before": round(busy_before, 2), "load_before": round(load_before, 2), "load_after": load_average()}
    table = markdown_table(env_rows, ppo, scratch, machine)
    (run_dir / TABLE_FILE).write_text(table)
    print("\n" + table, flush=True)
    fast_sps = ppo["medians"]["fast"] if ppo else None
    scratch_fast = scratch["medians"]["fast"] if scratch and "medians" in scratch else None
    stock_sps = ppo["medians"]["stock"] if ppo else None
    return write_summary(run_dir, {
        "script": script_name(__file__),
        "env_id": args.env,
        "timesteps": args.timesteps,
        "seed": args.seed,
        "run_dir": str(run_dir),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "steps_per_second": fast_sps,
        "speedup": ppo["speedup"] if ppo else None,
        "stock_steps_per_second": stock_sps,
        "scratch_speedup": scratch_fast / stock_sps if scratch_fast and stock_sps else None,
        "table": table,
        "table_path": str(run_dir / TABLE_FILE),
        "env_stepping": env_rows,
        "ppo": ppo,
        "scratch": scratch,
        "machine": machine,
        "n_envs": args.n_envs,
        "repeats": args.repeats,
        "tiny": args.tiny,
    })


if __name__ == "__main__":
    run_main(main)
