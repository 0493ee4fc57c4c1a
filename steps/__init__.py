"""Thin ZenML steps over the ``jude`` library (one per file)."""

import materializers  # noqa: F401  (registers jude's materializers before any step output is stored)
