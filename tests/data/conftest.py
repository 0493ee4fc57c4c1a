"""Small generated marketplaces shared by the data tests (generated once per session)."""

from __future__ import annotations

import pytest

from jude.config import SyntheticConfig
from jude.data.synthetic import generate_marketplace

SMALL = dict(n_jobs=120, n_members=80, impressions_per_member=12, days=30)


@pytest.fixture(scope="session")
def small():
    """The size of the small marketplaces (SyntheticConfig keyword arguments)."""
    return dict(SMALL)


@pytest.fixture(scope="session")
def small_market():
    """Unshifted, seed 0; small enough to generate in well under a second."""
    return generate_marketplace(SyntheticConfig(seed=0, **SMALL))


@pytest.fixture(scope="session")
def default_market():
    """The default size (600 jobs, 400 members, 30 impressions each): enough pairs for rate statistics."""
    return generate_marketplace(SyntheticConfig(seed=1))
