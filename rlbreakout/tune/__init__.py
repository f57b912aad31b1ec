"""Optuna plumbing for chapter 4; the scripts write the study itself (objective, suggest calls, sampler).

* :mod:`~rlbreakout.tune.spaces`: the rules a search space must respect (batch sizes that
  divide the rollout, a valid grid, frames per action) and the short env labels;
* :mod:`~rlbreakout.tune.storage`: the study database (URL, connection, the one-line error),
  a joining worker's sampler seed, and the per-trial budget every worker must share;
* :mod:`~rlbreakout.tune.outage`: a database lost mid-study, its calls retried with a bounded
  backoff (one line per outage), and the one line when the worker gives up;
* :mod:`~rlbreakout.tune.workers`: crash-safe workers (heartbeats, retries, trial accounting)
  and the promotion of a study's best trials into a longer one;
* :mod:`~rlbreakout.tune.objective`: what one trial needs while it trains: the pruning
  evaluation callback and the divergence check;
* :mod:`~rlbreakout.tune.flags`: the study and trial-evaluation flags, validated;
* :mod:`~rlbreakout.tune.analysis`: summaries, the best trial's model, the env comparison table,
  importances, plots.
"""
