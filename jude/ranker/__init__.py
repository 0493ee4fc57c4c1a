"""The apply-prediction ranker: what the embeddings are for, offline, with and without time travel.

JUDE's embeddings replaced standardised features in LinkedIn's L2 ranking models, and its Kappa
design exists so that a training row sees the embedding *as it was when the impression happened*.
This package measures both on jude's own data:

- ``features.py``: one row per impression (member, job, time) with its outcome (apply, dismiss),
  split by time and by the training pipeline's held-out members; the *standard* features a
  ranking team has without embeddings, each from events strictly before the impression.
- ``embeddings.py``: the offline history (``jude.stores.offline``) filled by the bootstrap's
  backfill from the change stream, and read per row *as of the impression* (or, for the
  time-travel row, as it is at the end); cosine similarity and an optional PCA projection.
- ``model.py``: one ``HistGradientBoostingClassifier`` per feature set, same rows, seed and budget.
- ``metrics.py``: apply AUC, log loss, the top-k qualified-apply rate and dismiss-to-apply ratio
  per member, with bootstrap intervals over test members (paired across feature sets).
- ``report.py``: the HTML page (headline, rounded table, calibration plot) and MLflow's table.
- ``run.py``: the recipe the pipeline's steps call.
"""
