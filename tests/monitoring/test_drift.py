"""The drift core: readable statistics, bad input, Evidently scores, the alert."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jude.config import MonitorConfig
from jude.monitoring.drift import (
    DriftAlert,
    DriftInputError,
    EmbeddingSet,
    check_alert,
    check_comparable,
    detect_drift,
    embedding_stats,
    from_frame,
    to_frame,
)
from jude.monitoring.report import render_html


def _set(
    vectors, window="reference", entity_type="job", model_version="3", base_model="minilm", templates_version="v1/plain"
) -> EmbeddingSet:
    vectors = np.asarray(vectors, dtype=np.float32)
    return EmbeddingSet(
        entity_type,
        [f"{window[0]}{i}" for i in range(len(vectors))],
        vectors,
        model_version,
        base_model,
        templates_version,
        window,
    )


# ---- readable statistics on hand-made arrays ----------------------------------------------------


def test_centroid_distance_is_zero_for_the_same_direction_and_two_for_the_opposite():
    ref = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert embedding_stats(ref, ref * 3).centroid_cosine_distance == pytest.approx(0.0, abs=1e-9)
    assert embedding_stats(ref, -ref).centroid_cosine_distance == pytest.approx(2.0)
    assert embedding_stats(ref, np.array([[0.0, 1.0]])).centroid_cosine_distance == pytest.approx(1.0)


def test_centroid_is_the_mean_of_the_window():
    # Centroids (1, 1)/2 -> direction 45 degrees, and (1, 0): cosine 1/sqrt(2).
    ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    cur = np.array([[2.0, 0.0], [4.0, 0.0]])
    assert embedding_stats(ref, cur).centroid_cosine_distance == pytest.approx(1 - 1 / np.sqrt(2))


def test_norm_quantiles_follow_the_vector_lengths():
    norms = np.arange(1, 102, dtype=float)  # 1..101
    ref = np.stack([norms * 0.6, norms * 0.8], axis=1)  # a 3-4-5 triangle: ||x|| = norms
    stats = embedding_stats(ref, np.array([[3.0, 4.0]]))
    assert stats.reference_norm_quantiles == pytest.approx({"p5": 6.0, "p50": 51.0, "p95": 96.0})
    assert stats.current_norm_quantiles == pytest.approx({"p5": 5.0, "p50": 5.0, "p95": 5.0})


def test_similarity_to_the_reference_centroid():
    ref = np.array([[1.0, 0.0], [1.0, 0.0]])
    cur = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    stats = embedding_stats(ref, cur)
    assert stats.reference_similarity_quantiles["p50"] == pytest.approx(1.0)
    assert stats.current_similarity_quantiles["p5"] == pytest.approx(0.1)  # 5% of the way from 0 to 1 (n-1 = 2 steps)
    assert stats.current_similarity_quantiles["p50"] == pytest.approx(1.0)


def test_stats_reject_mismatched_or_empty_arrays():
    with pytest.raises(DriftInputError, match=r"\(2, 3\) and \(2, 4\)"):
        embedding_stats(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(DriftInputError, match="non-empty"):
        embedding_stats(np.ones((0, 3)), np.ones((2, 3)))


# ---- bad input: a clear error naming what differs ------------------------------------------------


def test_empty_window_is_an_error_naming_the_window():
    with pytest.raises(DriftInputError, match=r"current window of 'job' is empty \(0 entities\)"):
        check_comparable(_set(np.ones((5, 4))), _set(np.zeros((0, 4)), window="current"))


def test_too_small_window_is_an_error_naming_the_count():
    with pytest.raises(DriftInputError, match=r"reference window of 'job' has 3 entities; at least 20"):
        check_comparable(_set(np.ones((3, 4))), _set(np.ones((30, 4)), window="current"), min_entities=20)


def test_different_dimensions_are_an_error_naming_both():
    with pytest.raises(DriftInputError, match="different dimensions: reference 384, current 768"):
        check_comparable(_set(np.ones((5, 384))), _set(np.ones((5, 768)), window="current"))


@pytest.mark.parametrize(
    "field, ref_value, cur_value",
    [
        ("model_version", "3", "4"),
        ("base_model", "minilm", "qwen2.5-0.5b"),
        ("templates_version", "v1/plain", "v2/plain"),
    ],
)
def test_reference_from_another_model_is_an_error_naming_the_field(field, ref_value, cur_value):
    ref = _set(np.ones((5, 4)), **{field: ref_value})
    cur = _set(np.ones((5, 4)), window="current", **{field: cur_value})
    with pytest.raises(DriftInputError, match=f"{field} is '{ref_value}' in the reference and '{cur_value}'"):
        check_comparable(ref, cur)


def test_non_finite_vector_names_row_and_id():
    v = np.ones((4, 3), dtype=np.float32)
    v[2, 1] = np.nan
    with pytest.raises(DriftInputError, match=r"row 2 \(id 'r2'\) has a non-finite value"):
        _set(v)


def test_ids_and_vectors_must_agree_and_vectors_be_2d():
    with pytest.raises(DriftInputError, match="3 ids but 2 vectors"):
        EmbeddingSet("job", ["a", "b", "c"], np.ones((2, 4)), "1", "m", "v1")
    with pytest.raises(DriftInputError, match=r"2-D \(N, D\) array, got shape \(4,\)"):
        EmbeddingSet("job", ["a"] * 4, np.ones(4), "1", "m", "v1")
    with pytest.raises(DriftInputError, match="entity_type must be one of"):
        EmbeddingSet("company", ["a"], np.ones((1, 4)), "1", "m", "v1")


def test_frame_round_trip_keeps_vectors_and_provenance():
    rng = np.random.default_rng(0)
    sets = [_set(rng.normal(size=(6, 4))), _set(rng.normal(size=(3, 4)), window="current")]
    back = from_frame(to_frame(sets))
    assert set(back) == {("job", "reference"), ("job", "current")}
    for s in sets:
        b = back[("job", s.window)]
        np.testing.assert_array_equal(b.vectors, s.vectors)
        assert list(b.ids) == list(s.ids)
        assert b.provenance() == s.provenance()


def test_frame_mixing_two_models_in_one_window_is_an_error():
    df = pd.concat([to_frame([_set(np.ones((2, 4)))]), to_frame([_set(np.ones((2, 4)), model_version="9")])])
    with pytest.raises(DriftInputError, match=r"reference window of 'job' mixes model_version values \['3', '9'\]"):
        from_frame(df)


def test_config_rejects_impossible_thresholds():
    with pytest.raises(ValueError, match="model_threshold"):
        MonitorConfig(model_threshold=0.4)
    with pytest.raises(ValueError, match="sample_size"):
        MonitorConfig(sample_size=1)


# ---- Evidently on real MiniLM embeddings ------------------------------------------------------------

ROLES = ["data engineer", "backend developer", "accountant", "sales manager", "teacher", "product designer"]
OTHER_ROLES = ["registered nurse", "truck driver", "paralegal", "pharmacist", "warehouse picker", "surgeon"]
CITIES = ["Berlin", "Paris", "Madrid", "Rome", "Lisbon", "Vienna"]
SKILLS = ["python", "sql", "excel", "negotiation", "figma", "spark", "communication", "budgeting"]


def _job_texts(roles: list[str], n: int, seed: int) -> list[str]:
    r = np.random.default_rng(seed)
    return [
        f"Job: {r.choice(roles)} at Company {r.integers(1000)}\nLocation: {r.choice(CITIES)}\n"
        f"Skills: {', '.join(r.choice(SKILLS, 3, replace=False))}"
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def job_windows(minilm):
    """Reference, an unshifted current window, and a current window of other roles (120 jobs each)."""
    ref = _set(minilm.encode(_job_texts(ROLES, 120, 1)))
    same = _set(minilm.encode(_job_texts(ROLES, 120, 2)), window="current")
    shifted = _set(minilm.encode(_job_texts(OTHER_ROLES, 120, 3)), window="current")
    return ref, same, shifted


def test_same_distribution_is_not_drift_and_other_roles_are(job_windows):
    ref, same, shifted = job_windows
    calm = detect_drift(ref, same, MonitorConfig(), report=False)
    moved = detect_drift(ref, shifted, MonitorConfig(), report=False)
    assert [s.method for s in calm.scores] == ["model", "mmd"]
    assert not calm.drifted and calm.primary.score < 0.65
    assert moved.drifted and moved.primary.score > 0.9
    assert moved.scores[1].drifted  # MMD agrees
    assert moved.stats.centroid_cosine_distance > 5 * calm.stats.centroid_cosine_distance


def test_mmd_can_decide_and_second_opinion_can_be_off(job_windows):
    ref, _, shifted = job_windows
    r = detect_drift(ref, shifted, MonitorConfig(method="mmd", second_opinion="none"), report=False)
    assert [s.method for s in r.scores] == ["mmd"] and r.drifted


def test_sampling_caps_the_rows_sent_to_evidently(job_windows):
    ref, same, _ = job_windows
    r = detect_drift(ref, same, MonitorConfig(sample_size=50), report=False)
    assert (r.n_reference, r.n_current, r.n_sampled_reference, r.n_sampled_current) == (120, 120, 50, 50)


def test_report_gives_the_same_scores_and_an_html_page(job_windows):
    ref, _, shifted = job_windows
    cfg = MonitorConfig(sample_size=60)
    direct = detect_drift(ref, shifted, cfg, report=False)
    reported = detect_drift(ref, shifted, cfg, report=True)
    assert [s.score for s in reported.scores] == pytest.approx([s.score for s in direct.scores])
    html = render_html([reported])
    assert html.lstrip().lower().startswith("<html") or "<!doctype html" in html[:200].lower()
    assert "Drift in embeddings" in html and "centroid cosine distance" in html


# ---- the alert ---------------------------------------------------------------------------------


def test_alert_fails_with_the_numbers_or_only_warns(job_windows):
    ref, same, shifted = job_windows
    results = [detect_drift(ref, same, report=False), detect_drift(ref, shifted, report=False)]
    with pytest.raises(DriftAlert) as err:
        check_alert(results, MonitorConfig(alert="fail"))
    msg = str(err.value)
    assert "1 of 2 entity type(s)" in msg
    assert f"{results[1].primary.score:.4f} > threshold 0.65" in msg
    assert "centroid cosine distance" in msg and "120 reference vs 120 current" in msg
    with pytest.warns(UserWarning, match="embedding drift detected"):
        messages = check_alert(results, MonitorConfig(alert="warn"))
    assert len(messages) == 1
    assert check_alert(results[:1], MonitorConfig(alert="fail")) == []
