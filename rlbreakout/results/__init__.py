"""The results wing: every figure of the READMEs, from finished runs to tables and curves.

Start with :mod:`~rlbreakout.results.ledger`: one small JSON file per finished run in
``results/``, and the per-seed figures. Then:

* :mod:`~rlbreakout.results.campaign`: the planned runs as data, run one after another,
  resumed after an interruption, evaluated, and written to the ledger;
* :mod:`~rlbreakout.results.tables`: the README tables and sentences, written from the ledger
  between marker comments;
* :mod:`~rlbreakout.results.plots`: learning curves from TensorBoard files and seed bands
  from the ledger, as the READMEs' PNGs;
* :mod:`~rlbreakout.results.export`: a trained (``--fast``) policy saved as SB3's stock
  fp32 ``CnnPolicy``, for ``models/``.

The top of the package: results may import anything below, and nothing imports them. The
scripts that drive them are in ``pictures/`` (``make tables``, ``make plots``, ``make results``).
"""
