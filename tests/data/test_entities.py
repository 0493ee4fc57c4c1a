"""The entity contract (jude.entities) and its four consumers agree, and the consumers' tables are derived from it.

The consumers: the data tables (jude.data.schema), the templates' fields (jude.modeling.templates), the change
event's field check (jude.nearline.events) and the serving API's entities (jude.serving.schemas). Each test fails
when a consumer keeps a table of its own that differs from the contract, in names, types, bounds or verdicts.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import pandas as pd
import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from jude import entities
from jude.data import schema
from jude.entities import JOB, RECORD_OF, RECORDS, FieldSpec, Job, Member, fields_of, template_specs
from jude.modeling import templates
from jude.nearline import events
from jude.serving import schemas


def _sample(spec: FieldSpec, k: int = 0) -> Any:
    """A valid value of the field; ``k`` = 0 or 1 gives two different ones."""
    if spec.choices is not None:
        return spec.choices[k]
    return {
        "str": f"{spec.name} {'ab'[k]}",
        "bool": bool(k),
        "int": int(spec.ge or 0) + 1 + k,
        "float": (spec.ge or 0) + 1.5 + k,
        "datetime": pd.Timestamp("2024-05-01 12:00") + pd.Timedelta(days=k),
        "list[str]": [f"skill {'ab'[k]}"],
    }[spec.kind]


def _record(record) -> dict[str, Any]:
    return {s.name: _sample(s) for s in fields_of(record)}


def _entity(entity_type: str, records=RECORDS) -> dict[str, Any]:
    return {s.name: _sample(s) for s in template_specs(entity_type, records)}


def _probes(spec: FieldSpec) -> list[Any]:
    """Values on and over the field's edges: the bounds, a fraction for a whole number, outside the vocabulary."""
    out: list[Any] = []
    if spec.kind in ("int", "float"):
        out += [math.nan, math.inf, "five"]
        out += [spec.ge, spec.ge - 1] if spec.ge is not None else []
        out += [spec.le, spec.le + 1] if spec.le is not None else []
        out += [2.5, 3.0] if spec.kind == "int" else ["2.5"]
    if spec.choices is not None:
        out += [spec.choices[-1], spec.choices[0].upper(), "chief"]
    if spec.kind == "str":
        out += ["", "x", 7]
    if spec.kind == "bool":
        out += ["sometimes", "false"]
    if spec.kind == "list[str]":
        out += [[1, 2], "a; b", []]
    return out


# ---- every consumer's verdict on one value --------------------------------------------------------------------
def _contract_ok(record, row: dict) -> bool:
    try:
        record.model_validate(row)
    except ValidationError:
        return False
    return True


def _table_ok(record, row: dict) -> bool:
    table = {"jobs": schema.JOBS, "members": schema.MEMBERS}[record.table]
    try:
        table.validate(pd.DataFrame([row]))
    except schema.DataValidationError:
        return False
    return True


def _event_ok(entity_type: str, fields: dict) -> bool:
    raw = {"entity_type": entity_type, "entity_id": "e-1", "op": "upsert", "event_time": "2024-05-01T12:00Z"}
    try:
        events.event_entity(events.parse_event({**raw, "fields": fields}))
    except events.EventError:
        return False
    return True


def _serving_ok(entity_type: str, fields: dict) -> bool:
    try:
        schemas.ENTITY_MODELS[entity_type].model_validate(fields)
    except ValidationError:
        return False
    return True


CASES = [(r, s, v) for r in RECORDS for s in fields_of(r) for v in _probes(s)]


@pytest.mark.parametrize("record, spec, value", CASES, ids=[f"{r.__name__}.{s.name}={v!r}" for r, s, v in CASES])
def test_every_consumer_gives_the_contracts_verdict_on_every_edge_value(record, spec, value):
    row = {**_record(record), spec.name: value}
    want = _contract_ok(record, row)
    got = {"table": _table_ok(record, row)}
    if spec.template is not None:
        fields = {**_entity(spec.template), spec.name: value}
        got["event"] = _event_ok(spec.template, fields)
        got["serving"] = _serving_ok(spec.template, fields)
    assert got == dict.fromkeys(got, want), f"the contract says {'valid' if want else 'invalid'}"


def test_the_samples_are_valid_everywhere():
    for record in RECORDS:
        assert _contract_ok(record, _record(record)) and _table_ok(record, _record(record))
    for entity_type in entities.ENTITY_TYPES:
        assert _event_ok(entity_type, _entity(entity_type)) and _serving_ok(entity_type, _entity(entity_type))


