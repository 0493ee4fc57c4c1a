"""Fixtures the registry tests share."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory):
    """The packaged MiniLM saved as a jude model directory (what the registry logs and serves)."""
    from jude.config import ModelConfig
    from jude.modeling.embedder import Embedder

    path = tmp_path_factory.mktemp("registry-model") / "model"
    Embedder.from_base(ModelConfig()).save(path)
    return path
