"""`python run.py --pipeline bootstrap` through ZenML: the champion's embeddings for every entity (slow, services)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stores.conftest import redis_client, redis_prefix  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def _register_tiny_champion(tmp_path: Path, tiny_bert_dir) -> str:
    import mlflow

    from jude.config import ModelConfig
    from jude.modeling.embedder import Embedder
    from jude.registry.mlflow_registry import configure, log_model_version

    uri = f"sqlite:///{tmp_path / '.jude' / 'mlflow.db'}"
    (tmp_path / ".jude").mkdir(exist_ok=True)
    configure(uri, "jude")
    model_dir = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir))).save(tmp_path / "champion")
    with mlflow.start_run(run_name="train"):
        log_model_version(model_dir, "jude-embedder", first_champion=(True, "beats the base model (test)"))
    mlflow.set_tracking_uri("")
    return uri


@pytest.mark.slow
@pytest.mark.services
def test_bootstrap_pipeline_fills_both_stores_and_flips(tmp_path, tiny_bert_dir, redis_client, redis_prefix):  # noqa: F811
    uri = _register_tiny_champion(tmp_path, tiny_bert_dir)
    history = tmp_path / "history"
    config = tmp_path / "bootstrap.yaml"
    config.write_text(
        "enable_cache: false\n"
        "parameters:\n"
        "  data: {synthetic: {n_jobs: 40, n_members: 30, impressions_per_member: 3, seed: 2}}\n"
        f"  bootstrap: {{online_prefix: '{redis_prefix}', history_path: '{history}', chunk_size: 25}}\n"
    )
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
        "JUDE_HOME": str(tmp_path),
        "ZENML_LOCAL_STORES_PATH": str(tmp_path / "zenml" / "local_stores"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "run.py", "--pipeline", "bootstrap", "--config", str(config)]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "jude bootstrap: 100 entities -> jude-embedder-1" in out, out[-3000:]

    from jude.stores.offline import DeltaHistory
    from jude.stores.online import RedisOnlineStore

    store = RedisOnlineStore(redis_client, prefix=redis_prefix)
    assert {t: store.active_version(t) for t in ("job", "profile", "resume")} == dict.fromkeys(
        ("job", "profile", "resume"), "jude-embedder-1"
    )
    ids = [f for f in DeltaHistory(str(history)).read(entity_type="job")["entity_id"]]
    assert len(ids) == 40 and store.get_embeddings("job", ids).found.all()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("jude").experiment_id], "metrics.`bootstrap/entities` > 0")
    assert runs and runs[0].data.metrics["bootstrap/inferences"] > 0

    # A second run finds everything stored: no inference.
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "0 inferences, 100 skipped as stored" in out, out[-3000:]
