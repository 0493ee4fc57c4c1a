"""The ranker's report leads with the answer, rounds every number and embeds its calibration plot."""

import base64

import pytest

from jude.ranker.report import headline, records, render_html
from jude.ranker.run import embedding_features, evaluate_ranker
from tests.report_structure import assert_answer_first


@pytest.fixture(scope="module")
def result(filled, ranker_rows, tiny_models):
    cfg, _ = filled
    features, _ = embedding_features(ranker_rows, cfg, tiny_models)
    return evaluate_ranker(ranker_rows, features, cfg)


def test_page_leads_with_the_answer_and_rounds_every_number(result):
    first, second = headline(result)
    assert first.startswith("Champion embeddings move apply AUC from ") and "CI" in first
    assert "served the embeddings of each impression's time" in second
    page = render_html(result, {"time_travel": {"test_member_changed": 0.123456789}})
    assert_answer_first(page, first)
    png = page.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(png).startswith(b"\x89PNG")
    for name in ("standard", "base", "champion", "champion_latest", "champion_latest_served"):
        assert f"<td>{name}</td>" in page


def test_mlflow_table_has_a_row_per_set_with_intervals(result):
    rows = records(result)
    assert [r["feature_set"] for r in rows] == [
        "standard",
        "base",
        "champion",
        "champion_latest",
        "champion_latest_served",
    ]
    assert {"apply_auc", "apply_auc_ci_low", "apply_auc_ci_high", "dismiss_to_apply_at_3_ci_high"} <= set(rows[0])
