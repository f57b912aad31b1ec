"""The speed wing: how fast this machine trains, and the levers that make it faster.

Start with :mod:`~rlbreakout.speed.fast`: ``--fast`` in one call (:func:`fast_settings`), the
choice of levers from what was measured. Then, by question:

* :mod:`~rlbreakout.speed.measure`: the timing of each candidate training step on this machine;
* :mod:`~rlbreakout.speed.policies`: the bf16 / channels_last policies a choice builds;
* :mod:`~rlbreakout.speed.hardware`: which precision the hardware runs, and the device resolved once;
* :mod:`~rlbreakout.speed.threads`, :mod:`~rlbreakout.speed.allocator`: torch and ALE threads
  from the free cores, and glibc malloc settings that keep freed memory;
* :mod:`~rlbreakout.speed.scratch_speed`: the same levers for the from-scratch PPO (2.4, 2.5);
* :mod:`~rlbreakout.speed.benchmark`, :mod:`~rlbreakout.speed.step_breakdown`,
  :mod:`~rlbreakout.speed.flops`, :mod:`~rlbreakout.speed.parity`: the measurements of
  ``0_setup/0.2_benchmark.py``: steps/s, where a step's time goes, the FLOP ceiling, and
  same-seed runs that check a faster path learns what the stock one does.

The wing sits above the envs (the benchmark builds them) and below training, which asks it
for a run's settings; nothing here imports training, tuning or results.
"""
