"""The ranker's recipe: one model per feature set on the same rows, every metric with its interval; named errors."""

import numpy as np
import pytest

from jude.config import ModelConfig, RankerConfig, RankerPipelineConfig
from jude.ranker.features import RankerError
from jude.ranker.model import FEATURE_SETS, SERVED, feature_columns
from jude.ranker.run import base_version, embedding_features, evaluate_ranker, resolve_models


@pytest.fixture(scope="module")
def evaluated(filled, ranker_rows, tiny_models):
    cfg, _ = filled
    features, stats = embedding_features(ranker_rows, cfg, tiny_models)
    return cfg, features, stats, evaluate_ranker(ranker_rows, features, cfg)


def test_every_feature_set_and_metric_is_logged_with_its_interval(evaluated):
    cfg, _, _, result = evaluated
    metrics = result.flat_metrics()
    for feature_set in (*FEATURE_SETS, SERVED):
        for name in ("apply_auc", "log_loss", "qualified_apply_rate_at_10", "dismiss_to_apply_at_10"):
            key = f"ranker/{feature_set}/{name}"
            assert metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"], key
    assert 0.5 < metrics["ranker/standard/apply_auc"] <= 1.0
    assert "ranker/delta/champion_vs_standard/apply_auc_ci_low" in metrics
    assert result.context["test_members"] >= 5 and result.context["test_applies"] > 0


def test_the_sets_share_rows_seed_and_budget(evaluated, ranker_rows):
    """Each set is the standard features plus its own embedding columns; a second run gives the same figures."""
    cfg, features, _, result = evaluated
    for feature_set in FEATURE_SETS:
        cols = feature_columns(feature_set, cfg.features, features.columns)
        assert cols[: len(cfg.features)] == list(cfg.features)
        assert all(c.startswith(f"{feature_set}.") for c in cols[len(cfg.features) :])
    again = evaluate_ranker(ranker_rows, features, cfg)
    assert again.flat_metrics() == result.flat_metrics()
    for s in result.scores:
        assert np.array_equal(again.scores[s], result.scores[s])


def test_time_travel_statistics_are_reported(evaluated):
    _, _, stats, _ = evaluated
    assert stats["time_travel"]["test_member_changed"] > 0
    assert stats["champion"]["member_missing_test"] == 0.0  # members sign up before their first impression


def test_an_unresolvable_champion_says_to_run_make_train(mlflow_uri):
    with pytest.raises(RankerError, match="make train") as e:
        resolve_models(RankerConfig(), ModelConfig(), mlflow_uri)
    assert "models:/jude-embedder@champion" in str(e.value)


def test_a_model_outside_the_registry_needs_its_version_named(tiny_champion_dir):
    with pytest.raises(RankerError, match="ranker.champion_embedding_version must be set"):
        resolve_models(RankerConfig(model_uri=str(tiny_champion_dir)), ModelConfig())
    models = resolve_models(
        RankerConfig(model_uri=str(tiny_champion_dir), champion_embedding_version="c-1"), ModelConfig()
    )
    assert models["champion"].embedding_version == "c-1" and models["base"].embedding_version.startswith("base-minilm-")


def test_the_base_version_changes_with_the_model_section():
    assert base_version(ModelConfig()) == base_version(ModelConfig())
    assert base_version(ModelConfig()) != base_version(ModelConfig(max_length_job=64))


def test_building_the_history_needs_the_synthetic_marketplace():
    with pytest.raises(ValueError, match="ranker.build_history=true builds the history from the synthetic"):
        RankerPipelineConfig.model_validate({"data": {"source": "files", "path": "/tmp/x"}})
    RankerPipelineConfig.model_validate(
        {"data": {"source": "files", "path": "/tmp/x"}, "ranker": {"build_history": False}}
    )
