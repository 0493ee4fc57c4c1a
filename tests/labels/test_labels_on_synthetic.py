"""The labels path on a small synthetic marketplace: sample -> rubric judge -> engagement -> report."""

from __future__ import annotations

import pandas as pd

from jude.config import LabelConfig, SyntheticConfig
from jude.data.schema import LABELS
from jude.data.synthetic import generate_marketplace
from jude.labels.engagement import engagement_labels
from jude.labels.report import label_report, label_report_html
from jude.labels.rubric import RubricJudge
from jude.labels.sampling import judge_pairs, sample_pairs


def test_rubric_labels_agree_with_engagement_better_than_chance():
    mp = generate_marketplace(SyntheticConfig(n_jobs=100, n_members=80, impressions_per_member=20, seed=0))
    cfg = LabelConfig(budget=400, retrieved_fraction=0.0, random_fraction=0.3, interacted_fraction=0.7)
    pairs = sample_pairs(mp.jobs, mp.members, mp.interactions, cfg)
    assert pairs.attrs["counts"] == {"retrieved": 0, "interacted": 280, "random": 120}

    relevance, stats = judge_pairs(RubricJudge(), pairs, mp.jobs, mp.members, cfg.relevant_grade)
    engagement = engagement_labels(mp.interactions, cfg)
    labels = LABELS.validate(pd.concat([relevance, engagement], ignore_index=True))
    assert stats["labels"] == 400 and stats["failed"] == 0
    assert 0 < stats["positives"] < 400

    report = label_report(labels)
    # Simulated members apply more to jobs that fit them, so the judge must agree with
    # what they did clearly better than chance.
    assert report["agreement"]["n_pairs"] > 30
    assert report["agreement"]["cohen_kappa"] > 0.2
    assert "Relevance vs engagement" in label_report_html(report)
