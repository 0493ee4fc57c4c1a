"""Where embeddings live after the nearline (or a bootstrap) computes them.

- ``online``: Redis, one versioned record per entity, last write wins by event time
  (read by rankers at request time).
- ``offline``: an append-only Delta Lake history with point-in-time reads (joined by
  time when training rankers, so a model never sees an embedding from its future).
"""
