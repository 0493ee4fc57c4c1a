"""The drift page leads with the answer: which entity types drifted, score against threshold, then the table."""

from __future__ import annotations

from jude.monitoring.drift import DriftResult, DriftStats, MethodScore
from jude.monitoring.report import drift_headline, render_html
from tests.report_structure import assert_answer_first


def _result(entity_type: str, auc: float) -> DriftResult:
    q = {"p5": 0.912345678, "p50": 0.954321987, "p95": 0.99123456}
    return DriftResult(
        entity_type=entity_type,
        n_reference=120,
        n_current=80,
        n_sampled_reference=120,
        n_sampled_current=80,
        scores=[MethodScore("model", auc, 0.65), MethodScore("mmd", 0.0123456789, 0.1)],
        stats=DriftStats(0.0345678912, q, q, q, {**q, "p50": 0.81234567}),
        provenance={"model_version": "3", "base_model": "minilm", "templates_version": "v1/plain"},
    )


def test_page_leads_with_the_drifted_entity_types_and_rounds_every_number():
    page = render_html([_result("job", 0.912345678), _result("profile", 0.5123456)])
    expected = "Embedding drift in 1 of 2 entity types by classifier ROC AUC: job (0.912 > 0.65)."
    assert_answer_first(page, expected)
    assert "<script" not in page  # no Evidently snapshot: a plain page, no 4 MB of JavaScript


def test_headline_without_drift_names_the_closest_entity_type():
    sentence, sub = drift_headline([_result("job", 0.55), _result("profile", 0.6)])
    assert sentence == (
        "No embedding drift in 2 entity types: every classifier ROC AUC score is within its threshold "
        "(closest: profile 0.600 <= 0.65)."
    )
    assert sub.startswith("Model version 3;") and "(240 vs 160 entities)" in sub
