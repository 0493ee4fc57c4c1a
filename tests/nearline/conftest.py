"""Fixtures of the nearline tests: the machine's Redis under a per-test prefix, and librdkafka's mock Kafka."""

from __future__ import annotations

import pytest

from tests.stores.conftest import redis_client, redis_connect, redis_prefix  # noqa: F401 (fixtures)

QUIET = {"log_level": 3}


@pytest.fixture(scope="module")
def kafka_mock():
    """A 3-broker librdkafka mock cluster (bootstrap servers), alive for the module.

    It speaks the real protocol on loopback ports, so worker subprocesses reach it too.
    """
    from confluent_kafka import Producer

    mock = Producer({"test.mock.num.brokers": 3, **QUIET})
    brokers = mock.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    del mock
