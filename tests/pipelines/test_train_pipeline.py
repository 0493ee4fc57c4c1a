"""`python run.py --pipeline train` end to end through ZenML on the smoke config (isolated stores)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import free_port

from tests.stores.conftest import redis_client, redis_prefix  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]


def _run(args, tmp_path, timeout=1800):
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
        "JUDE_HOME": str(tmp_path),
        "ZENML_LOCAL_STORES_PATH": str(tmp_path / "zenml" / "local_stores"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "run.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _client(tmp_path):
    """A client on that run's store for tracking *and* registry (never the process-wide registry URI)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / '.jude' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _registered_extra(tmp_path) -> dict:
    """``extra`` of the challenger's jude.json, as the registry serves it."""
    import json

    env = {**os.environ, "JUDE_HOME": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    code = (
        "import json; from jude.registry.mlflow_registry import download_model; "
        "p = download_model('models:/jude-embedder@challenger'); "
        "print(json.dumps(json.load(open(p / 'jude.json'))['extra']))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _assert_the_chain_ran_and_the_validation_winner_was_registered(client, mv, tmp_path) -> None:
    """JUDE's chain: teacher (checked on validation members), distillation, and the registered model is the
    candidate with the higher validation nDCG@10, with the choice and both scores in the run."""
    run = client.get_run(mv.run_id)
    metrics, tags, params = run.data.metrics, run.data.tags, run.data.params
    for key in ("distilled/ndcg_at_10", "teacher/ndcg_at_10", "val/finetuned/ndcg_at_10", "val/teacher/ndcg_at_10"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert tags["distillation_meaningful"] == ("true" if metrics["distillation_meaningful"] == 1.0 else "false")
    assert (metrics["val/teacher/ndcg_at_10"] > metrics["val/finetuned/ndcg_at_10"]) == (
        tags["distillation_meaningful"] == "true"
    )
    # the promotion rule against the base model on validation, then the best that passes by nDCG@10
    scores = {c: metrics[f"select/{c}/val_ndcg_at_10"] for c in ("finetuned", "distilled")}
    passing = {c: v for c, v in scores.items() if metrics[f"select/{c}/passes_rule"] == 1.0}
    for c in scores:
        gain = scores[c] - metrics["select/base/val_ndcg_at_10"]
        drop = metrics["select/base/val_recall_at_100"] - metrics[f"select/{c}/val_recall_at_100"]
        assert (c in passing) == (gain >= 0.005 and drop <= 0.0), (c, gain, drop)  # promotion's defaults
    chosen = tags["selected_candidate"]
    assert passing, f"no candidate passed the rule on validation: {tags['selection_reason']}"
    best = "distilled" if passing.get("distilled", -1) > passing.get("finetuned", -1) else "finetuned"
    assert chosen == best, (chosen, scores, passing)
    assert params["select.variant"] == chosen and chosen in tags["selection_reason"]
    # the registered model is the chosen one: only a distilled model records its distillation
    assert ("distill" in _registered_extra(tmp_path)) == (chosen == "distilled")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One smoke training run shared by the pipeline tests of this module."""
    tmp_path = tmp_path_factory.mktemp("pipelines")
    res = _run(["--pipeline", "train", "--config", "configs/train_smoke.yaml"], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return tmp_path


@pytest.mark.slow
def test_train_pipeline_registers_a_champion_with_metrics(trained):
    tmp_path = trained

    client = _client(tmp_path)
    mv = client.get_model_version_by_alias("jude-embedder", "champion")
    assert str(mv.version) == "1"
    assert str(client.get_model_version_by_alias("jude-embedder", "challenger").version) == "1"
    metrics = client.get_run(mv.run_id).data.metrics
    names = ("ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10")
    # pooled judgements by default; the labelled-only figures are kept beside them
    expected = {
        f"{prefix}{variant}/{name}"
        for prefix in ("", "labelled/")
        for variant in ("base", "finetuned")
        for name in names
    }
    assert expected <= set(metrics), sorted(expected - set(metrics))
    for key in expected:  # a real ranking, not an empty or degenerate one
        assert 0.02 < metrics[key] <= 1.0, (key, metrics[key])
    assert metrics["finetuned_vs_base_ndcg_ratio"] == pytest.approx(
        metrics["finetuned/ndcg_at_10"] / metrics["base/ndcg_at_10"]
    )
    # six LoRA steps on the smoke data already move the model past its base on the pooled judgements
    assert metrics["finetuned/ndcg_at_10"] > metrics["base/ndcg_at_10"]
    assert "train/loss" in metrics
    # beside the judge's: the generator's truth, the test-period applies and the unseen world, every variant
    for truth in ("truth", "applies", "unseen"):
        for variant in ("base", "finetuned"):
            for name in names:
                assert 0.0 <= metrics[f"{truth}/{variant}/{name}"] <= 1.0, (truth, variant, name)
    _assert_the_chain_ran_and_the_validation_winner_was_registered(client, mv, tmp_path)
    # a validation curve next to the training one (train_smoke.yaml: eval_every_steps 3 of 6 steps)
    assert [m.step for m in client.get_metric_history(mv.run_id, "val/ndcg_at_10")] == [3, 6]
    # artifacts live beside the tracking store, not in the directory the pipeline was started from
    assert client.get_run(mv.run_id).info.artifact_uri.startswith((tmp_path / ".jude" / "mlartifacts").as_uri())

    # the ZenML side: a Model version linked to the run, with the evaluation report artifact
    env_cfg = str(tmp_path / "zenml")
    code = (
        "from zenml.client import Client; c = Client(); mv = c.get_model_version('jude-embedder', 'latest'); "
        "a = mv.get_model_artifact('jude_embedder'); "
        "print(sorted(mv.data_artifact_ids), a.name, a.materializer.attribute, 'stage=' + str(mv.stage))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "ZENML_CONFIG_PATH": env_cfg, "ZENML_LOCAL_STORES_PATH": env_cfg + "/local_stores"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "jude_embedder" in out.stdout and "evaluation_report" in out.stdout
    assert "ModelDirMaterializer" in out.stdout  # the model directory itself is in the artifact store
    assert "stage=production" in out.stdout  # the MLflow champion is ZenML's production version


def test_bad_config_fails_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameters:\n  lora: {r: 0}\n  train: {learning_rate: -1}\n")
    res = _run(["--pipeline", "train", "--config", str(bad)], tmp_path, timeout=300)
    assert res.returncode == 2
    assert "lora.r" in res.stderr and "0" in res.stderr and "learning_rate" in res.stderr
    assert not (tmp_path / "zenml").exists()  # no stack was touched


def test_missing_config_file_is_named(tmp_path):
    res = _run(["--pipeline", "train", "--config", str(tmp_path / "nope.yaml")], tmp_path, timeout=300)
    assert res.returncode == 2 and "nope.yaml" in res.stderr


def _smoke_config(tmp_path, name: str, source: str, parameters: dict) -> str:
    """``configs/<source>`` with its parameters updated section by section (the README path on smoke data)."""
    import yaml

    doc = yaml.safe_load((ROOT / "configs" / source).read_text())
    for section, values in parameters.items():
        doc["parameters"].setdefault(section, {}).update(values)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.slow
@pytest.mark.services
def test_the_readme_path_runs_in_sequence_from_empty_stores(trained, redis_client, redis_prefix):  # noqa: F811
    """make train -> make deploy -> make monitor -> bootstrap -> ranker -> a nearline get of what bootstrap wrote,
    one after the other on the stores ``trained`` started empty (the smoke data in place of the default's). A
    fresh clone once ended make train without a champion, and every later step failed; each pipeline's own test
    registers its own champion, so only this one sees the chain."""
    import json

    import httpx

    smoke_data = {"synthetic": {"n_jobs": 120, "n_members": 80, "days": 30, "impressions_per_member": 20, "seed": 0}}
    port, state = free_port(), trained / "deploy-state"
    deploy = _smoke_config(
        trained, "deploy.yaml", "deploy_local.yaml", {"deploy": {"local": {"port": port, "state_dir": str(state)}}}
    )
    res = _run(["--pipeline", "deploy", "--config", deploy], trained)
    try:
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        record = json.loads((state / "local.json").read_text())
        base = record["address"].rstrip("/")
        assert httpx.get(f"{base}/ready", timeout=10).status_code == 200
        assert "jude-embedder" in json.dumps(httpx.get(f"{base}/info", timeout=10).json())
        out = httpx.post(f"{base}/v1/embeddings", json={"input": ["senior data engineer"]}, timeout=60).json()
        assert len(out["data"][0]["embedding"]) == 384
    finally:
        subprocess.run([sys.executable, "-m", "jude.cli", "deploy", "stop", "--state-dir", str(state)], cwd=ROOT)

    monitor = _smoke_config(
        trained, "monitor.yaml", "monitor.yaml", {"data": smoke_data, "monitor": {"current_days": 10}}
    )
    res = _run(["--pipeline", "monitor", "--config", monitor], trained)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    history = trained / "history"
    boot = {"online_prefix": redis_prefix, "history_path": str(history)}
    bootstrap = _smoke_config(trained, "bootstrap.yaml", "bootstrap.yaml", {"data": smoke_data, "bootstrap": boot})
    res = _run(["--pipeline", "bootstrap", "--config", bootstrap], trained)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "jude bootstrap: 280 entities -> jude-embedder-1" in out, out[-3000:]

    res = _run(["--pipeline", "ranker", "--config", "configs/ranker_smoke.yaml"], trained)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    nearline = trained / "nearline.yaml"
    nearline.write_text(f"online_prefix: '{redis_prefix}'\n")
    got = subprocess.run(
        [sys.executable, "-m", "jude.cli", "nearline", "get", "job", "J00000", "--config", str(nearline)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert got.returncode == 0, got.stderr[-2000:]
    row = json.loads(got.stdout.strip().splitlines()[-1])
    assert row["found"] and row["embedding_version"] == "jude-embedder-1" and row["dimension"] == 384


@pytest.mark.slow
def test_deploy_k8s_dry_run_writes_valid_manifests(trained):
    out = trained / "k8s"
    res = _run(
        ["--pipeline", "deploy", "--config", "configs/deploy_k8s.yaml", "--dry-run", "--output", str(out)], trained
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    import yaml

    kinds = sorted(yaml.safe_load(p.read_text())["kind"] for p in out.glob("*.yaml"))
    # the server's Deployment, Service, HPA and PDB; the nearline worker's Deployment and PDB
    assert kinds == [
        "Deployment",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "PodDisruptionBudget",
        "Service",
    ]


@pytest.mark.slow
def test_full_table_pipeline_trains_and_evaluates_every_variant(tmp_path):
    """train_full.yaml's DAG at smoke size: loss variants, teacher, distillation and its controls, the paired
    distilled-vs-control intervals, the registered validation winner."""
    res = _run(["--pipeline", "train", "--config", "configs/train_full_smoke.yaml"], tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    client = _client(tmp_path)
    experiment = client.get_experiment_by_name("jude").experiment_id
    run = client.search_runs([experiment], "attributes.run_name LIKE 'train_pipeline%'")[0]
    metrics = run.data.metrics
    # at smoke size neither candidate need pass the promotion rule against the base model on validation: then
    # nothing is registered, and the run's last line says so with the figures
    passing = [c for c in ("finetuned", "distilled") if metrics[f"select/{c}/passes_rule"] == 1.0]
    last = res.stdout.strip().splitlines()[-1]
    if not passing:
        assert last.startswith("jude: NOTHING REGISTERED for jude-embedder and no champion: no candidate passes")
        assert "validation queries" in last and run.data.tags["registered"] == "false"
        assert not client.search_model_versions("name='jude-embedder'")
    for variant in ("base", "finetuned", "bce", "vp", "distilled", "teacher", "control_anchor", "control_steps"):
        assert 0.0 <= metrics[f"{variant}/ndcg_at_10"] <= 1.0, variant
        assert 0.0 <= metrics[f"unseen/{variant}/ndcg_at_10"] <= 1.0, variant  # the unseen world too
        for prefix in ("", "truth/", "applies/", "unseen/"):  # each figure with its interval over queries
            key = f"{prefix}{variant}/ndcg_at_10"
            assert metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"], key
    for prefix in ("", "truth/", "applies/", "unseen/"):  # a closure only where the teacher leads, else deltas
        lead = f"{prefix}finetuned_vs_base_ndcg_delta"
        assert metrics[f"{lead}_ci_low"] <= metrics[lead] <= metrics[f"{lead}_ci_high"], prefix
        assert f"{prefix}distill_gap_closure" in metrics or f"{prefix}teacher_vs_finetuned_delta" in metrics
    # the distilled row against each control: the paired difference and its bootstrap interval
    for control in ("control_anchor", "control_steps"):
        key = f"distill_vs_{control}"
        assert metrics[f"{key}_ci_low"] <= metrics[f"{key}_delta"] <= metrics[f"{key}_ci_high"], key
    wins = all(metrics[f"distill_vs_{c}_ci_low"] > 0 for c in ("control_anchor", "control_steps"))
    assert metrics["distill_beats_controls"] == float(wins)
    if not passing:
        return
    mv = client.get_model_version_by_alias("jude-embedder", "challenger")
    assert mv.run_id == run.info.run_id and last.startswith(f"jude: registered jude-embedder v{mv.version}")
    version = client.get_model_version("jude-embedder", mv.version)
    note = version.tags["promotion"]
    assert "base model" in note  # the first version was compared with the base model ...
    assert ("champion" in version.aliases) == note.startswith("promoted to champion")  # ... and the tag says how
    _assert_the_chain_ran_and_the_validation_winner_was_registered(client, mv, tmp_path)
