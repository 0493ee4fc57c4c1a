"""Fixtures of the retrieval tests: the machine's Redis under a key prefix of each test's own (tests/stores)."""

from tests.stores.conftest import redis_client, redis_connect, redis_prefix  # noqa: F401 (fixtures)
