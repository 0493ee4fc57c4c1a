"""The evaluation table: every variant scored on the same judgements; the flat metrics the pipeline logs."""

import math

import pytest

from jude.config import EvalConfig
from jude.evaluation.report import render_variants
from jude.evaluation.retrieval import METRICS, EvalSet, ranking_metrics
from jude.evaluation.variants import MIN_TEACHER_LEAD, evaluate_variants, gap_closure
from tests.evaluation.table_judge import TableJudge

# the label budget judged only 'a' for q1 and 'e' for q2; the judge knows d (q1) and g (q2) are relevant too
LABELLED = {"q1": {"a": 2}, "q2": {"e": 3}}
GRADES = {("q1", "d"): 3, ("q1", "b"): 1, ("q2", "g"): 2}  # b is graded 1: below relevant_grade 2
POOLED = {"q1": {"a": 2, "d": 3}, "q2": {"e": 3, "g": 2}}
RUNS = {
    "base": {"q1": {"a": 0.9, "b": 0.8, "c": 0.1}, "q2": {"e": 0.9, "f": 0.5}},
    "finetuned": {"q1": {"b": 0.9, "d": 0.8, "a": 0.7}, "q2": {"f": 0.9, "g": 0.8, "e": 0.7}},
    "distilled": {"q1": {"d": 0.9, "b": 0.8, "a": 0.7}, "q2": {"f": 0.9, "g": 0.8, "e": 0.7}},
    "teacher": {"q1": {"d": 0.9, "a": 0.8, "b": 0.7}, "q2": {"g": 0.9, "e": 0.8, "f": 0.7}},
}
POOLED_CFG = EvalConfig(qrels="pooled", pool_depth=2)


def _set():
    return EvalSet(
        queries={q: {"member_id": q} for q in ("q1", "q2")},
        corpus={j: {"job_id": j} for j in "abcdefg"},
        relevant={q: dict(r) for q, r in LABELLED.items()},
    )


DISTILL_KEYS = {"distill_gap_closure", "distill_vs_finetuned_delta", "teacher_vs_finetuned_delta"}


def _keys(variants, prefix=""):
    return {f"{prefix}{v}/{m}" for v in variants for m in METRICS}


def test_pooled_flat_metrics_hold_judged_and_labelled_scores_gap_closure_and_ratios():
    table = evaluate_variants(RUNS, _set(), TableJudge(GRADES), POOLED_CFG, relevant_grade=2)
    flat = table.flat_metrics()
    assert set(flat) == _keys(RUNS) | _keys(RUNS, "labelled/") | DISTILL_KEYS | {
        "finetuned_vs_base_ndcg_ratio",
        "labelled/finetuned_vs_base_ndcg_ratio",
    }
    assert table.judged.relevant == POOLED and table.pool.stats["relevant_added"] == 2
    for v, run in RUNS.items():
        assert table.results[v] == ranking_metrics(run, POOLED)
        assert table.labelled[v] == ranking_metrics(run, LABELLED)
        assert flat[f"{v}/ndcg_at_10"] == table.results[v]["ndcg_at_10"]
        assert flat[f"labelled/{v}/ndcg_at_10"] == table.labelled[v]["ndcg_at_10"]
    # hand-checked: base finds half the pooled relevant jobs; the fine-tuned model's first hit is at rank 2
    assert flat["base/recall_at_10"] == 0.5 and flat["labelled/base/recall_at_10"] == 1.0
    assert flat["finetuned/mrr_at_10"] == 0.5 and flat["distilled/mrr_at_10"] == 0.75
    ndcg = {v: m["ndcg_at_10"] for v, m in table.results.items()}
    assert flat["distill_gap_closure"] == gap_closure(ndcg["finetuned"], ndcg["distilled"], ndcg["teacher"])
    assert 0 < flat["distill_gap_closure"] < 1
    assert flat["finetuned_vs_base_ndcg_ratio"] == ndcg["finetuned"] / ndcg["base"] > 1  # pooled: fine-tuned wins
    labelled_ratio = table.labelled["finetuned"]["ndcg_at_10"] / table.labelled["base"]["ndcg_at_10"]
    assert flat["labelled/finetuned_vs_base_ndcg_ratio"] == labelled_ratio < 1  # labelled: base wins


