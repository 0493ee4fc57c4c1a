"""The truths beside the judge's: truth (latent fit), applies, the unseen world; their keys and closures."""

import pytest

from jude.config import DataConfig, EvalConfig
from jude.evaluation.report import render_variants, variant_records, variants_headline
from jude.evaluation.retrieval import METRICS, EvalSet, EvaluationError, ranking_metrics
from jude.evaluation.truths import NO_LATENT_FIT, applies_relevance, attach_truths
from jude.evaluation.variants import evaluate_variants, rank_variants
from tests.evaluation.table_judge import TableJudge
from tests.evaluation.test_variants import GRADES, POOLED_CFG, RUNS, _set
from tests.report_structure import assert_answer_first

SMALL_EVAL = EvalConfig(max_queries=30, unseen_jobs=80, unseen_members=40)


@pytest.fixture(scope="module")
def test_set(small_market, split):
    m = small_market
    return attach_truths(split.test, m.jobs, m.members, m.interactions, split.t_test, DataConfig(), SMALL_EVAL)


def test_truths_cover_the_test_queries_and_the_unseen_world_is_its_own_set(small_market, split, test_set):
    assert set(test_set.truths) == {"truth", "applies"} and not test_set.absent
    assert set(test_set.truths["truth"]) == set(split.test.queries) == set(test_set.truths["applies"])
    apply = small_market.interactions
    apply = apply[(apply["action"] == "apply") & (apply["ts"] >= split.t_test)]
    expected = {(m, j) for m, j in zip(apply["member_id"], apply["job_id"]) if m in split.test.queries}
    assert {(m, j) for m, r in test_set.truths["applies"].items() for j in r} == expected
    assert all(g >= 2 for r in test_set.truths["truth"].values() for g in r.values())
    unseen = test_set.unseen
    assert unseen is not None and 0 < len(unseen.queries) <= 30 and len(unseen.corpus) == 80
    assert not set(unseen.corpus) & set(split.test.corpus) and all(unseen.relevant.values())


def test_user_data_has_applies_but_no_truth_and_says_why(small_market, split):
    m = small_market
    files = DataConfig(source="files", path="/data")
    es = attach_truths(split.test, m.jobs, m.members, m.interactions, split.t_test, files, SMALL_EVAL)
    assert set(es.truths) == {"applies"} and es.unseen is None
    assert es.absent["truth"] == NO_LATENT_FIT and "unseen" in es.absent
    table = evaluate_variants({"base": {}, "finetuned": {}}, es, None, EvalConfig(qrels="labels"), 2)
    assert not any(k.startswith(("truth/", "unseen/")) for k in table.flat_metrics())
    page = render_variants(table)
    assert "absent" in page and "no latent fit" in page


def test_eval_set_with_truths_round_trips_and_old_dicts_still_load(test_set):
    back = EvalSet.from_dict(test_set.to_dict())
    assert back == test_set
    old = {k: v for k, v in test_set.to_dict().items() if k not in ("truths", "absent", "unseen")}
    plain = EvalSet.from_dict(old)
    assert plain.truths == {} and plain.unseen is None and plain.relevant == test_set.relevant


def test_every_variant_is_scored_on_every_truth_with_the_tiny_model(tiny_bert_dir, test_set):
    """What evaluate_retrieval logs: the judge's keys, and truth/, applies/, unseen/ for every variant."""
    from jude.config import ModelConfig
    from jude.modeling.embedder import Embedder

    tiny = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=48))
    runs, unseen_runs = rank_variants({"base": tiny, "finetuned": tiny}, test_set, k=100, batch_size=32)
    assert set(unseen_runs["base"]) == set(test_set.unseen.queries)
    table = evaluate_variants(runs, test_set, None, EvalConfig(qrels="labels"), 2, unseen_runs=unseen_runs)
    flat = table.flat_metrics()
    for truth in ("truth", "applies", "unseen"):
        for variant in ("base", "finetuned"):
            for name in METRICS:
                assert 0.0 <= flat[f"{truth}/{variant}/{name}"] <= 1.0
        assert f"{truth}/finetuned_vs_base_ndcg_ratio" in flat or flat[f"{truth}/base/ndcg_at_10"] == 0
    assert flat["truth/base/ndcg_at_10"] == ranking_metrics(runs["base"], test_set.truths["truth"])["ndcg_at_10"]
    assert table.truth_queries["unseen"] == len(test_set.unseen.queries)
    assert {r["truth"] for r in variant_records(table)} == {"labelled", "truth", "applies", "unseen"}


def _with_truths(runs_truth):
    es = _set()
    es.truths = {"truth": runs_truth}
    return es


def test_gap_closure_only_where_the_teacher_leads_else_the_raw_deltas():
    # under this truth only 'b' (q1) and 'f' (q2) are relevant: the fine-tuned model ranks both first, the
    # teacher does not, so the closure is undefined there while it is defined on the judge's pooled set
    es = _with_truths({"q1": {"b": 2}, "q2": {"f": 3}})
    table = evaluate_variants(RUNS, es, TableJudge(GRADES), POOLED_CFG, relevant_grade=2)
    flat = table.flat_metrics()
    assert 0 < flat["distill_gap_closure"] < 1
    assert "truth/distill_gap_closure" not in flat
    ndcg = {v: m["ndcg_at_10"] for v, m in table.truths["truth"].items()}
    assert flat["truth/teacher_vs_finetuned_delta"] == ndcg["teacher"] - ndcg["finetuned"] < 0
    assert flat["truth/distill_vs_finetuned_delta"] == ndcg["distilled"] - ndcg["finetuned"]
    notes = table.closure_notes()
    assert notes["judge"].startswith("gap closure 0.") and "undefined" in notes["truth"]
    assert "undefined: the teacher does not lead the fine-tuned model by 0.01" in render_variants(table)


def test_the_report_leads_with_the_truths_ratio_and_puts_the_truths_side_by_side():
    es = _with_truths({"q1": {"d": 3, "b": 2}, "q2": {"g": 2}})
    table = evaluate_variants(RUNS, es, TableJudge(GRADES), POOLED_CFG, relevant_grade=2)
    t = table.truths["truth"]
    ratio = t["finetuned"]["ndcg_at_10"] / t["base"]["ndcg_at_10"]
    sentence = variants_headline(table)
    assert sentence.startswith(f"Fine-tuned nDCG@10 is {ratio:.2f}x") and "generator's latent-fit truth" in sentence
    page = render_variants(table)
    assert_answer_first(page, sentence)
    first_table = page[page.index("<table") : page.index("</table>")]
    assert "judge nDCG@10" in first_table and "truth nDCG@10" in first_table
    assert "On pooled judge judgements:" in page  # the judge's ratio under the headline


def test_unseen_runs_need_an_unseen_world():
    with pytest.raises(EvaluationError, match="no unseen world"):
        evaluate_variants(RUNS, _set(), None, EvalConfig(qrels="labels"), 2, unseen_runs={"base": {}})


def test_applies_relevance_counts_only_the_period_and_the_members_given(small_market, split):
    rel = applies_relevance(small_market.interactions, ["nobody"], split.t_test)
    assert rel == {"nobody": {}}
