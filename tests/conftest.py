"""Shared fixtures. The environment is offline and telemetry-free before anything imports."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env({"ZENML_LOGGING_VERBOSITY": "WARN"})

import pytest  # noqa: E402
from support import SMALL_MARKET_SEED, SMALL_MARKET_SIZES  # noqa: E402


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _has_cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `make test-gpu` on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2, loaded once per test session (inference only)."""
    from jude.modeling.embedder import Embedder

    return Embedder.load("minilm")


@pytest.fixture()
def mlflow_uri(tmp_path, monkeypatch):
    """A private MLflow tracking store (sqlite) for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("JUDE_HOME", str(tmp_path))
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri("")
    mlflow.set_registry_uri("")


@pytest.fixture()
def zenml_home(tmp_path, monkeypatch):
    """An isolated ZenML configuration (its own local store) for one test."""
    path = tmp_path / "zenml"
    path.mkdir()
    monkeypatch.setenv("ZENML_CONFIG_PATH", str(path))
    monkeypatch.setenv("ZENML_LOCAL_STORES_PATH", str(path / "local_stores"))
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A 2-layer random-initialised BERT with MiniLM's tokenizer: a fast stand-in base model."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from jude.modeling.model_dir import packaged_minilm_path

    path = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(packaged_minilm_path())
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def small():
    """The sizes of ``small_market`` (SyntheticConfig keyword arguments, without the seed)."""
    return dict(SMALL_MARKET_SIZES)


@pytest.fixture(scope="session")
def small_market():
    """The small synthetic marketplace (seeded) that every test needing realistic tables shares."""
    from jude.config import SyntheticConfig
    from jude.data.synthetic import generate_marketplace

    return generate_marketplace(SyntheticConfig(seed=SMALL_MARKET_SEED, **SMALL_MARKET_SIZES))


@pytest.fixture(scope="session")
def small_labels(small_market):
    """Rubric relevance labels + engagement labels for ``small_market``."""
    from jude.config import LabelConfig
    from jude.labels.build import build_labels
    from jude.labels.rubric import RubricJudge

    cfg = LabelConfig(budget=600, retrieved_fraction=0.0, random_fraction=0.6, interacted_fraction=0.4, seed=0)
    m = small_market
    return build_labels(m.jobs, m.members, m.interactions, cfg, judge=RubricJudge()).table


@pytest.fixture(scope="session")
def split(small_market, small_labels):
    """``small_market`` cut by time with ``small_labels``: training pairs, validation and test sets."""
    from jude.training.pairs import split_and_pair

    m = small_market
    return split_and_pair(m.jobs, m.members, m.interactions, small_labels, 0.15, 0.2, max_queries=30)
