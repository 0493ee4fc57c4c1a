"""`python run.py --pipeline monitor` through ZenML against a champion in an isolated MLflow (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _register_champion(tmp_path: Path, minilm) -> str:
    """The packaged MiniLM, saved as a jude model and registered: version 1 becomes the champion."""
    import mlflow

    from jude.registry.mlflow_registry import configure, log_model_version

    uri = f"sqlite:///{tmp_path / '.jude' / 'mlflow.db'}"
    (tmp_path / ".jude").mkdir(exist_ok=True)
    configure(uri, "jude")
    model_dir = minilm.save(tmp_path / "champion")
    with mlflow.start_run(run_name="train"):
        info = log_model_version(model_dir, "jude-embedder", first_champion=(True, "beats the base model (test)"))
    mlflow.set_tracking_uri("")
    assert "champion" in info.aliases or info.version == "1"
    return uri


@pytest.mark.slow
def test_shifted_window_fails_the_pipeline_with_the_numbers_and_keeps_the_report(tmp_path, minilm):
    uri = _register_champion(tmp_path, minilm)
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "enable_cache: false\n"
        "parameters:\n"
        "  data: {synthetic: {n_jobs: 200, n_members: 200, impressions_per_member: 3, seed: 1}}\n"
        "  monitor: {entity_types: [job, profile], current_days: 21, sample_size: 60, synthetic_shift: roles,\n"
        "            alert: fail}\n"
    )
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
        "JUDE_HOME": str(tmp_path),
        "ZENML_LOCAL_STORES_PATH": str(tmp_path / "zenml" / "local_stores"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    res = subprocess.run(
        [sys.executable, "run.py", "--pipeline", "monitor", "--config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "DriftAlert" in out and "embedding drift detected in 2 of 2 entity type(s)" in out, out[-3000:]
    assert "> threshold 0.65" in out

    # The scores reached MLflow before the alert step failed.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("jude")
    runs = client.search_runs([exp.experiment_id], "attributes.run_name = 'monitor'")
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    assert metrics["drift/job/model"] > 0.65 and metrics["drift/profile/model"] > 0.65
    assert runs[0].data.tags["jude.model_version"] == "jude-embedder/1"

    # ... and the Evidently report is a ZenML artifact (a dashboard visualization).
    reader = tmp_path / "read_report.py"  # a file, not `python -c`: ZenML needs a source root to load artifacts
    reader.write_text(
        "from zenml.client import Client\n"
        "html = Client().get_artifact_version('drift_report').load()\n"
        "print(type(html).__name__, len(html), 'Drift in embeddings' in html)\n"
    )
    got = subprocess.run([sys.executable, str(reader)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert got.returncode == 0, got.stderr[-2000:]
    assert got.stdout.split()[0] == "HTMLString" and got.stdout.split()[-1] == "True", got.stdout
