"""Fixtures for the store tests: the machine's Redis, isolated per test by a unique key prefix."""

from __future__ import annotations

import os
from uuid import uuid4

import pytest

REDIS_URL = os.environ.get("JUDE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_or_skip(**kwargs):
    """A client to the test Redis, or a skip saying why (CI starts Redis; the tests must run there)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, **kwargs)
    try:
        client.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        client.close()
        pytest.skip(f"Redis at {REDIS_URL} does not answer PING ({exc}); start redis-server to run the services tests")
    return client


@pytest.fixture()
def redis_client():
    client = redis_or_skip()
    yield client
    client.close()


@pytest.fixture()
def redis_connect():
    """Opens more clients of their own (one per racing writer); all are closed afterwards."""
    clients = []

    def connect(**kwargs):
        clients.append(redis_or_skip(**kwargs))
        return clients[-1]

    yield connect
    for client in clients:
        client.close()


@pytest.fixture()
def redis_prefix(redis_client):
    """A key prefix no other test uses; every key under it is deleted afterwards."""
    prefix = f"jude-test:{uuid4().hex}:"
    yield prefix
    keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        redis_client.delete(*keys)
