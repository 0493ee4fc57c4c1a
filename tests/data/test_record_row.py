"""record_row: a generator's row in the entity contract's column order; a field it does not know is refused."""

import pytest
from pydantic import Field

from jude.entities import Job, Member, fields_of, record_row

JOB = dict(
    job_id="J1",
    title="Nurse",
    company="Acme",
    location="Lyon, France",
    remote=False,
    seniority="mid",
    min_years=2,
    skills=["triage"],
    description="Night shifts.",
)


def test_a_row_has_the_contracts_columns_in_its_order_less_the_later_ones():
    row = record_row(Job, later=("posted_at", "updated_at"), **dict(reversed(JOB.items())))
    assert list(row) == [s.name for s in fields_of(Job) if s.name not in ("posted_at", "updated_at")]
    assert row == JOB


def test_a_missing_required_field_and_an_unknown_one_are_named():
    partial = {k: v for k, v in JOB.items() if k != "company"}
    with pytest.raises(ValueError, match=r"Job: required field\(s\) \['company', 'posted_at'\] not given"):
        record_row(Job, later=("updated_at",), **partial)
    with pytest.raises(ValueError, match=r"Member: no field\(s\) \['salary'\]"):
        record_row(Member, later=("updated_at",), member_id="M1", salary=3)


def test_a_new_optional_field_of_the_contract_needs_no_edit_in_the_generators():
    class JobWithLanguage(Job):
        language: str | None = Field(None, description="The posting's language.")

    row = record_row(JobWithLanguage, later=("posted_at", "updated_at"), **JOB)
    assert row == {**JOB, "language": None}
