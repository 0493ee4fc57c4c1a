"""Helpers the tests share (plain functions and constants; fixtures live in conftest.py)."""

from __future__ import annotations

import socket

# The one small synthetic marketplace of the test suite (the `small_market` fixture): big enough for
# label budgets and splits, small enough to generate in well under a second.
SMALL_MARKET_SEED = 1
SMALL_MARKET_SIZES = dict(n_jobs=120, n_members=90, days=30, impressions_per_member=20)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
