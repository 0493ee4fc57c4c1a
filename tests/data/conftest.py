"""Marketplaces the data tests need beyond the suite's ``small_market`` (tests/conftest.py)."""

from __future__ import annotations

import pytest

from jude.config import SyntheticConfig
from jude.data.synthetic import generate_marketplace


@pytest.fixture(scope="session")
def default_market():
    """The default size (600 jobs, 400 members, 30 impressions each): enough pairs for rate statistics."""
    return generate_marketplace(SyntheticConfig(seed=1))
