import pytest

from jude.modeling import templates

JOB = {
    "title": "Senior Data Engineer",
    "company": "Acme",
    "location": "Berlin, Germany",
    "remote": False,
    "seniority": "senior",
    "min_years": 5,
    "skills": ["Python", "Spark"],
    "description": "Build pipelines.",
}
PROFILE = {
    "headline": "Data engineer",
    "title": "Data Engineer",
    "location": "Berlin, Germany",
    "years_experience": 6.0,
    "skills": ["Python", "SQL"],
    "summary": "I build things.",
}


def test_job_template_carries_every_field():
    text = templates.render("job", JOB)
    for part in (
        "Senior Data Engineer",
        "Acme",
        "Berlin, Germany",
        "on-site",
        "senior",
        "5 years",
        "Python, Spark",
        "Build pipelines.",
    ):
        assert part in text


def test_instruct_style_prefixes_the_task():
    text = templates.render("profile", PROFILE, style="instruct")
    assert text.startswith("Instruct: " + templates.INSTRUCTIONS["profile"])
    assert "Query: Member: Data engineer" in text


def test_unknown_entity_type_names_it():
    with pytest.raises(templates.TemplateError, match="'company'"):
        templates.render("company", JOB)


def test_missing_field_is_named():
    record = dict(JOB)
    del record["min_years"]
    with pytest.raises(templates.TemplateError, match="min_years"):
        templates.render("job", record)


def test_render_many_matches_render():
    import pandas as pd

    df = pd.DataFrame([JOB, {**JOB, "title": "Data Analyst"}])
    assert templates.render_many("job", df) == [
        templates.render("job", JOB),
        templates.render("job", {**JOB, "title": "Data Analyst"}),
    ]
