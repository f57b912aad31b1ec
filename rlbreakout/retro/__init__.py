"""The retro-games wing: chapter 5's Sega Genesis games (Sonic, Airstriker) through stable-retro.

Start with :mod:`~rlbreakout.retro.envs`: the env factory that preprocesses a retro game the
way :func:`rlbreakout.envs.make_env` does Atari. Then:

* :mod:`~rlbreakout.retro.rewards`: reward wrappers and scales (pay only new progress, keep
  rewards small);
* :mod:`~rlbreakout.retro.cli`: chapter 5's flags and their checks;
* :mod:`~rlbreakout.retro.render`: one game played in this process, its screens kept for a gif;
* :mod:`~rlbreakout.retro.jerk`: JERK, the Retro Contest's scripted baseline.

stable-retro is an optional extra (``pip install -e ".[retro]"``); it is imported inside
functions only, so the rest of the package works without it.
"""
