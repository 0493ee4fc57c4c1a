"""The bootstrap's HTML report leads with the counts that matter."""

from jude.bootstrap.backfill import BootstrapReport
from jude.bootstrap.report import bootstrap_html


def test_report_headline_names_entities_inferences_and_the_saving():
    r = BootstrapReport("jude-embedder-2", ["job"], rows=600, entities=100, distinct_texts=120, inferences=100)
    r.seconds = 4.0
    html = bootstrap_html(r.to_dict())
    assert "100 entities bootstrapped into jude-embedder-2 with 100 inferences (6.0x fewer than the 600 rows" in html
    assert "25.0 entities/s" in html and "<svg" in html and "skipped as stored" in html
