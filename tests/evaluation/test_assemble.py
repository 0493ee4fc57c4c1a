"""The train pipeline's evaluation without ZenML: every row, every truth, the intervals and the foreign guard."""

import pytest

from jude.config import EvalConfig, ModelConfig
from jude.evaluation.assemble import evaluate_all, split_variant_runs
from jude.labels.rubric import RubricJudge
from jude.modeling.embedder import Embedder


def test_loss_variant_runs_split_by_their_unseen_prefix():
    runs, unseen = split_variant_runs({"bce": {"q": {}}, "unseen/bce": {"u": {}}, "vp": {}})
    assert runs == {"bce": {"q": {}}, "vp": {}} and unseen == {"bce": {"u": {}}}
    assert split_variant_runs(None) == ({}, {})


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir):
    return Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=64))


def test_every_row_is_scored_in_table_order_with_intervals_and_the_foreign_guard(tiny, minilm, split):
    cfg = EvalConfig(pool_depth=10)
    loss_run = {q: {j: 1.0 for j in list(split.test.corpus)[:5]} for q in split.test.queries}
    result = evaluate_all(
        {"base": tiny, "finetuned": minilm, "distilled": minilm},
        split.test,
        cfg,
        relevant_grade=2,
        judge=RubricJudge(),
        variant_runs={"bce": loss_run},
        teacher_check={"meaningful": False},
    )
    assert list(result.table.results) == ["base", "finetuned", "bce", "distilled"]
    m = result.metrics
    for v in ("base", "finetuned", "bce", "distilled"):
        assert 0.0 <= m[f"{v}/ndcg_at_10"] <= 1.0
        assert m[f"{v}/ndcg_at_10_ci_low"] <= m[f"{v}/ndcg_at_10"] <= m[f"{v}/ndcg_at_10_ci_high"]
    assert m["distillation_meaningful"] == 0.0
    # the foreign set scores the bi-encoders only (not the loss row's ranking), each against the base model
    assert {"foreign/base/pairwise_accuracy", "foreign/distilled_vs_base_delta_ci_high"} <= set(m)
    assert "foreign/bce/pairwise_accuracy" not in m
    assert m["foreign/finetuned_vs_base_delta"] == pytest.approx(
        m["foreign/finetuned/pairwise_accuracy"] - m["foreign/base/pairwise_accuracy"]
    )
    without = evaluate_all({"base": tiny, "finetuned": minilm}, split.test, cfg, 2, judge=RubricJudge(), foreign=False)
    assert not any(k.startswith("foreign/") for k in without.metrics)
    with pytest.raises(ValueError, match=r"no \['base'\] model"):
        evaluate_all({"finetuned": minilm}, split.test, cfg, 2)
