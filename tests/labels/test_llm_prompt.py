"""The judge prompt (jude.labels.judge_prompt): its messages, the constrained answer, parsing and the cache key."""

from __future__ import annotations

import json
from itertools import product

import pytest

from jude.labels.judge_prompt import (
    ANSWER_SCHEMA,
    LOCATIONS,
    PROMPT_VERSION,
    QUALIFICATIONS,
    ROLES,
    SYSTEM_PROMPT,
    build_messages,
    facts_rationale,
    grade_from_facts,
    parse_facts,
    response_format,
)
from jude.labels.llm_judge import _Malformed, cache_key, parse_answer
from jude.labels.rubric import RUBRIC, rubric_grade
from jude.modeling.templates import render


def member(**kw) -> dict:
    base = dict(
        member_id="m0",
        headline="Data person",
        title="Data Engineer",
        location="Berlin, Germany",
        years_experience=5.0,
        skills=["Python", "SQL", "Spark", "Airflow"],
        summary="Pipelines.",
    )
    return base | kw


def job(**kw) -> dict:
    base = dict(
        job_id="j0",
        title="Data Engineer",
        company="Acme",
        location="Berlin, Germany",
        remote=False,
        seniority="mid",
        min_years=3,
        skills=["Python", "SQL", "Spark", "Airflow"],
        description="Build pipelines.",
    )
    return base | kw


def test_messages_are_rubric_procedure_then_both_texts():
    system, user = build_messages(member(), job())
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert SYSTEM_PROMPT.startswith(RUBRIC) and "Procedure." in SYSTEM_PROMPT
    assert render("profile", member()) in user["content"] and render("job", job()) in user["content"]
    # The system message is the same for every pair (a server's prefix cache processes it once).
    assert build_messages(member(title="Recruiter"), job(location="Paris, France"))[0] == system


def test_schema_orders_facts_before_the_grade():
    assert list(ANSWER_SCHEMA["properties"]) == ["role", "location", "qualification", "grade"]
    assert ANSWER_SCHEMA["required"] == list(ANSWER_SCHEMA["properties"])
    assert ANSWER_SCHEMA["properties"]["grade"]["enum"] == [0, 1, 2, 3]


def test_response_format_shapes():
    assert response_format("json_schema")["json_schema"]["schema"] is ANSWER_SCHEMA
    assert response_format("json_object_schema") == {"type": "json_object", "schema": ANSWER_SCHEMA}
    assert response_format("json_object") == {"type": "json_object"}
    with pytest.raises(ValueError, match="got 'grammar'"):
        response_format("grammar")


def test_schema_answer_parses_to_grade_and_facts():
    answer = {"role": "same", "location": "does not fit", "qualification": "fully qualified", "grade": 1}
    grade, rationale = parse_answer(json.dumps(answer))
    assert grade == 1 and rationale == "role: same; location: does not fit; qualification: fully qualified"
    assert parse_facts(rationale) == {k: answer[k] for k in ("role", "location", "qualification")}
    assert parse_facts("graded 2 by the fake") is None
    # A fact outside its values is no fact: the grade still counts, the rationale stays empty.
    assert parse_answer(json.dumps(answer | {"role": "similar"})) == (1, "")
    with pytest.raises(_Malformed, match="no 'grade'"):
        parse_answer(json.dumps({k: v for k, v in answer.items() if k != "grade"}))


@pytest.mark.parametrize(
    "m, j, facts",
    [
        (member(), job(), ("same", "fits", "fully qualified")),
        (member(), job(location="Madrid, Spain"), ("same", "does not fit", "fully qualified")),
        (member(), job(location="Madrid, Spain", remote=True), ("same", "fits", "fully qualified")),
        (member(years_experience=2.0), job(), ("same", "fits", "slightly under-qualified")),
        (member(years_experience=0.0, skills=["Excel"]), job(), ("same", "fits", "clearly under-qualified")),
        (member(title="Machine Learning Engineer"), job(), ("adjacent", "fits", "fully qualified")),
        (member(title="Machine Learning Engineer"), job(min_years=9), ("adjacent", "fits", "clearly under-qualified")),
        (member(title="Data Analyst"), job(), ("different", "fits", "fully qualified")),
    ],
)
def test_grade_from_facts_is_the_rubric_combination(m, j, facts):
    assert grade_from_facts(dict(zip(("role", "location", "qualification"), facts))) == rubric_grade(m, j).grade


def test_every_fact_combination_has_a_grade_and_a_rationale():
    for role, loc, qual in product(ROLES, LOCATIONS, QUALIFICATIONS):
        facts = {"role": role, "location": loc, "qualification": qual}
        assert grade_from_facts(facts) in (0, 1, 2, 3)
        assert parse_facts(facts_rationale(facts)) == facts


def test_cache_key_holds_model_prompt_version_pair_and_format():
    msgs = build_messages(member(), job())
    fmt = response_format("json_schema")
    key = cache_key("smollm2", msgs, 0.0, PROMPT_VERSION, fmt)
    assert key == cache_key("smollm2", build_messages(member(), job()), 0.0, PROMPT_VERSION, fmt)
    assert key != cache_key("qwen2.5-0.5b", msgs, 0.0, PROMPT_VERSION, fmt)  # another judge model
    assert key != cache_key("smollm2", msgs, 0.0, "strict-v0", fmt)  # another prompt version
    assert key != cache_key("smollm2", build_messages(member(), job(location="Rome, Italy")), 0.0, PROMPT_VERSION, fmt)
    assert key != cache_key("smollm2", msgs, 0.0, PROMPT_VERSION, response_format("json_object"))


def test_the_three_questions_share_the_texts_and_map_every_allowed_answer_to_a_fact():
    from jude.labels.judge_prompt import (
        FACTS,
        QUESTIONS,
        build_question_messages,
        fact_from_answer,
        facts_rationale,
        question_schema,
    )

    asked = build_question_messages(member(), job())
    assert [fact for fact, _ in asked] == list(FACTS)
    users = [m[-1]["content"] for _, m in asked]
    assert all(render("profile", member()) in u and render("job", job()) in u for u in users)
    for fact, (_, answers) in QUESTIONS.items():
        assert question_schema(fact)["properties"]["answer"]["enum"] == list(answers)
        assert response_format("json_object_schema", question_schema(fact))["schema"] == question_schema(fact)
    # every combination of allowed answers is a valid set of the strict prompt's facts
    for role in QUESTIONS["role"][1]:
        for loc in QUESTIONS["location"][1]:
            for qual in QUESTIONS["qualification"][1]:
                facts = {f: fact_from_answer(f, a) for f, a in zip(FACTS, (role, loc, qual), strict=True)}
                assert facts_rationale(facts) is not None
    assert fact_from_answer("location", "maybe") is None and fact_from_answer("role", 1) is None
