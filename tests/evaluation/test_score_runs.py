"""score_runs: ranked rows scored as the train run scores them (evaluate_all and the quality benches share it)."""

import pytest

from jude.config import EvalConfig
from jude.evaluation.assemble import score_runs
from jude.evaluation.retrieval import EvalSet, ranking_metrics
from tests.evaluation.table_judge import TableJudge

LABELLED = {"q1": {"a": 2}, "q2": {"e": 3}}
GRADES = {("q1", "d"): 3, ("q2", "g"): 2}  # the judge knows two more relevant jobs than the labels
POOLED = {"q1": {"a": 2, "d": 3}, "q2": {"e": 3, "g": 2}}
RUNS = {
    "base": {"q1": {"a": 0.9, "b": 0.8}, "q2": {"e": 0.9, "f": 0.5}},
    "finetuned": {"q1": {"d": 0.9, "a": 0.8}, "q2": {"g": 0.9, "e": 0.8}},
}


def _set():
    return EvalSet(
        queries={q: {"member_id": q} for q in ("q1", "q2")},
        corpus={j: {"job_id": j} for j in "abcdefg"},
        relevant={q: dict(r) for q, r in LABELLED.items()},
    )


def test_the_judge_pools_only_when_the_judgements_are_pooled():
    judge = TableJudge(GRADES)
    table = score_runs(RUNS, _set(), EvalConfig(qrels="labels", pool_depth=2), 2, judge)
    assert not table.pooled and judge.seen == []
    assert table.results == {v: ranking_metrics(run, LABELLED) for v, run in RUNS.items()}
    pooled = score_runs(RUNS, _set(), EvalConfig(qrels="pooled", pool_depth=2), 2, judge)
    assert pooled.pooled and pooled.judged.relevant == POOLED
    assert pooled.results == {v: ranking_metrics(run, POOLED) for v, run in RUNS.items()}


def test_qrels_overrides_the_config_as_the_benches_ask():
    cfg = EvalConfig(qrels="labels", pool_depth=2)
    table = score_runs(RUNS, _set(), cfg, 2, TableJudge(GRADES), qrels="pooled")
    assert table.pooled and table.judged.relevant == POOLED
    assert table.labelled == {v: ranking_metrics(run, LABELLED) for v, run in RUNS.items()}
    assert cfg.qrels == "labels"  # the caller's config is left as it was
    assert not score_runs(RUNS, _set(), EvalConfig(qrels="pooled"), 2, TableJudge(GRADES), qrels="labels").pooled
    with pytest.raises(ValueError, match="qrels must be 'labels' or 'pooled'.*'judge'"):
        score_runs(RUNS, _set(), cfg, 2, qrels="judge")
