"""Shared fixtures. The environment is offline and telemetry-free before anything imports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

for key, value in {"ZENML_ANALYTICS_OPT_IN": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                   "TOKENIZERS_PARALLELISM": "false", "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1",
                   "ZENML_ENABLE_RICH_TRACEBACK": "false", "ZENML_LOGGING_VERBOSITY": "WARN"}.items():
    os.environ.setdefault(key, value)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


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

    from jude.modeling.embedder import packaged_minilm_path

    path = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(packaged_minilm_path())
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=256)
    import torch

    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def small_market():
    """A small synthetic marketplace (seeded), shared by the tests that need realistic tables."""
    from jude.config import SyntheticConfig
    from jude.data.synthetic import generate_marketplace

    return generate_marketplace(SyntheticConfig(n_jobs=120, n_members=90, days=30, impressions_per_member=20, seed=1))


@pytest.fixture(scope="session")
def small_labels(small_market):
    """Rubric relevance labels + engagement labels for ``small_market``."""
    import pandas as pd

    from jude.config import LabelConfig
    from jude.labels.engagement import engagement_labels
    from jude.labels.judges import RubricJudge
    from jude.labels.sampling import judge_pairs, sample_pairs

    cfg = LabelConfig(budget=600, retrieved_fraction=0.0, random_fraction=0.6, interacted_fraction=0.4)
    m = small_market
    pairs = sample_pairs(m.jobs, m.members, m.interactions, cfg, rng_seed=0)
    rel, _ = judge_pairs(RubricJudge(), pairs, m.jobs, m.members, cfg.relevant_grade)
    return pd.concat([rel, engagement_labels(m.interactions, cfg)], ignore_index=True)
