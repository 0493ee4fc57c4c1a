"""`python run.py --pipeline ranker` through ZenML on the smoke config, with tiny models (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
METRICS = ("apply_auc", "log_loss", "qualified_apply_rate_at_10", "dismiss_to_apply_at_10")
SETS = ("standard", "base", "champion", "champion_latest")


def _register_tiny_champion(home: Path, tiny_bert_dir) -> str:
    import mlflow

    from jude.config import ModelConfig
    from jude.modeling.embedder import Embedder
    from jude.registry.mlflow_registry import configure, log_model_version

    uri = f"sqlite:///{home / '.jude' / 'mlflow.db'}"
    (home / ".jude").mkdir(exist_ok=True)
    configure(uri, "jude")
    cfg = ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=64, max_length_resume=64)
    model_dir = Embedder.from_base(cfg).save(home / "champion")
    with mlflow.start_run(run_name="train"):
        log_model_version(model_dir, "jude-embedder", first_champion=(True, "beats the base model (test)"))
    mlflow.set_tracking_uri("")
    return uri


def _run(home: Path, config: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(home / "zenml"),
        "JUDE_HOME": str(home),
        "ZENML_LOCAL_STORES_PATH": str(home / "zenml" / "local_stores"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "run.py", "--pipeline", "ranker", "--config", str(config)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


def _config(home: Path, tiny_bert_dir, **ranker) -> Path:
    """configs/ranker_smoke.yaml with the tiny BERT as the base model (and ``ranker`` overrides)."""
    doc = yaml.safe_load((ROOT / "configs" / "ranker_smoke.yaml").read_text())
    doc["parameters"]["model"]["base_model"] = str(tiny_bert_dir)
    doc["parameters"]["ranker"].update(ranker)
    path = home / f"ranker-{len(list(home.glob('ranker-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.slow
def test_ranker_pipeline_logs_every_feature_set_with_intervals(tmp_path, tiny_bert_dir):
    uri = _register_tiny_champion(tmp_path, tiny_bert_dir)
    res = _run(tmp_path, _config(tmp_path, tiny_bert_dir))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert "jude ranker: Champion embeddings move apply AUC from" in out, out[-3000:]
    assert "jude ranker: champion jude-embedder-1:" in out and "jude ranker: base base-" in out

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("jude").experiment_id
    runs = client.search_runs([exp], "metrics.`ranker/standard/apply_auc` > 0")
    assert len(runs) == 1
    metrics = runs[0].data.metrics
    for feature_set in SETS:
        for name in METRICS:
            key = f"ranker/{feature_set}/{name}"
            assert metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"], key
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "ranker")}
    assert {"ranker/report.html", "ranker/calibration.png", "ranker/table.json"} <= artifacts

    # Reading a history that lacks the versions stops the run, naming the version (exit 2, bad input).
    bad = _run(tmp_path, _config(tmp_path, tiny_bert_dir, build_history=False, history_path=str(tmp_path / "empty")))
    last = (bad.stderr.strip().splitlines() or [""])[-1]
    assert bad.returncode == 2, bad.stdout[-2000:] + bad.stderr[-2000:]
    assert "embedding version 'base-" in last and "has no profile rows in the offline history" in last, last


def test_a_feature_that_does_not_exist_stops_the_run_before_zenml(tmp_path, tiny_bert_dir):
    res = _run(tmp_path, _config(tmp_path, tiny_bert_dir, features=["skill_overlap", "popularity"]))
    assert res.returncode == 2
    assert "ranker.features: unknown feature 'popularity'" in res.stderr, res.stderr[-2000:]
