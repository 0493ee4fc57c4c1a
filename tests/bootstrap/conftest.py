"""Fixtures of the bootstrap tests: a tiny saved model, the small marketplace's rows, Redis under a prefix."""

from __future__ import annotations

import pytest

from tests.stores.conftest import redis_client, redis_connect, redis_prefix  # noqa: F401 (fixtures)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_bert_dir, tmp_path_factory):
    """A saved jude model over the tiny random BERT: fast, and a real model directory."""
    from jude.config import ModelConfig
    from jude.modeling.embedder import Embedder

    cfg = ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=64, max_length_resume=64)
    return Embedder.from_base(cfg).save(tmp_path_factory.mktemp("tiny-model") / "m")


@pytest.fixture(scope="session")
def snapshot(small_market):
    from jude.bootstrap.selection import snapshot_rows

    return snapshot_rows({"jobs": small_market.jobs, "members": small_market.members})


@pytest.fixture(scope="session")
def history(small_market):
    from jude.bootstrap.selection import history_rows

    return history_rows(small_market)


@pytest.fixture(autouse=True)
def _jude_home(tmp_path, monkeypatch):
    """flip_active saves the new version's job index under $JUDE_HOME/.jude/retrieval: a test's own, not the repo's."""
    monkeypatch.setenv("JUDE_HOME", str(tmp_path))
