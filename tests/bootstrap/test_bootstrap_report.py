"""The bootstrap's HTML report leads with the counts that matter."""

from jude.bootstrap.backfill import BootstrapReport
from jude.bootstrap.report import bootstrap_html
from tests.report_structure import assert_answer_first


def test_report_headline_names_entities_inferences_and_the_saving():
    r = BootstrapReport("jude-embedder-2", ["job"], rows=600, entities=100, distinct_texts=120, inferences=100)
    r.seconds = 4.0
    html = bootstrap_html(r.to_dict())
    assert "100 entities bootstrapped into jude-embedder-2 with 100 inferences (6.0x fewer than the 600 rows" in html
    assert "25.0 entities/s" in html and "<svg" in html and "skipped as stored" in html


def test_page_leads_with_the_answer_and_rounds_every_number():
    r = BootstrapReport("jude-embedder-2", ["job", "profile"], rows=903, entities=280, distinct_texts=311)
    r.inferences, r.reused_from_history, r.seconds = 296, 15, 7.123456789
    assert_answer_first(
        bootstrap_html(r.to_dict()),
        "280 entities bootstrapped into jude-embedder-2 with 296 inferences (3.1x fewer than the 903 rows selected)",
    )
