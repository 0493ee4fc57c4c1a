"""Schemathesis against the app's own OpenAPI spec, over real HTTP: no input yields a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from jude.config import ServeConfig
from jude.serving.app import create_app
from tests.serving.conftest import live_server

# The spec needs no model: build it from an app that is never started.
schema = schemathesis.openapi.from_dict(create_app(lambda: None).openapi())


@pytest.fixture(scope="module")
def base_url(engine):
    app = create_app(engine, ServeConfig(max_client_batch_size=16, max_input_chars=2000))
    with live_server(app) as url:
        yield url


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_input_yields_a_server_error(case, base_url):
    response = case.call(base_url=base_url, timeout=30)
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert "message" in response.json()["error"]  # every error body says what was wrong
