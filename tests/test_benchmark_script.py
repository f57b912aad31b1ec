"""0_setup/0.2_benchmark.py in tiny mode: it measures, writes the table and summary.json, prints the path last."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import run_script, summary_of

SCRIPT = "0_setup/0.2_benchmark.py"
FAKE_SCRATCH_STEPS_PER_SECOND = 123.5

#: Stands in for 2.4: takes its flags, writes a summary.json with steps_per_second, prints the path last.
#: It reports fp32 whatever --precision asked, as 2.5 does on a CPU without bf16.
FAKE_SCRATCH = f'''
import json, sys
import json
from pathlib import Path
args = sys.argv[1:]
logdir = Path(args[args.index("--logdir") + 1])
precision = args[args.index("--precision") + 1]
run = logdir / precision
run.mkdir(parents=True, exist_ok=True)
(run / "summary.json").write_text(json.dumps({{"steps_per_second": {FAKE_SCRATCH_STEPS_PER_SECOND}, "precision": "fp32"}}))
print("training...")
print(run / "summary.json")
'''


@pytest.mark.slow
def test_tiny_benchmark(tmp_path: Path, logdir: Path) -> None:
    fake = tmp_path / "fake_scratch.py"
    fake.write_text(FAKE_SCRATCH)
    result = run_script(SCRIPT, "--tiny", "--logdir", str(logdir), "--scratch-script", str(fake),
                        "--fast-scratch-script", str(fake),
                        "--stock-torch-threads", "1", "--matched-stock")
    path, summary = summary_of(result)
    for key in ("script", "env_id", "timesteps", "seed", "run_dir", "wall_seconds", "steps_per_second",
                "speedup", "table"):
        assert key in summary, key
    assert summary["script"] == "0.2_benchmark" and summary["tiny"] is True

    rows = {row["setup"]: row for row in summary["env_stepping"]}
    assert set(rows) == {"DummyVecEnv", "SubprocVecEnv", "ale_vector"}
    for row in rows.values():
        assert row["steps_per_second"] > 0 and row["peak_rss_mb"] > 50  # a Python with torch loaded
    # SubprocVecEnv runs one more Python per env: its process tree is bigger
    assert rows["SubprocVecEnv"]["peak_rss_mb"] > rows["DummyVecEnv"]["peak_rss_mb"]

    ppo = summary["ppo"]
    assert ppo["medians"]["stock"] > 0 and ppo["medians"]["fast"] > 0
    assert summary["speedup"] == pytest.approx(ppo["medians"]["fast"] / ppo["medians"]["stock"])
    assert {r["backend"] for r in ppo["runs"]["fast"]} == {"ale_vector"}
    assert {r["backend"] for r in ppo["runs"]["stock"]} == {"classic"}
    assert ppo["runs"]["stock"][0]["torch_threads"] == 1  # --stock-torch-threads
    assert ppo["runs"]["stock_threads"][0]["threads"]["torch_threads"] >= 1  # --matched-stock
    # part "aimbot": 3.3's training (the aimbot view, batched on ale_vector) against 2.3's --fast
    assert {r["backend"] for r in ppo["runs"]["aimbot_fast"]} == {"ale_vector"}
    assert summary["aimbot_vs_zoo_fast"] == pytest.approx(ppo["medians"]["aimbot_fast"] / ppo["medians"]["fast"])
    assert summary["scratch"]["medians"] == {"stock": FAKE_SCRATCH_STEPS_PER_SECOND, "fast": FAKE_SCRATCH_STEPS_PER_SECOND}

    table = (path.parent / "benchmark.md").read_text()
    assert table == summary["table"]
    assert "| SubprocVecEnv | 2 |" in table and "SB3 PPO --fast" in table and "2.4 from scratch" in table
    assert "chosen like --fast" in table
    assert f"3.3 aimbot PPO --fast ({summary['aimbot_vs_zoo_fast']:.2f}x 2.3 --fast)" in table
    assert "3.3 --fast / 2.3 --fast:" in result.stdout
    assert "2.5: 2.4 with its speed levers (ale_vector, fp32 update" in table  # the precision it ran, not asked

    # the ceiling: the parts of a --fast iteration timed alone, and each side's share of it
    ceiling = summary["ceiling"]
    assert set(ceiling["per_step_ms"]) == {"train", "inference", "env"}
    assert ceiling["seconds_per_step"] == pytest.approx(sum(ceiling["per_step_ms"].values()) / 1000)
    assert ceiling["ceiling_steps_per_second"] == pytest.approx(1 / ceiling["seconds_per_step"])
    assert summary["ceiling_fractions"]["sb3_fast"] == pytest.approx(
        ppo["medians"]["fast"] / ceiling["ceiling_steps_per_second"])
    assert "| ceiling: train" in table and "of ceiling" in table
    assert summary["levers"] == ceiling["levers"] and summary["levers"]["precision"] in ("fp32", "bf16")
    assert "cpu flags:" in result.stdout and "levers --fast chose on this machine:" in result.stdout
    assert summary["machine"]["cpu_flags"] == sorted(summary["machine"]["cpu_flags"])
    # the physical limit: the peak, the step part by part, FLOP/s as shares of the peak
    peaks = summary["peak"]["peak_flops"]
    assert peaks["fp32"] > 0 and set(peaks) <= {"fp32", "bf16"}
    breakdown = summary["breakdown"]
    for side in ("stock", "fast"):
        ms = breakdown["medians_ms"][side]
        assert ms["forward"] > 0 and ms["backward"] > 0 and ms["optimiser"] > 0
        assert ms["forward"] + ms["backward"] + ms["optimiser"] + ms["rest"] == pytest.approx(ms["total"], rel=0.2)
    assert breakdown["flops"]["training_minibatch"] > breakdown["flops"]["inference_batch"] > 0
    rows = {row["what"].split(" (")[0]: row for row in summary["physical_limit"]}
    fast_step = rows["SB3 fast training step"]
    assert fast_step["flops_per_second"] == pytest.approx(
        breakdown["flops"]["training_minibatch"] / (breakdown["medians_ms"]["fast"]["total"] / 1000))
    assert fast_step["share"] == pytest.approx(fast_step["flops_per_second"] / peaks[fast_step["precision"]])
    assert any(what.startswith("a whole env step") for what in rows)
    assert "| the physical limit |" in table and "| ms per training minibatch |" in table


def test_missing_scratch_script_is_a_note(logdir: Path) -> None:
    result = run_script(SCRIPT, "--tiny", "--parts", "scratch", "--logdir", str(logdir),
                        "--scratch-script", "no/such/script.py")
    _, summary = summary_of(result)
    assert "not found" in summary["scratch"]["skipped"]
    assert "2.4 from scratch skipped" in summary["table"]
    assert summary["speedup"] is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
def test_tiny_benchmark_on_cuda(logdir: Path) -> None:
    result = run_script(SCRIPT, "--tiny", "--device", "cuda", "--parts", "ppo,ceiling", "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert summary["device"] == "cuda" and summary["ceiling"]["ceiling_steps_per_second"] > 0
    assert summary["ppo"]["medians"]["fast"] > 0


def test_bad_flags_are_one_line(logdir: Path) -> None:
    result = run_script(SCRIPT, "--n-envs-list", "8,x", "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: --n-envs-list")
    result = run_script(SCRIPT, "--parts", "gpu", "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2 and "unknown --parts" in result.stderr


@pytest.mark.slow
def test_zoo_steps_trains_2_3_on_the_device_and_reports_it(logdir: Path) -> None:
    result = run_script(SCRIPT, "--tiny", "--parts", "env", "--zoo-steps", "64", "--logdir", str(logdir))
    _, summary = summary_of(result)
    zoo = summary["zoo_run"]
    assert zoo["timesteps"] == 64 and zoo["steps_per_second"] > 0
    assert Path(zoo["run_dir"]).is_relative_to(Path(summary["run_dir"]))
    assert "2.3 --fast on cpu: 64 steps" in result.stdout


def test_bad_parity_flags_are_one_line(logdir: Path) -> None:
    result = run_script(SCRIPT, "--parity-steps", "-5", "--logdir", str(logdir), expect_ok=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: argument --parity-steps: -5 is out of range")


@pytest.mark.slow
def test_parity_trains_each_pair_stock_and_fast_and_tables_them(logdir: Path) -> None:
    result = run_script(SCRIPT, "--tiny", "--parts", "peak", "--parity-steps", "64", "--parity-seeds", "1",
                        "--logdir", str(logdir))
    _, summary = summary_of(result)
    assert set(summary["parity"]) == {"2.3", "2.5", "3.3"}
    for name, scripts in (("2.3", ("2.3_copying_hp_zoo", "2.3_copying_hp_zoo")),
                          ("2.5", ("2.4_ppo_atari_from_scratch", "2.5_ppo_fast")),
                          ("3.3", ("3.3_aimbot_training", "3.3_aimbot_training"))):
        parity = summary["parity"][name]
        assert parity["steps"] == 64 and set(parity["runs"]) == {"stock", "fast"}
        for side, script in zip(("stock", "fast"), scripts):
            (run,) = parity["runs"][side]
            assert run["timesteps"] == 64 and run["seed"] == 0 and run["steps_per_second"] > 0
            assert Path(run["run_dir"]).is_relative_to(Path(summary["run_dir"]))
            assert json.loads((Path(run["run_dir"]) / "summary.json").read_text())["script"].startswith(script)
        assert parity["table"] in summary["table"]
        assert set(parity["score_difference"]) == {"fast_minus_stock", "standard_error"}  # 2 games a side
        assert f"parity {name} stock seed 0: 64 steps" in result.stdout
        assert f"parity {name} fast  seed 0: 64 steps" in result.stdout
    assert "| **2.3 --fast**, 1 seeds |" in summary["parity"]["2.3"]["table"]
    assert "| **2.5**, 1 seeds |" in summary["parity"]["2.5"]["table"]
    assert "| **3.3 --fast, ale_vector**, 1 seeds |" in summary["parity"]["3.3"]["table"]
    aimbot_stock = json.loads((Path(summary["parity"]["3.3"]["runs"]["stock"][0]["run_dir"]) / "config.json").read_text())
    assert aimbot_stock["backend"] == "classic" and aimbot_stock["fast"]  # only the env backend differs


def test_only_the_chosen_parity_pairs_and_unknown_ones_are_one_line(logdir: Path) -> None:
    result = run_script(SCRIPT, "--parity-pairs", "2.3,2.9", "--parity-steps", "64", "--logdir", str(logdir),
                        expect_ok=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("error: unknown --parity-pairs ['2.9']; choose from 2.3, 2.5, "
                                                      "3.3, comma-separated.")
