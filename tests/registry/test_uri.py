"""Model URIs: parsing the accepted forms, resolving them once, and loading what was resolved."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import pytest

from jude.config import ModelConfig, MonitorConfig, RegistryConfig
from jude.modeling.embedder import Embedder
from jude.registry import mlflow_registry as reg
from jude.registry.uri import (
    ModelNotFoundError,
    ModelRef,
    ModelURIError,
    ResolvedModel,
    parse_model_uri,
    pinned_uri,
    resolve,
)

NAME = "jude-embedder"

# ---- parsing: no registry, no filesystem ------------------------------------------------------


@pytest.mark.parametrize(
    "uri, ref",
    [
        ("models:/jude-embedder@champion", ModelRef("models:/jude-embedder@champion", NAME, None, "champion")),
        ("models:/jude-embedder/3", ModelRef("models:/jude-embedder/3", NAME, "3", None)),
        ("/srv/models/embedder", ModelRef("/srv/models/embedder")),
        ("minilm", ModelRef("minilm")),
        ("runs:/0a1b/model", ModelRef("runs:/0a1b/model")),
    ],
)
def test_parse_reads_the_name_and_the_alias_or_version(uri, ref):
    assert parse_model_uri(uri) == ref


@pytest.mark.parametrize(
    "uri, why",
    [
        ("models:/", "malformed"),
        ("models:/jude-embedder", "malformed"),
        ("models:/jude-embedder@", "malformed"),
        ("models:/jude-embedder/3/extra", "malformed"),
        ("models:/jude-embedder@champion/3", "malformed"),
        ("models:/jude-embedder/latest", "positive integer, got 'latest'"),
        ("models:/jude-embedder/0", "positive integer, got '0'"),
    ],
)
def test_parse_rejects_a_malformed_registry_uri_naming_it(uri, why):
    with pytest.raises(ModelURIError, match=f"{uri!r}.*{why}"):
        parse_model_uri(uri)


def test_parse_rejects_an_empty_uri():
    with pytest.raises(ModelURIError, match="non-empty string, got ''"):
        parse_model_uri("")


def test_pinned_uri_names_one_version():
    assert pinned_uri(NAME, 3) == "models:/jude-embedder/3"


# ---- resolving a local directory ---------------------------------------------------------------


def test_a_local_directory_resolves_to_itself_without_importing_mlflow(tmp_path):
    assert resolve(str(tmp_path)) == ResolvedModel(name=None, version=None, pinned_uri=str(tmp_path), alias=None)
    assert resolve(str(tmp_path)).local and resolve(str(tmp_path)).label == str(tmp_path)
    code = (
        f"import sys; from jude.registry.uri import resolve; resolve({str(tmp_path)!r}); print('mlflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_local_directory_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="nowhere.*no such local directory"):
        resolve(str(tmp_path / "nowhere"))


# ---- resolving against a registry (a private sqlite store per test) ----------------------------


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two models that differ in a way /info and the monitor can see: mean and CLS pooling."""
    root = tmp_path_factory.mktemp("models")
    Embedder.from_base(ModelConfig(pooling="mean")).save(root / "mean")
    Embedder.from_base(ModelConfig(pooling="cls")).save(root / "cls")
    return root / "mean", root / "cls"


def _register(model_dir) -> reg.ModelVersionInfo:
    reg.configure(experiment="jude-test")
    with mlflow.start_run():
        return reg.log_model_version(model_dir, NAME, first_champion=(True, "beats the base model (test)"))


def test_resolve_pins_an_alias_and_checks_a_version(mlflow_uri, two_models):
    _register(two_models[0])
    _register(two_models[1])  # version 2: challenger; version 1 stays champion
    assert resolve(f"models:/{NAME}@champion") == ResolvedModel(NAME, "1", "models:/jude-embedder/1", "champion")
    assert resolve(f"models:/{NAME}@challenger").pinned_uri == "models:/jude-embedder/2"
    assert resolve(f"models:/{NAME}/2") == ResolvedModel(NAME, "2", "models:/jude-embedder/2", None)
    assert resolve(f"models:/{NAME}/2").label == "jude-embedder/2"
    no_alias = r"'models:/jude-embedder@previous'.*no alias 'previous'.*champion -> 1"
    with pytest.raises(ModelNotFoundError, match=no_alias):
        resolve(f"models:/{NAME}@previous")
    with pytest.raises(ModelNotFoundError, match=r"'models:/jude-embedder/7'.*no version 7"):
        resolve(f"models:/{NAME}/7")
    with pytest.raises(ModelNotFoundError, match=r"'models:/other@champion'.*no registered model 'other'"):
        resolve("models:/other@champion")


@pytest.fixture()
def alias_moves_before_download(mlflow_uri, two_models, monkeypatch):
    """Versions 1 (mean pooling, champion) and 2 (CLS); ``champion`` moves to 2 just before any download."""
    _register(two_models[0])
    _register(two_models[1])
    download = reg.download_model

    def move_then_download(*args, **kwargs):
        reg.set_alias(NAME, "champion", "2")
        return download(*args, **kwargs)

    monkeypatch.setattr(reg, "download_model", move_then_download)
    return download


def test_download_takes_the_resolved_version_after_the_alias_moved(alias_moves_before_download):
    download = alias_moves_before_download
    resolved = resolve(f"models:/{NAME}@champion")
    reg.set_alias(NAME, "champion", "2")
    assert Embedder.load(download(resolved)).meta.pooling == "mean"  # version 1, as resolved
    # by alias, the download follows the alias: that is what the callers must not do
    assert Embedder.load(download(f"models:/{NAME}@champion")).meta.pooling == "cls"


def test_the_server_serves_and_reports_the_version_it_resolved(alias_moves_before_download):
    from jude.serving.engine import load_engine

    engine = load_engine(f"models:/{NAME}@champion")
    assert reg.get_version(NAME, "champion").version == "2"  # the alias did move
    assert engine.info.registry_version == "1" and engine.info.pooling == "mean"
    assert "jude-embedder-v1" in engine.info.path and engine.info.model_name == NAME


def test_the_monitor_embeds_with_and_reports_the_version_it_resolved(alias_moves_before_download):
    from jude.monitoring.windows import load_monitored_model

    embedder, version = load_monitored_model(MonitorConfig(), RegistryConfig(model_name=NAME))
    assert reg.get_version(NAME, "champion").version == "2"
    assert version == "jude-embedder/1" and embedder.meta.pooling == "mean"


def test_the_monitor_names_its_field_when_there_is_no_champion(mlflow_uri):
    from jude.monitoring.windows import load_monitored_model

    with pytest.raises(ModelNotFoundError, match="monitor.model_uri: .*run the train pipeline first"):
        load_monitored_model(MonitorConfig(), RegistryConfig(model_name=NAME))
