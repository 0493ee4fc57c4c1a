"""Window selection on hand-made tables, embedding a window, and recording a check in MLflow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jude.config import DataConfig, MonitorConfig, RegistryConfig
from jude.monitoring.drift import DriftInputError, EmbeddingSet, detect_drift
from jude.monitoring.windows import (
    compute_windows,
    current_entities,
    current_tables,
    embed_window,
    reference_entities,
    sample_entities,
)

DAY0 = pd.Timestamp("2026-01-01")


def _day(d: float) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=d)


@pytest.fixture()
def tables():
    jobs = pd.DataFrame(
        {
            "job_id": ["old", "old_edited", "mid", "new"],
            "posted_at": [_day(1), _day(2), _day(70), _day(95)],
            "updated_at": [_day(1), _day(92), _day(70), _day(95)],
        }
    )
    members = pd.DataFrame({"member_id": ["m_old", "m_mid", "m_new"], "updated_at": [_day(5), _day(60), _day(100)]})
    interactions = pd.DataFrame({"ts": [_day(0), _day(100)]})
    return jobs, members, interactions


def test_windows_follow_the_training_split_and_the_last_days(tables):
    jobs, members, interactions = tables
    w = compute_windows(
        jobs, members, interactions, MonitorConfig(current_days=10), val_fraction=0.15, test_fraction=0.2
    )
    assert abs(w.reference_end - _day(65)) < pd.Timedelta(seconds=1)  # first 65% of the 100-day interaction period
    assert w.now == _day(100) and w.current_start == _day(90)
    assert list(reference_entities("job", jobs, members, w)["job_id"]) == ["old", "old_edited"]
    # Created or updated in the last 10 days: the edited old posting counts.
    assert list(current_entities("job", jobs, members, w)["job_id"]) == ["old_edited", "new"]
    assert list(reference_entities("profile", jobs, members, w)["member_id"]) == ["m_old", "m_mid"]
    assert list(current_entities("resume", jobs, members, w)["member_id"]) == ["m_new"]


def test_reference_end_from_config_wins(tables):
    jobs, members, interactions = tables
    w = compute_windows(jobs, members, interactions, MonitorConfig(reference_end="2026-01-04"), 0.15, 0.2)
    assert w.reference_end == _day(3)
    assert list(reference_entities("job", jobs, members, w)["job_id"]) == ["old", "old_edited"]
    with pytest.raises(ValueError, match="monitor.reference_end must be an ISO date, got 'soon'"):
        compute_windows(jobs, members, interactions, MonitorConfig(reference_end="soon"), 0.15, 0.2)


def test_unknown_entity_type_is_named(tables):
    jobs, members, interactions = tables
    w = compute_windows(jobs, members, interactions, MonitorConfig(), 0.15, 0.2)
    with pytest.raises(DriftInputError, match="unknown entity type 'company'"):
        reference_entities("company", jobs, members, w)


def test_sampling_is_seeded_and_keeps_order():
    df = pd.DataFrame({"x": range(100)})
    a, b = sample_entities(df, 10, seed=3), sample_entities(df, 10, seed=3)
    assert a.equals(b) and len(a) == 10 and list(a["x"]) == sorted(a["x"])
    assert sample_entities(df, 500, seed=3) is df


def test_shifted_current_tables_need_synthetic_data(tables):
    jobs, members, _ = tables
    assert current_tables(jobs, members, DataConfig(), MonitorConfig()) == (jobs, members)
    with pytest.raises(ValueError, match="synthetic_shift='roles' needs data.source='synthetic', got 'files'"):
        current_tables(jobs, members, DataConfig(source="files", path="/data"), MonitorConfig(synthetic_shift="roles"))


def test_embed_window_carries_the_model_provenance(minilm):
    members = pd.DataFrame({"member_id": ["a", "b"], "resume_text": ["Nurse, ICU, 5 years", "Welder, 10 years"]})
    s = embed_window(minilm, "resume", members, "current", "jude-embedder/3", show_progress=False)
    assert s.vectors.shape == (2, 384) and list(s.ids) == ["a", "b"]
    assert s.model_version == "jude-embedder/3"
    assert s.templates_version == f"{minilm.meta.templates_version}/{minilm.meta.template_style}"
    np.testing.assert_allclose(np.linalg.norm(s.vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(DriftInputError, match=r"the reference window of 'resume' is empty \(0 entities\)"):
        embed_window(minilm, "resume", members.iloc[:0], "reference", "jude-embedder/3")


def test_drift_scores_land_in_mlflow(mlflow_uri):
    import mlflow

    from jude.monitoring.tracking import log_drift_run

    rng = np.random.default_rng(0)
    ref = EmbeddingSet("job", np.arange(60), rng.normal(size=(60, 8)), "jude-embedder/3", "minilm", "v1", "reference")
    cur = EmbeddingSet(
        "job", np.arange(60), rng.normal(size=(60, 8)) + 2.0, "jude-embedder/3", "minilm", "v1", "current"
    )
    result = detect_drift(ref, cur, MonitorConfig(), report=False)
    run_id = log_drift_run([result], RegistryConfig(experiment="jude-test"), MonitorConfig(), html="<html>x</html>")
    run = mlflow.get_run(run_id)
    assert run.info.run_name == "monitor"
    assert mlflow.get_experiment(run.info.experiment_id).name == "jude-test"
    assert run.data.metrics["drift/job/model"] == pytest.approx(result.primary.score)
    assert run.data.metrics["drift/job/drifted"] == 1.0
    assert run.data.tags["jude.drifted"] == "job"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "monitor")}
    assert artifacts == {"monitor/drift_report.html", "monitor/job.json"}
