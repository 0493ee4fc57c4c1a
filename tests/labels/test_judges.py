"""RubricJudge: the rubric by hand, one case per rule, and determinism."""

from __future__ import annotations

import random

import pytest

from jude.config import LabelConfig
from jude.labels.judges import make_judge
from jude.labels.llm_judge import LLMJudge, build_messages
from jude.labels.rubric import RUBRIC, RubricJudge, rubric_grade
from jude.modeling.templates import render


def member(**kw):
    base = dict(
        member_id="m1",
        headline="Data engineer building pipelines",
        title="Data Engineer",
        location="Berlin, Germany",
        years_experience=6.0,
        skills=["Python", "SQL", "Apache Spark", "Airflow"],
        summary="Pipelines.",
        resume_text="CV",
    )
    return base | kw


def job(**kw):
    base = dict(
        job_id="j1",
        title="Senior Data Engineer",
        company="Acme",
        location="Berlin, Germany",
        remote=False,
        seniority="senior",
        min_years=5,
        skills=["Python", "SQL", "Apache Spark", "Kafka"],
        description="Build pipelines.",
    )
    return base | kw


@pytest.mark.parametrize(
    "m, j, grade",
    [
        # 3: same role, location fits, fully qualified (6 >= 5 years, 3/4 skills)
        (member(), job(), 3),
        (member(), job(location="Paris, France", remote=True), 3),  # remote fits any city
        (member(years_experience=5), job(skills=["Python", "SQL", "Kafka", "dbt"]), 3),  # boundaries: 5 >= 5, 50%
        (member(years_experience=30), job(), 3),  # over-qualified is not penalised
        # 2: same role, location fits, slightly under-qualified
        (member(years_experience=4), job(), 2),  # 1 year short
        (member(years_experience=3), job(), 2),  # 2 years short: still slight
        (member(skills=["Python"]), job(), 2),  # 25% of the skills
        # 1: same role but wrong location or clearly under-qualified
        (member(), job(location="Paris, France"), 1),  # on-site elsewhere
        (member(years_experience=2.5), job(), 1),  # 2.5 years short
        (member(skills=["Excel"]), job(), 1),  # 0% of the skills
        (member(years_experience=0, skills=[]), job(location="Paris, France"), 1),  # both: still 1
        # 1: adjacent role (ML Engineer ~ Data Engineer) that fits otherwise
        (member(title="Machine Learning Engineer"), job(), 1),
        # 0: adjacent role that does not fit otherwise
        (member(title="ML Engineer", years_experience=4), job(), 0),
        (member(title="ML Engineer"), job(location="Paris, France"), 0),
        # 0: different role, however well the rest fits (confusable families too)
        (member(title="Data Analyst"), job(), 0),
        (
            member(title="Sales Engineer", skills=["Java", "Go"]),
            job(title="Software Engineer", skills=["Java", "Go"]),
            0,
        ),
    ],
)
def test_rubric_grades_by_hand(m, j, grade):
    assert rubric_grade(m, j).grade == grade


def test_seniority_words_do_not_change_the_role():
    assert rubric_grade(member(title="Sr. Data Engineer II"), job(title="Lead ETL Developer")).grade == 3


def test_titles_outside_the_vocabulary_match_only_when_equal():
    assert rubric_grade(member(title="Astronaut"), job(title="astronaut")).grade == 3
    assert rubric_grade(member(title="Astronaut"), job(title="Pilot")).grade == 0


def test_rationale_names_the_deciding_facts():
    j = rubric_grade(member(years_experience=2, skills=["Python", "SQL"]), job(location="Paris, France", remote=True))
    assert j.grade == 1
    assert j.rationale == (
        "same role (Data Engineer), location fits (remote), clearly under-qualified: 2 < 5 years, skills 50%"
    )
    j = rubric_grade(member(title="Data Analyst"), job(location="Paris, France"))
    assert j.rationale.startswith(
        "different role (Data Analyst vs Data Engineer), "
        "location does not fit (Berlin, Germany vs Paris, France, on-site)"
    )
    assert "\n" not in j.rationale and j.error is None


def test_skills_may_arrive_as_csv_text():
    assert rubric_grade(member(skills="Python; SQL; Apache Spark"), job()).grade == 3


def test_missing_field_is_named():
    m = member()
    del m["years_experience"]
    with pytest.raises(ValueError, match="member record is missing field 'years_experience'"):
        rubric_grade(m, job())


def test_rubric_judge_is_deterministic_and_keeps_order():
    rng = random.Random(0)
    titles = ["Data Engineer", "Data Analyst", "ML Engineer", "Software Engineer", "Recruiter"]
    cities = ["Berlin, Germany", "Paris, France"]
    pairs = [
        (
            member(title=rng.choice(titles), location=rng.choice(cities), years_experience=rng.randint(0, 9)),
            job(
                title=rng.choice(titles),
                location=rng.choice(cities),
                remote=rng.random() < 0.3,
                min_years=rng.randint(0, 7),
            ),
        )
        for _ in range(60)
    ]
    judge = RubricJudge()
    first = judge.grade_pairs(pairs)
    again = RubricJudge().grade_pairs(pairs)
    assert first == again
    assert [j.grade for j in first] == [rubric_grade(m, jb).grade for m, jb in pairs]
    assert {j.grade for j in first} == {0, 1, 2, 3}
    assert judge.stats.pairs == judge.stats.graded == 60


def test_make_judge_picks_the_configured_judge(tmp_path):
    assert isinstance(make_judge(LabelConfig()), RubricJudge)
    cfg = LabelConfig(judge="llm", llm={"cache_dir": str(tmp_path)})
    assert isinstance(make_judge(cfg), LLMJudge)


def test_llm_prompt_states_the_same_rubric():
    m, j = member(), job()
    system, user = build_messages(m, j)
    assert system["role"] == "system" and system["content"].startswith(RUBRIC)
    assert render("profile", m) in user["content"] and render("job", j) in user["content"]
    # The thresholds RubricJudge applies are the ones the LLM reads.
    assert "years >= the minimum, and skills share >= 50%" in RUBRIC
    assert "at most 2 years short" in RUBRIC and "skills share >= 25%" in RUBRIC
    assert "Data Engineer: also Big Data Engineer" in RUBRIC
