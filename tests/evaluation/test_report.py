import math

import pytest

from jude.evaluation.report import gap_closure, metrics_table, render_html

RESULTS = {"base": {"ndcg_at_10": 0.2, "recall_at_100": 0.5}, "finetuned": {"ndcg_at_10": 0.3, "recall_at_100": 0.7}}


def test_gap_closure_is_the_share_of_the_teachers_lead_recovered():
    assert gap_closure(finetuned=0.30, distilled=0.35, teacher=0.40) == pytest.approx(0.5)
    assert gap_closure(finetuned=0.30, distilled=0.28, teacher=0.40) < 0
    assert math.isnan(gap_closure(finetuned=0.30, distilled=0.35, teacher=0.29))


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
