"""Registry round trip on a private sqlite store: log, register, aliases, download, load."""

import mlflow
import numpy as np
import pytest

from jude.modeling.embedder import Embedder
from jude.registry import mlflow_registry as reg


def _register(saved_model, metrics):
    reg.configure(experiment="jude-test")
    with mlflow.start_run():
        mlflow.log_metrics(metrics)
        return reg.log_model_version(
            saved_model,
            "jude-embedder",
            eval_set={"queries": {}, "corpus": {}, "relevant": {}},
            first_champion=(True, "beats the base model (test)"),  # a first version becomes champion
        )


def test_default_tracking_uri_is_sqlite_under_dot_jude(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("JUDE_HOME", str(tmp_path))
    assert reg.resolve_tracking_uri() == f"sqlite:///{tmp_path / '.jude' / 'mlflow.db'}"


def test_first_version_is_challenger_and_champion_second_only_challenger(mlflow_uri, saved_model):
    v1 = _register(saved_model, {"finetuned/ndcg_at_10": 0.3})
    assert set(v1.aliases) == {"challenger", "champion"}
    v2 = _register(saved_model, {"finetuned/ndcg_at_10": 0.2})
    assert v2.aliases == ["challenger"]
    assert reg.get_version("jude-embedder", "champion").version == v1.version
    assert reg.get_version("jude-embedder", "challenger").metrics["finetuned/ndcg_at_10"] == pytest.approx(0.2)
    assert reg.load_eval_set(v2) == {"queries": {}, "corpus": {}, "relevant": {}}


def test_download_by_alias_loads_the_same_model(mlflow_uri, saved_model, minilm):
    _register(saved_model, {})
    path = reg.download_model("models:/jude-embedder@champion")
    texts = ["senior data engineer in Berlin", "nurse"]
    assert np.allclose(Embedder.load(path).encode(texts), minilm.encode(texts), atol=1e-5)
    # the pyfunc flavour embeds too
    out = mlflow.pyfunc.load_model("models:/jude-embedder@champion").predict(texts)
    assert np.asarray(out).shape == (2, 384)


def test_missing_alias_is_none_and_unknown_uri_is_named(mlflow_uri):
    assert reg.get_version("jude-embedder", "champion") is None
    with pytest.raises(FileNotFoundError, match="models:/jude-embedder@champion"):
        reg.download_model("models:/jude-embedder@champion")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        reg.download_model("/nowhere/model")


def test_experiment_opens_in_the_model_training_view(mlflow_uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_uri)
    reg.configure(experiment="jude-new")  # created with the tag
    client.create_experiment("jude-old")  # an experiment made before the tag existed gets it too
    reg.configure(experiment="jude-old")
    for name in ("jude-new", "jude-old"):
        assert client.get_experiment_by_name(name).tags[reg.EXPERIMENT_KIND_TAG] == "custom_model_development"
