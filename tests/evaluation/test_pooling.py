import pytest

from jude.evaluation.pooling import pool_pairs, pooled_relevance
from jude.evaluation.retrieval import EvalSet, EvaluationError, ranking_metrics
from jude.labels.rubric import RubricJudge
from tests.evaluation.table_judge import TableJudge


def _set():
    queries = {q: {"member_id": q} for q in ("q1", "q2")}
    corpus = {j: {"job_id": j} for j in "abcdefg"}
    # the label budget judged only 'a' for q1 and 'e' for q2
    return EvalSet(queries=queries, corpus=corpus, relevant={"q1": {"a": 2}, "q2": {"e": 3}})


RUNS = {
    "base": {"q1": {"a": 0.9, "b": 0.8, "c": 0.1}, "q2": {"e": 0.9, "f": 0.5}},
    "finetuned": {"q1": {"d": 0.9, "a": 0.8, "b": 0.7}, "q2": {"g": 0.9, "e": 0.8}},
}


def test_pool_is_the_union_of_each_runs_top_k_without_known_pairs():
    pairs = pool_pairs(RUNS, depth=2, skip={"q1": {"a": 2}, "q2": {"e": 3}})
    assert sorted(pairs) == [("q1", "b"), ("q1", "d"), ("q2", "f"), ("q2", "g")]
    assert len(pool_pairs(RUNS, depth=2)) == len(set(pool_pairs(RUNS, depth=2)))  # each pair once


def test_pooled_judgements_correct_the_bias_towards_the_labelled_model():
    es = _set()
    judge = TableJudge({("q1", "d"): 3, ("q1", "b"): 1, ("q2", "g"): 2})
    pool = pooled_relevance(es, RUNS, judge, depth=2, relevant_grade=2)
    assert pool.relevant == {"q1": {"a": 2, "d": 3}, "q2": {"e": 3, "g": 2}}  # grade 1 is not relevant
    assert ("q1", "a") not in judge.seen  # known relevant pairs are not judged again
    assert pool.stats["judged_pairs"] == 4 and pool.stats["relevant_added"] == 2
    # on the labelled set the base model wins; on the pooled one the fine-tuned model does
    base_l, ft_l = (ranking_metrics(RUNS[v], es.relevant)["ndcg_at_10"] for v in ("base", "finetuned"))
    base_p, ft_p = (ranking_metrics(RUNS[v], pool.relevant)["ndcg_at_10"] for v in ("base", "finetuned"))
    assert base_l > ft_l and ft_p > base_p
    assert pool.eval_set(es).relevant == pool.relevant and pool.eval_set(es).corpus is es.corpus
    assert es.relevant == {"q1": {"a": 2}, "q2": {"e": 3}}  # the input is not modified


def test_a_failed_judgement_stays_unjudged_and_is_counted():
    pool = pooled_relevance(_set(), RUNS, TableJudge({("q1", "d"): None, ("q2", "g"): 2}), depth=2, relevant_grade=2)
    assert "d" not in pool.relevant["q1"] and pool.stats["failed"] == 1


def test_bad_input_is_named():
    es = _set()
    with pytest.raises(EvaluationError, match=r"run 'x' ranks unknown job\(s\) \['zz'\]"):
        pooled_relevance(es, {"x": {"q1": {"zz": 1.0}}}, TableJudge({}), 2, 2)
    with pytest.raises(EvaluationError, match=r"unknown query\(ies\) \['q9'\]"):
        pooled_relevance(es, {"x": {"q9": {"a": 1.0}}}, TableJudge({}), 2, 2)
    with pytest.raises(EvaluationError, match="failed on all 4 pooled pairs"):
        pooled_relevance(
            es, RUNS, TableJudge({k: None for k in [("q1", "b"), ("q1", "d"), ("q2", "f"), ("q2", "g")]}), 2, 2
        )
    with pytest.raises(ValueError, match="depth must be > 0, got 0"):
        pool_pairs(RUNS, 0)
    with pytest.raises(EvaluationError, match="no runs"):
        pool_pairs({}, 5)


def test_the_rubric_judge_grades_a_synthetic_pool():
    from jude.config import SyntheticConfig
    from jude.data.synthetic import generate_marketplace
    from jude.evaluation.retrieval import build_eval_set

    m = generate_marketplace(SyntheticConfig(n_jobs=30, n_members=5, seed=1))
    mid = m.members["member_id"].iloc[0]
    es = build_eval_set(m.jobs, m.members, {mid: {m.jobs["job_id"].iloc[0]: 2}})
    run = {mid: {j: float(-i) for i, j in enumerate(m.jobs["job_id"])}}
    pool = pooled_relevance(es, {"all": run}, RubricJudge(), depth=30, relevant_grade=2)
    assert pool.stats["judged_pairs"] == 29
    from jude.labels.rubric import rubric_grade

    expected = {j: rubric_grade(es.queries[mid], es.corpus[j]).grade for j in es.corpus}
    assert all(pool.relevant[mid].get(j) == g for j, g in expected.items() if g >= 2)
