from jude.config import EvalConfig
from jude.evaluation.report import comparison_figure, headline, metrics_table, render_html, variant_records
from jude.evaluation.retrieval import METRICS, EvalSet
from jude.evaluation.variants import evaluate_variants
from tests.evaluation.table_judge import TableJudge
from tests.report_structure import assert_answer_first

EVAL_SET = EvalSet(
    queries={"q1": {"member_id": "q1"}}, corpus={j: {"job_id": j} for j in "ab"}, relevant={"q1": {"a": 2}}
)
RUNS_2 = {"base": {"q1": {"a": 0.9, "b": 0.1}}, "finetuned": {"q1": {"b": 0.9, "a": 0.8}}}
RESULTS = {"base": {"ndcg_at_10": 0.2, "recall_at_100": 0.5}, "finetuned": {"ndcg_at_10": 0.3, "recall_at_100": 0.7}}


def test_table_ratio_against_base_and_best_value_in_bold():
    rows = metrics_table(RESULTS)
    assert rows[1]["ndcg_at_10_vs_base"] == 0.3 / 0.2
    page = render_html(RESULTS)
    assert "<b>0.3000</b>" in page and "1.50x" in page and "finetuned" in page


def test_labelled_table_is_shown_beside_the_pooled_one():
    labelled = {"base": {"ndcg_at_10": 0.4}, "finetuned": {"ndcg_at_10": 0.44}}
    page = render_html(RESULTS, labelled=labelled)
    assert "before pooling" in page and "1.10x" in page and "1.50x" in page
    assert "before pooling" not in render_html(RESULTS)


def test_report_leads_with_the_answer_and_rounds_every_number():
    results = {
        "base": {"ndcg_at_10": 0.2543219876, "recall_at_10": 0.31, "recall_at_100": 0.7, "mrr_at_10": 0.3},
        "finetuned": {"ndcg_at_10": 0.4121987654, "recall_at_10": 0.45, "recall_at_100": 0.8, "mrr_at_10": 0.5},
    }
    context = {"qrels": "pooled", "relevant_per_query": 2.9423076923076925, "pool_depth": 20}
    page = render_html(results, context=context, labelled=RESULTS, n_queries=52)
    answer = "Fine-tuned nDCG@10 is 1.62x the base model's (0.412 vs 0.254) on pooled judge judgements"
    assert_answer_first(page, answer + " (52 test members).")
    assert "relevant_per_query: 2.9423" in page and "pool_depth: 20" in page
    assert "<b>0.4122</b>" in page  # the best nDCG@10, rounded to 4 decimals


def test_headline_names_the_truth_and_falls_back_to_the_best_variant():
    assert headline(RESULTS, "labelled judgements").startswith("Fine-tuned nDCG@10 is 1.50x the base model's")
    assert headline(RESULTS, "labelled judgements").endswith("on labelled judgements.")
    seeds = {"seed0": {"ndcg_at_10": 0.2}, "seed1": {"ndcg_at_10": 0.25}}
    best = "Best nDCG@10: seed1 at 0.250 on labelled judgements (3 test members)."
    assert headline(seeds, "labelled judgements", 3) == best


def test_headline_names_the_distilled_student_beside_the_fine_tuned_model():
    results = {"base": {"ndcg_at_10": 0.3}, "finetuned": {"ndcg_at_10": 0.45}, "distilled": {"ndcg_at_10": 0.72}}
    sentence = headline(results, "the truth", 104)
    assert sentence == (
        "Fine-tuned nDCG@10 is 1.50x the base model's (0.450 vs 0.300); distilled 2.40x (0.720) "
        "on the truth (104 test members)."
    )


def test_mlflow_records_and_figure_hold_every_variant_on_each_truth():
    pooled = EvalConfig(qrels="pooled", pool_depth=2)
    table = evaluate_variants(RUNS_2, EVAL_SET, TableJudge({("q1", "b"): 3}), pooled, relevant_grade=2)
    records = variant_records(table)
    assert [(r["variant"], r["truth"]) for r in records] == [
        ("base", "pooled"),
        ("finetuned", "pooled"),
        ("base", "labelled"),
        ("finetuned", "labelled"),
    ]
    assert set(records[0]) == {"variant", "truth", *METRICS}
    fig = comparison_figure(table)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["nDCG@10", "recall@10", "recall@100", "MRR@10"]
    assert len(fig.axes[0].patches) == 2 * len(METRICS)  # one bar per variant and metric


def test_the_truths_table_shows_each_interval_it_is_given_and_only_those():
    truths = {"truth": {"base": {"ndcg_at_10": 0.25}, "finetuned": {"ndcg_at_10": 0.35}}}
    intervals = {
        "finetuned/ndcg_at_10_ci_low": 0.21,  # the judge's truth has no prefix
        "finetuned/ndcg_at_10_ci_high": 0.39,
        "truth/finetuned/ndcg_at_10_ci_low": 0.301,
        "truth/finetuned/ndcg_at_10_ci_high": 0.402,
        "truth/base/ndcg_at_10_ci_low": 0.2,  # one end only: not shown
    }
    page = render_html(RESULTS, labelled=RESULTS, truths=truths, intervals=intervals)
    assert "0.3000 [0.210, 0.390]" in page and "0.3500 [0.301, 0.402]" in page
    assert "0.2500 [" not in page and "0.2000 [" not in page
    assert "95 % bootstrap interval over the test members" in page
    assert "bootstrap interval" not in render_html(RESULTS, labelled=RESULTS, truths=truths)
