"""The rubric judge's seeded mistakes (labels.judge_errors): how many pairs, which kinds, always the same ones."""

from __future__ import annotations

import random

import pytest

from jude.config import JudgeErrorConfig, LabelConfig
from jude.data import vocab
from jude.labels.judges import make_judge
from jude.labels.rubric import RubricJudge, rubric_grade
from tests.labels.test_judges import job, member


def _market_pairs(market, n=3000, seed=0, related=None):
    """``n`` random (member, job) record pairs; ``related``: only pairs whose roles are (True) or are not
    (False) the same, adjacent or confusable, the pairs a judge could misread."""
    rng = random.Random(seed)
    members = market.members.to_dict("records")
    jobs = market.jobs.to_dict("records")
    out = []
    while len(out) < n:
        m, j = rng.choice(members), rng.choice(jobs)
        if related is None or _related(m, j) == related:
            out.append((m, j))
    return out


def _related(m, j):
    a, b = vocab.role_family_of(m["title"]), vocab.role_family_of(j["title"])
    return vocab.family_fit(a, b) > 0 or vocab.are_confusable(a, b)


@pytest.mark.parametrize("rate", [0.1, 0.15, 0.3])
def test_errors_touch_about_the_configured_share_of_the_pairs_they_could_touch(small_market, rate):
    pairs = _market_pairs(small_market, related=True)
    judge = RubricJudge(JudgeErrorConfig(rate=rate))
    out = judge.grade_pairs(pairs)
    tagged = sum("[judge error:" in j.rationale for j in out)
    assert tagged == judge.stats.misread
    assert abs(judge.stats.misread / len(pairs) - rate) < 0.025, judge.stats.misread / len(pairs)
    changed = sum(j.grade != rubric_grade(m, jb).grade for (m, jb), j in zip(pairs, out))
    # most misreadings move the grade (a location read wrong on a same-role pair: 3 <-> 1)
    assert changed == judge.changed and 0.35 * judge.stats.misread < changed < judge.stats.misread
    modes = {j.rationale.rsplit("[judge error: ", 1)[1].rstrip("]") for j in out if "[judge error:" in j.rationale}
    assert modes == {"location", "seniority", "lookalike"}


def test_unrelated_roles_are_never_misread(small_market):
    pairs = _market_pairs(small_market, 1000, related=False)
    judge = RubricJudge(JudgeErrorConfig(rate=0.5))
    assert [j.grade for j in judge.grade_pairs(pairs)] == [0] * len(pairs) and judge.stats.misread == 0


def test_the_same_pair_gets_the_same_grade_in_any_order_batch_or_judge_instance(small_market):
    pairs = _market_pairs(small_market, 800, seed=1)
    errors = JudgeErrorConfig(rate=0.2, seed=7)
    first = [j.grade for j in RubricJudge(errors).grade_pairs(pairs)]
    order = list(range(len(pairs)))
    random.Random(3).shuffle(order)
    judge = RubricJudge(errors)
    shuffled = {}
    for start in range(0, len(order), 97):  # other batches, another order, one judge reused
        idx = order[start : start + 97]
        for i, j in zip(idx, judge.grade_pairs([pairs[i] for i in idx])):
            shuffled[i] = j.grade
    assert [shuffled[i] for i in range(len(pairs))] == first
    other_seed = [j.grade for j in RubricJudge(JudgeErrorConfig(rate=0.2, seed=8)).grade_pairs(pairs)]
    assert other_seed != first


def test_no_errors_is_the_exact_rubric(small_market):
    pairs = _market_pairs(small_market, 500)
    exact = [rubric_grade(m, j).grade for m, j in pairs]
    assert [j.grade for j in RubricJudge().grade_pairs(pairs)] == exact
    assert [j.grade for j in RubricJudge(JudgeErrorConfig(rate=0)).grade_pairs(pairs)] == exact


def test_the_pipeline_judge_errs_by_default():
    judge = make_judge(LabelConfig())
    assert isinstance(judge, RubricJudge) and judge.errors is not None and judge.errors.rate == 0.15
    assert make_judge(LabelConfig(judge_errors={"rate": 0})).errors is None


def _misread(mode, m, j):
    """The grade of a judge that makes exactly ``mode`` on this pair."""
    errors = JudgeErrorConfig(rate=0.999999, modes={"location": 0, "seniority": 0, "lookalike": 0} | {mode: 1})
    return RubricJudge(errors).grade(m, j)


def test_each_error_mode_misreads_its_fact():
    assert rubric_grade(member(), job(location="Paris, France")).grade == 1
    assert _misread("location", member(), job(location="Paris, France")).grade == 3  # elsewhere read as here
    assert _misread("location", member(), job()).grade == 1  # here read as elsewhere
    # a senior posting (5 years) read as mid (2) or lead (9): 4 years is enough, or far too little
    assert rubric_grade(member(years_experience=4), job()).grade == 2
    assert _misread("seniority", member(years_experience=4), job()).grade in (1, 3)
    # a look-alike role read as the same role; unrelated roles stay apart
    assert rubric_grade(member(title="Data Analyst"), job()).grade == 0
    assert _misread("lookalike", member(title="Data Analyst"), job()).grade == 3
    assert _misread("lookalike", member(title="Recruiter"), job()).grade == 0
    assert "[judge error: lookalike]" in _misread("lookalike", member(title="Data Analyst"), job()).rationale


def test_bad_error_modes_are_refused():
    with pytest.raises(ValueError, match="judge_errors.modes"):
        JudgeErrorConfig(modes={"location": 0, "seniority": 0, "lookalike": 0})
    with pytest.raises(ValueError):
        JudgeErrorConfig(modes={"typo": 1.0})
