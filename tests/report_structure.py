"""The shape every HTML report shares (issue 17, point 7): the answer first, numbers rounded."""

from __future__ import annotations

import html
import re

LONG_DECIMAL = re.compile(r"\d\.\d{5,}")  # a number with more than 4 decimals


def assert_answer_first(page: str, sentence: str) -> None:
    """``sentence`` is the page's headline; the headline, then the comparison table, come before any raw key
    list (which sits in a collapsed <details>); no number anywhere, the first table's included, carries more
    than 4 decimals."""
    head = page.index('<p class="headline">')
    first_table = page.index("<table", head)
    raw_keys = min(i for i in (page.find("<ul"), page.find("<li"), page.find("<details")) if i >= 0)
    assert head < first_table < page.index("</table>", first_table) < raw_keys
    assert page.index("<svg") < page.index("<details")  # the chart before the details too
    assert html.unescape(page[head : page.index("</p>", head)]).endswith(sentence)
    table = page[first_table : page.index("</table>", first_table)]
    numbers = re.findall(r"\d+(?:\.\d+)?", re.sub(r"<[^>]+>", " ", table))
    assert numbers and all(len(n.partition(".")[2]) <= 4 for n in numbers)
    assert not LONG_DECIMAL.search(page), LONG_DECIMAL.search(page)
