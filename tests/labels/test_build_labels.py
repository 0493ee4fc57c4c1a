"""build_labels: the one label recipe (sample, judge, engagement, concat) and the stats it reports."""

from __future__ import annotations

import pandas as pd
from pandas.testing import assert_frame_equal

from jude.config import LabelConfig
from jude.labels.build import build_labels
from jude.labels.engagement import engagement_labels
from jude.labels.judges import Judge, Judgement
from jude.labels.rubric import RubricJudge
from jude.labels.sampling import judge_pairs, sample_pairs

CFG = LabelConfig(budget=300, retrieved_fraction=0.0, random_fraction=0.6, interacted_fraction=0.4, seed=5)


class EveryOtherFails(Judge):
    """Grade 3 for even pairs; odd pairs fail (a judge with errors, to check what is counted)."""

    name = "every-other"

    def grade_pairs(self, pairs):
        return [Judgement(3, "fits") if i % 2 == 0 else Judgement(None, error="timeout") for i in range(len(pairs))]


def test_the_table_is_the_judged_pairs_then_the_engagement_labels(small_market):
    m = small_market
    built = build_labels(m.jobs, m.members, m.interactions, CFG)

    sampled = sample_pairs(m.jobs, m.members, m.interactions, CFG, rng_seed=CFG.seed)
    judge = RubricJudge(CFG.judge_errors)  # the judge CFG names, its seeded mistakes included
    relevance, judge_stats = judge_pairs(judge, sampled, m.jobs, m.members, CFG.relevant_grade)
    engagement = engagement_labels(m.interactions, CFG)
    assert_frame_equal(built.table, pd.concat([relevance, engagement], ignore_index=True))
    assert_frame_equal(built.relevance.reset_index(drop=True), relevance)
    assert built.stats == {
        **judge_stats,
        "pairs_sampled": 300,
        "relevance": len(relevance),
        "engagement": len(engagement),
    }
    assert built.stats["judge"] == "rubric" and built.stats["origins"] == {"interacted": 120, "random": 180}
    assert len(built.table) == built.stats["relevance"] + built.stats["engagement"] and built.stats["engagement"] > 0


def test_candidates_feed_the_retrieved_share_and_the_given_judge_grades(small_market):
    m = small_market
    members, jobs = m.members["member_id"].tolist(), m.jobs["job_id"].tolist()
    candidates = {mid: jobs[i % 7 : i % 7 + 5] for i, mid in enumerate(members)}
    cfg = CFG.model_copy(update={"retrieved_fraction": 0.5, "random_fraction": 0.3, "interacted_fraction": 0.2})
    built = build_labels(m.jobs, m.members, m.interactions, cfg, candidates=candidates, judge=EveryOtherFails())

    assert built.stats["origins"] == {"retrieved": 150, "random": 90, "interacted": 60}
    assert built.stats["judge"] == "every-other"  # the judge's own name, not cfg.judge
    assert built.stats["pairs_sampled"] == 300 and built.stats["failed"] == 150 and built.stats["relevance"] == 150
    relevance = built.table[built.table["source"] == "relevance"]
    assert len(relevance) == 150 and (relevance["grade"] == 3).all() and (relevance["label"] == 1).all()
