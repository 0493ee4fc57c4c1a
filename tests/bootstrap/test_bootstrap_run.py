"""The bootstrap's config and entry helpers: bad input named before any inference."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from jude.bootstrap.run import resolve_model
from jude.config import BootstrapConfig, BootstrapPipelineConfig, read_pipeline_config
from jude.registry.uri import ModelNotFoundError

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_config_validates():
    cfg = read_pipeline_config("bootstrap", ROOT / "configs" / "bootstrap.yaml")
    assert cfg.bootstrap.model_uri == "models:/jude-embedder@champion"


def test_unknown_entity_type_in_the_config_is_named():
    with pytest.raises(ValidationError, match="entity_types"):
        BootstrapConfig(entity_types=["jobs"])


def test_window_must_be_ordered():
    with pytest.raises(ValidationError, match="updated_from must be before updated_to"):
        BootstrapConfig(updated_from="2024-02-01", updated_to="2024-01-01")


def test_history_needs_the_synthetic_marketplace():
    with pytest.raises(ValidationError, match="data.source must be 'synthetic'"):
        BootstrapPipelineConfig(bootstrap={"history": True}, data={"source": "files", "path": "x"})


def test_model_uri_that_does_not_resolve_is_named(mlflow_uri, tmp_path):
    with pytest.raises(ModelNotFoundError, match="no registered model 'nope'"):
        resolve_model(BootstrapConfig(model_uri="models:/nope@champion"))
    with pytest.raises(ModelNotFoundError, match="no-such-dir"):
        resolve_model(BootstrapConfig(model_uri=str(tmp_path / "no-such-dir"), embedding_version="v1"))


def test_a_directory_model_needs_an_embedding_version(tiny_model_dir):
    with pytest.raises(ValueError, match="embedding_version must be set"):
        resolve_model(BootstrapConfig(model_uri=str(tiny_model_dir)))
    assert (
        resolve_model(BootstrapConfig(model_uri=str(tiny_model_dir), embedding_version="v1")).embedding_version == "v1"
    )


def test_ray_engine_without_ray_says_how_to_install(tiny_model_dir):
    import importlib.util

    from jude.bootstrap.engines import make_engine

    if importlib.util.find_spec("ray") is not None:
        pytest.skip("Ray is installed here; tests/bootstrap/test_ray_engine.py covers the engine")
    with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
        make_engine("ray", tiny_model_dir)
    with pytest.raises(ValueError, match="engine must be one of"):
        make_engine("spark", tiny_model_dir)
