"""label_report: balance, grades and relevance/engagement agreement on a hand-made example."""

from __future__ import annotations

import pandas as pd
import pytest

from jude.labels.report import label_headline, label_report, label_report_html
from tests.report_structure import assert_answer_first


def labels():
    rel = [
        ("m1", "j1", 1, 3),
        ("m1", "j2", 1, 2),
        ("m2", "j1", 0, 1),
        ("m2", "j2", 0, 0),
        ("m3", "j1", 0, 0),
        ("m3", "j3", 1, 3),
    ]  # m3/j3 has no engagement label
    eng = [
        ("m1", "j1", 1, 3),
        ("m1", "j2", 0, 0),
        ("m2", "j1", 0, 0),
        ("m2", "j2", 0, 0),
        ("m3", "j1", 1, 3),
        ("m4", "j4", 1, 3),
    ]  # m4/j4 has no relevance label
    rows = [(m, j, lab, g, "relevance", "r") for m, j, lab, g in rel] + [
        (m, j, lab, g, "engagement", "e") for m, j, lab, g in eng
    ]
    return pd.DataFrame(rows, columns=["member_id", "job_id", "label", "grade", "source", "rationale"])


def test_balance_and_grades():
    rep = label_report(labels())
    assert rep["n_labels"] == 12
    assert rep["sources"]["relevance"] == {"n": 6, "positives": 3, "negatives": 3, "positive_rate": 0.5}
    assert rep["sources"]["engagement"]["positives"] == 3
    assert rep["grades"]["relevance"] == {"0": 2, "1": 1, "2": 1, "3": 2}
    assert rep["grades"]["engagement"] == {"0": 3, "1": 0, "2": 0, "3": 3}


def test_agreement_on_pairs_with_both_labels():
    a = label_report(labels())["agreement"]
    # 5 shared pairs: (1,1) (1,0) (0,0) (0,0) (0,1)
    assert a["n_pairs"] == 5
    assert (a["both_positive"], a["both_negative"]) == (1, 2)
    assert (a["relevance_only_positive"], a["engagement_only_positive"]) == (1, 1)
    assert a["agreement_rate"] == 0.6
    # kappa by hand: p_o = 0.6; p_e = 0.4*0.4 + 0.6*0.6 = 0.52; (0.6-0.52)/(1-0.52) = 1/6
    assert a["cohen_kappa"] == pytest.approx(1 / 6, abs=1e-4)


def test_no_shared_pairs_and_single_source():
    rel_only = labels()[lambda d: d["source"] == "relevance"]
    rep = label_report(rel_only)
    assert rep["agreement"]["n_pairs"] == 0
    assert rep["agreement"]["agreement_rate"] is None and rep["agreement"]["cohen_kappa"] is None
    assert rep["sources"]["engagement"] == {"n": 0, "positives": 0, "negatives": 0, "positive_rate": None}


def test_bad_labels_are_named():
    bad = labels()
    bad.loc[3, "source"] = "clicks"
    with pytest.raises(ValueError, match=r"column 'source', row 3"):
        label_report(bad)


def test_html_page_shows_the_numbers():
    page = label_report_html(label_report(labels()))
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    assert "<script" not in page and "http" not in page  # self-contained
    assert "Cohen&#x27;s kappa" in page and "<td>0.167</td>" in page and "<td>0.600</td>" in page


def test_concatenated_tables_with_repeated_index_are_fine():
    df = labels()
    both = pd.concat([df[df["source"] == "engagement"], df[df["source"] == "relevance"]])  # index not 0..n-1
    assert label_report(both) == label_report(df)


def test_html_page_leads_with_the_agreement_and_rounds_every_number():
    page = label_report_html(label_report(labels()))
    assert_answer_first(
        page,
        "The judge agrees with engagement on 60% of the 5 pairs that carry both labels: "
        "Cohen's kappa 0.167 (slight agreement beyond chance).",
    )
    assert "agreement.cohen_kappa: 0.1667" in page  # the raw report, collapsed, rounded


def test_headline_without_shared_pairs_says_the_judge_cannot_be_checked():
    sentence, balance = label_headline(label_report(labels()[lambda d: d["source"] == "relevance"]))
    assert sentence.startswith("No pair carries both a judged and an engagement label")
    assert balance == "6 labels: 6 judged (50% positive)."