def test_labelled_judgements_only_log_no_labelled_keys_and_need_no_judge():
    es = _set()
    table = evaluate_variants(RUNS, es, None, EvalConfig(qrels="labels"), relevant_grade=2)
    flat = table.flat_metrics()
    assert not table.pooled and table.judged is es
    assert set(flat) == _keys(RUNS) | DISTILL_KEYS | {"finetuned_vs_base_ndcg_ratio"}
    assert flat["base/ndcg_at_10"] == 1.0 and flat["finetuned/mrr_at_10"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("dropped", ["distilled", "teacher"])
def test_gap_closure_needs_both_the_distilled_model_and_the_teacher(dropped):
    runs = {v: r for v, r in RUNS.items() if v != dropped}
    flat = evaluate_variants(runs, _set(), TableJudge(GRADES), POOLED_CFG, relevant_grade=2).flat_metrics()
    assert not DISTILL_KEYS & set(flat)
    assert not any(k.startswith((f"{dropped}/", f"labelled/{dropped}/")) for k in flat)
    assert "finetuned_vs_base_ndcg_ratio" in flat


def test_ratio_needs_base_and_finetuned():
    runs = {"seed0": RUNS["finetuned"], "seed1": RUNS["distilled"]}
    flat = evaluate_variants(runs, _set(), TableJudge(GRADES), POOLED_CFG, relevant_grade=2).flat_metrics()
    assert set(flat) == _keys(runs) | _keys(runs, "labelled/")


def test_pooling_without_a_judge_or_runs_is_refused():
    with pytest.raises(ValueError, match="eval.qrels='pooled' needs a judge"):
        evaluate_variants(RUNS, _set(), None, POOLED_CFG, relevant_grade=2)
    with pytest.raises(ValueError, match="no runs to evaluate"):
        evaluate_variants({}, _set(), TableJudge(GRADES), POOLED_CFG, relevant_grade=2)


def test_gap_closure_is_the_share_of_the_teachers_lead_recovered():
    assert gap_closure(finetuned=0.30, distilled=0.35, teacher=0.40) == pytest.approx(0.5)
    assert gap_closure(finetuned=0.30, distilled=0.28, teacher=0.40) < 0
    assert math.isnan(gap_closure(finetuned=0.30, distilled=0.35, teacher=0.29))


@pytest.mark.parametrize(("lead", "defined"), [(0.001, False), (MIN_TEACHER_LEAD - 1e-9, False), (0.05, True)])
def test_gap_closure_needs_a_teacher_lead_above_noise_and_the_deltas_are_always_logged(lead, defined):
    table = evaluate_variants(RUNS, _set(), TableJudge(GRADES), POOLED_CFG, relevant_grade=2)
    ft = table.results["finetuned"]["ndcg_at_10"]
    table.results["teacher"] = {**table.results["teacher"], "ndcg_at_10": ft + lead}
    table.results["distilled"] = {**table.results["distilled"], "ndcg_at_10": ft - 0.02}
    flat = table.flat_metrics()
    assert flat["teacher_vs_finetuned_delta"] == pytest.approx(lead)
    assert flat["distill_vs_finetuned_delta"] == pytest.approx(-0.02)
    note = table.closure_notes()["judge"]
    if defined:
        assert flat["distill_gap_closure"] == pytest.approx(-0.02 / lead)
        assert note.startswith("gap closure -0.40") and "teacher - fine-tuned nDCG@10 +0.050" in note
    else:  # a lead of 0.001 would have made the closure -20
        assert "distill_gap_closure" not in flat
        assert note.startswith("gap closure undefined: the teacher does not lead the fine-tuned model by 0.01")


def test_report_shows_pool_counts_summary_metrics_and_the_labelled_table():
    table = evaluate_variants(RUNS, _set(), TableJudge(GRADES), POOLED_CFG, relevant_grade=2)
    page = render_variants(table)
    assert "qrels: pooled" in page and "pool_judged_pairs: 4" in page and "pooled_runs" not in page
    assert f"distill_gap_closure: {round(table.flat_metrics()['distill_gap_closure'], 4)}" in page
    assert "before pooling" in page
    plain = render_variants(evaluate_variants(RUNS, _set(), None, EvalConfig(qrels="labels"), relevant_grade=2))
    assert "qrels: labels" in plain and "before pooling" not in plain and "pool_" not in plain
