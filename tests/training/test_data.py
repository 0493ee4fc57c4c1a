"""build_training_data: a train config -> marketplace, labels, split; cached_training_data shares it per node."""

from __future__ import annotations

import json

import pytest
from pandas.testing import assert_frame_equal

import jude.training.data as data_module
from jude.config import TrainPipelineConfig
from jude.data.synthetic import generate_marketplace
from jude.labels.build import build_labels
from jude.modeling.embedder import Embedder
from jude.training.data import build_training_data, cached_training_data
from jude.training.pairs import split_and_pair

TINY = {  # every split argument off its default, so each is seen to come from the config
    "data": {
        "synthetic": {"n_jobs": 60, "n_members": 50, "days": 20, "impressions_per_member": 10, "seed": 3},
        "val_fraction": 0.2,
        "test_fraction": 0.25,
    },
    "labels": {"budget": 200, "retrieved_fraction": 0.0, "random_fraction": 0.6, "interacted_fraction": 0.4},
    "train": {"seed": 7, "use_engagement": False},
    "eval": {"max_queries": 10, "member_view": "resume"},
}


@pytest.fixture()
def no_base_model(monkeypatch):
    def refuse(cfg):
        raise AssertionError("the base model was loaded")

    monkeypatch.setattr(Embedder, "from_base", refuse)


def test_the_config_decides_every_piece(no_base_model):
    cfg = TrainPipelineConfig.model_validate(TINY)
    got = build_training_data(cfg)

    market = generate_marketplace(cfg.data.synthetic)
    assert_frame_equal(got.market.jobs, market.jobs)
    assert_frame_equal(got.market.interactions, market.interactions)
    labels = build_labels(market.jobs, market.members, market.interactions, cfg.labels)
    assert_frame_equal(got.labels.table, labels.table)
    assert got.labels.stats == labels.stats and got.labels.stats["pairs_sampled"] == 200
    split = split_and_pair(
        market.jobs,
        market.members,
        market.interactions,
        labels.table,
        0.2,
        0.25,
        max_queries=10,
        query_entity="resume",
        use_engagement=False,
        seed=7,
    )
    assert_frame_equal(got.split.pairs, split.pairs)
    assert set(got.split.pairs["source"]) == {"relevance"} and got.split.test.query_entity == "resume"
    assert got.split.stats == split.stats and got.split.test.to_dict() == split.test.to_dict()


def test_retrieved_candidates_come_from_the_given_base_model(monkeypatch, no_base_model):
    cfg = TrainPipelineConfig.model_validate(
        {
            **TINY,
            "labels": {**TINY["labels"], "retrieved_fraction": 0.5, "random_fraction": 0.3, "interacted_fraction": 0.2},
        }
    )
    base = object()
    seen = {}

    def top_k(model, jobs, members, k, show_progress):
        seen.update(model=model, k=k)
        return {m: jobs["job_id"].tolist()[:k] for m in members["member_id"]}

    monkeypatch.setattr(data_module, "top_k_candidates", top_k)
    got = build_training_data(cfg, base=base)
    assert seen == {"model": base, "k": cfg.labels.retrieve_k}
    assert got.labels.stats["origins"]["retrieved"] == 100  # half the budget of 200


def test_local_rank_zero_builds_once_and_the_cache_is_read_after(tmp_path, monkeypatch, no_base_model):
    monkeypatch.setenv("LOCAL_RANK", "0")
    cfg = TrainPipelineConfig.model_validate(TINY)
    first = cached_training_data(cfg, tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "jobs.parquet",
        "members.parquet",
        "pairs.parquet",
        "test_set.json",
    ]
    assert json.loads((tmp_path / "data" / "test_set.json").read_text())["queries"]

    def rebuild(*args, **kwargs):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(data_module, "build_training_data", rebuild)
    again = cached_training_data(cfg, tmp_path / "data")
    for name in ("jobs", "members", "pairs"):
        assert_frame_equal(again[name], first[name])
    monkeypatch.setenv("LOCAL_RANK", "1")  # another rank of the node reads what rank 0 wrote
    assert_frame_equal(cached_training_data(cfg, tmp_path / "data")["pairs"], first["pairs"])


def test_other_local_ranks_wait_for_rank_zero_and_name_the_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(TimeoutError, match=f"did not write the training data to {tmp_path / 'data'}"):
        cached_training_data(TrainPipelineConfig.model_validate(TINY), tmp_path / "data", timeout_s=0)
