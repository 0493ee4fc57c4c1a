import math

import numpy as np
import pytest

from jude.evaluation.retrieval import EvalSet, EvaluationError, ranking_metrics, search


def test_metrics_on_a_hand_checked_example():
    relevant = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}}
    run = {"q1": {"a": 0.9, "x": 0.8, "b": 0.7}, "q2": {"x": 0.9, "y": 0.8, "c": 0.7}}
    m = ranking_metrics(run, relevant)
    ndcg_q1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    ndcg_q2 = (1 / math.log2(4)) / 1
    assert m["ndcg_at_10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2, abs=1e-6)
    assert m["mrr_at_10"] == pytest.approx((1 + 1 / 3) / 2, abs=1e-6)
    assert m["recall_at_10"] == pytest.approx(1.0)


def test_a_query_the_run_misses_counts_as_zero():
    m = ranking_metrics({"q1": {"a": 1.0}}, {"q1": {"a": 1}, "q2": {"b": 1}})
    assert m["recall_at_10"] == pytest.approx(0.5)


def test_search_is_exact_inner_product():
    rng = np.random.default_rng(0)
    docs = rng.normal(size=(50, 8)).astype(np.float32)
    q = rng.normal(size=(3, 8)).astype(np.float32)
    scores, idx = search(q, docs, 5)
    expected = np.argsort(-(q @ docs.T), axis=1)[:, :5]
    assert (idx == expected).all()
    assert np.allclose(scores, np.take_along_axis(q @ docs.T, expected, 1), atol=1e-5)


def test_dimension_mismatch_is_named():
    with pytest.raises(EvaluationError, match=r"\(2, 4\).*\(3, 5\)"):
        search(np.zeros((2, 4), np.float32), np.zeros((3, 5), np.float32), 1)


def test_eval_set_round_trip_and_missing_keys():
    es = EvalSet(queries={"m": {}}, corpus={"j": {}}, relevant={"m": {"j": 2}})
    assert EvalSet.from_dict(es.to_dict()) == es
    with pytest.raises(EvaluationError, match="relevant"):
        EvalSet.from_dict({"queries": {}, "corpus": {}})
