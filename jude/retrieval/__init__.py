"""Retrieval: an ANN index of job embeddings per embedding version, kept fresh by the nearline (docs/retrieval.md).

``index.py`` (``JobIndex``: IVF + exact, deletes and updates, last write wins, filters, watermark, snapshots),
``feed.py`` (``IndexFeed``: the per-version Redis stream the nearline processor writes and servers follow; the
jobs' filter attributes), ``build.py`` (from the online store, the Delta history, a bootstrap's snapshot),
``service.py`` (``Retriever``: the active version's index, its follower thread, ``recommend``).
"""
