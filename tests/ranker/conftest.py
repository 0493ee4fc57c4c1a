"""Fixtures of the ranker tests: the small marketplace's rows, a filled offline history of two tiny models."""

from __future__ import annotations

import pytest

STREAM_EVENTS = 1500  # ~7 changes per entity of the small marketplace
VERSIONS = {"base": "tiny-base", "champion": "tiny-champion"}


@pytest.fixture(scope="session")
def ranker_cfg():
    from jude.config import RankerConfig

    return RankerConfig(
        stream_events=STREAM_EVENTS,
        bootstrap_samples=200,
        gbm={"max_iter": 40, "min_samples_leaf": 10},
        base_embedding_version=VERSIONS["base"],
        champion_embedding_version=VERSIONS["champion"],
    )


@pytest.fixture(scope="session")
def ranker_rows(small_market, ranker_cfg):
    """Rows of the small marketplace, split as ``split`` (the shared fixture: max_queries=30, seed 0)."""
    from jude.config import DataConfig, EvalConfig, TrainConfig
    from jude.ranker.run import build_rows

    m = small_market
    rows, _ = build_rows(
        m.jobs, m.members, m.interactions, DataConfig(), TrainConfig(), EvalConfig(max_queries=30), ranker_cfg
    )
    return rows


@pytest.fixture(scope="session")
def tiny_champion_dir(tiny_bert_dir, tmp_path_factory):
    """A saved jude model over the tiny random BERT, standing in for a registered champion."""
    from jude.config import ModelConfig
    from jude.modeling.embedder import Embedder

    cfg = ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=64, max_length_resume=64)
    return Embedder.from_base(cfg).save(tmp_path_factory.mktemp("tiny-champion") / "m")


@pytest.fixture(scope="session")
def tiny_models(tiny_bert_dir, tiny_champion_dir):
    """The two embedding models of the comparison: the tiny BERT as the base, the saved tiny model as champion."""
    from jude.ranker.run import EmbeddingModel

    return {
        "base": EmbeddingModel("base", VERSIONS["base"], str(tiny_bert_dir), None),
        "champion": EmbeddingModel("champion", VERSIONS["champion"], "tiny champion", str(tiny_champion_dir)),
    }


@pytest.fixture(scope="session")
def filled(small_market, ranker_cfg, tiny_models, tiny_bert_dir, tmp_path_factory):
    """The ranker's history of the small marketplace (profiles and jobs, both versions), built as the pipeline
    builds it; returns (ranker config pointing at it, the fill summary)."""
    from jude.config import ModelConfig
    from jude.ranker.run import fill

    cfg = ranker_cfg.model_copy(update={"history_path": str(tmp_path_factory.mktemp("ranker") / "history")})
    model_cfg = ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=64)
    return cfg, fill(cfg, tiny_models, small_market, model_cfg)