def test_min_years_is_a_whole_number_of_years_up_to_80_everywhere():
    """The disagreement that started the contract: min_years was an int in the table and a float in the API."""
    for value, ok in ((5, True), (5.0, True), (2.5, False), (80, True), (81, False), (-1, False)):
        assert _serving_ok("job", {**_entity("job"), "min_years": value}) is ok, value
        assert _event_ok("job", {**_entity("job"), "min_years": value}) is ok, value
        assert _table_ok(Job, {**_record(Job), "min_years": value}) is ok, value


# ---- the consumers' tables are the contract's -----------------------------------------------------------------
@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.table)
def test_the_table_schema_is_the_contract(record):
    table = schema.SCHEMAS[record.table]
    assert table.key == record.key
    assert [(c.name, c.kind, c.allowed, c.min_value, c.max_value, c.min_length, c.nullable) for c in table.columns] == [
        (s.name, s.kind, s.choices, s.ge, s.le, s.min_length, s.nullable) for s in fields_of(record)
    ]


def test_the_template_fields_are_the_contracts_and_every_one_is_written_into_the_text():
    assert templates.REQUIRED_FIELDS == {t: tuple(s.name for s in template_specs(t)) for t in entities.ENTITY_TYPES}
    assert _unrendered(RECORDS) == []


def _unrendered(records) -> list[str]:
    """The template fields whose value does not change the rendered text (the template does not read them)."""
    missing = []
    for entity_type in entities.ENTITY_TYPES:
        entity = _entity(entity_type, records)
        text = templates.render(entity_type, entity)
        for spec in template_specs(entity_type, records):
            if templates.render(entity_type, {**entity, spec.name: _sample(spec, 1)}) == text:
                missing.append(f"{entity_type}.{spec.name}")
    return missing


def test_the_event_field_types_are_the_contracts():
    for entity_type in entities.ENTITY_TYPES:
        specs = template_specs(entity_type)
        adapters = events._FIELD_ADAPTERS[entity_type]
        assert list(adapters) == [s.name for s in specs]
        for s in specs:
            assert adapters[s.name].json_schema() == TypeAdapter(s.annotation).json_schema(), s.name
            assert events.FIELD_TYPES[s.name][1] == s.expected


def test_the_serving_entities_are_the_contracts():
    assert set(schemas.ENTITY_MODELS) == set(entities.ENTITY_TYPES)
    for entity_type, model in schemas.ENTITY_MODELS.items():
        specs = template_specs(entity_type)
        assert list(model.model_fields) == [s.name for s in specs]
        for s in specs:
            props = model.model_json_schema()["properties"][s.name]
            contract = RECORD_OF[entity_type].model_json_schema()["properties"][s.name]
            assert {k: v for k, v in props.items() if k != "title"} == {
                k: v for k, v in contract.items() if k != "title"
            }, (entity_type, s.name)


# ---- a new field is one edit ----------------------------------------------------------------------------------
class JobWithSalary(Job):
    """The contract with one more job field the template reads, and one it does not."""

    salary: Annotated[int, JOB] = Field(ge=0, le=1_000_000, description="Yearly salary, EUR.")
    views: int = Field(ge=0, description="Page views (not in the text).")


PLUS = (JobWithSalary, Member)


def test_a_field_added_to_the_contract_reaches_every_consumer():
    """Each consumer's table is computed from the records it is given: the new field appears everywhere at once."""
    table = schema.entity_table(JobWithSalary)
    salary = next(c for c in table.columns if c.name == "salary")
    assert (salary.kind, salary.min_value, salary.max_value) == ("int", 0, 1_000_000)
    assert "views" in table.column_names

    assert entities.template_fields(PLUS)["job"] == (*templates.REQUIRED_FIELDS["job"], "salary")
    assert events.field_types(PLUS)["job"]["salary"][1] == "a whole number from 0 to 1000000"
    assert "views" not in events.field_types(PLUS)["job"]

    model = entities.entity_model("job", base=BaseModel, records=PLUS)
    assert list(model.model_fields)[-1] == "salary"
    with pytest.raises(ValidationError, match="salary"):
        model.model_validate({**_entity("job", PLUS), "salary": -1})
    # the one thing not derived is where the text puts the field; the consistency test names it
    assert _unrendered(PLUS) == ["job.salary"]


def test_the_consumers_hold_the_derived_tables_not_copies():
    assert templates.REQUIRED_FIELDS is entities.TEMPLATE_FIELDS
    assert events.field_types() == events._TYPES
    assert schema.JOBS == schema.entity_table(Job) and schema.MEMBERS == schema.entity_table(Member)
    for entity_type, model in schemas.ENTITY_MODELS.items():
        derived = entities.entity_model(entity_type, base=schemas._Body)
        assert model.model_json_schema()["properties"] == derived.model_json_schema()["properties"]


def test_a_field_type_with_no_table_kind_is_refused():
    class Odd(Job):
        shape: dict[str, int] = Field(default_factory=dict)

    with pytest.raises(TypeError, match="'shape'"):
        fields_of(Odd)
