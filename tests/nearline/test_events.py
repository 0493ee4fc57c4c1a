"""The change event: parsing from the wire, errors that name the field and value, the text it embeds."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from jude.modeling.templates import REQUIRED_FIELDS, render
from jude.nearline.events import (
    FIELD_TYPES,
    SCHEMA_PATH,
    ChangeEvent,
    EventError,
    event_schema,
    event_text,
    parse_event,
    schema_json,
)

JOB_FIELDS = {
    "title": "Data Engineer",
    "company": "Acme",
    "location": "Berlin",
    "remote": True,
    "seniority": "senior",
    "min_years": 5,
    "skills": ["Spark", "Kafka"],
    "description": "Build the pipelines.",
}


def job_event(**overrides) -> dict:
    event = {
        "entity_type": "job",
        "entity_id": "j-1",
        "op": "upsert",
        "event_time": "2024-05-01T12:00:00Z",
        "fields": dict(JOB_FIELDS),
    }
    event.update(overrides)
    return event


def test_parses_bytes_text_and_dict_alike():
    raw = job_event()
    from_dict = parse_event(raw)
    assert parse_event(json.dumps(raw)) == from_dict
    assert parse_event(json.dumps(raw).encode("utf-8")) == from_dict
    assert from_dict.entity_type == "job" and from_dict.entity_id == "j-1" and from_dict.op == "upsert"


def test_wire_round_trip():
    event = parse_event(job_event(event_time="2024-05-01T14:00:00.250+02:00"))
    assert parse_event(event.model_dump_json().encode()) == event


def test_event_time_is_utc_truncated_to_milliseconds():
    event = parse_event(job_event(event_time="2024-05-01T14:00:00.123456+02:00"))
    assert event.event_time == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=timezone.utc)
    assert event.event_time_ms == 1714564800123


def test_event_time_ms_before_the_epoch_is_exact():
    assert parse_event(job_event(event_time="1969-12-31T23:59:59.999Z")).event_time_ms == -1


@pytest.mark.parametrize(
    "raw, field, value",
    [
        (b"\xff\xfe{}", "<event>", b"\xff\xfe{}"),
        ('{"entity_type": "job",', "<event>", '{"entity_type": "job",'),
        ("[1, 2]", "<event>", [1, 2]),
        (job_event(entity_type="company"), "entity_type", "company"),
        (job_event(op="update"), "op", "update"),
        (job_event(entity_id=""), "entity_id", ""),
        (job_event(entity_id=42), "entity_id", 42),
        (job_event(event_time="yesterday"), "event_time", "yesterday"),
        (job_event(event_time="2024-05-01T12:00:00"), "event_time", "2024-05-01T12:00:00"),  # no timezone
        (job_event(event_time=1714564800000), "event_time", 1714564800000),  # seconds or ms? refused
        (job_event(event_time="1714564800"), "event_time", "1714564800"),
        ({k: v for k, v in job_event().items() if k != "event_time"}, "event_time", "<missing>"),
        (job_event(fields=None), "fields", None),
        (job_event(fields={**JOB_FIELDS, "remote": "sometimes"}), "fields.remote", "sometimes"),
        (job_event(fields={**JOB_FIELDS, "min_years": "five"}), "fields.min_years", "five"),
        (job_event(fields={**JOB_FIELDS, "min_years": -2}), "fields.min_years", -2),
        (job_event(fields={**JOB_FIELDS, "skills": [1, 2]}), "fields.skills", [1, 2]),
        (job_event(fields={**JOB_FIELDS, "title": None}), "fields.title", None),
        (job_event(fields={**JOB_FIELDS, "description": 3}), "fields.description", 3),
    ],
)
def test_bad_events_name_the_field_and_value(raw, field, value):
    with pytest.raises(EventError) as info:
        parse_event(raw)
    assert info.value.field == field
    assert info.value.value == value
    assert f"'{field}'" in str(info.value) and repr(value)[:50] in str(info.value)


def test_wrong_type_in_another_entitys_field_is_ignored():
    # 'remote' is not a profile template field: it is an extra field, kept as is.
    fields = {"headline": "h", "title": "t", "location": "l", "years_experience": 3, "skills": "a", "summary": "s"}
    event = parse_event(job_event(entity_type="profile", fields={**fields, "remote": "sometimes"}))
    assert event.fields["remote"] == "sometimes"


def test_template_fields_are_normalised():
    event = parse_event(job_event(fields={**JOB_FIELDS, "remote": "false", "min_years": "5"}))
    assert event.fields["remote"] is False and event.fields["min_years"] == 5.0
    assert "(on-site)" in event_text(event)
    # 5, "5" and 5.0 are one entity: one text, so one content hash.
    assert event_text(event) == event_text(parse_event(job_event(fields={**JOB_FIELDS, "remote": False})))


def test_numpy_values_from_parquet_rows_are_accepted():
    fields = {**JOB_FIELDS, "skills": np.array(["Spark", "Kafka"]), "min_years": np.int64(5), "remote": np.bool_(True)}
    event = parse_event(job_event(fields=fields))
    assert event.fields["skills"] == ["Spark", "Kafka"] and event.fields["min_years"] == 5.0
    assert event_text(event) == event_text(parse_event(job_event()))


def test_event_text_is_the_training_template():
    event = parse_event(job_event())
    assert event_text(event) == render("job", JOB_FIELDS)
    assert event_text(event, style="instruct") == render("job", JOB_FIELDS, style="instruct")


def test_extra_fields_do_not_change_the_text():
    with_extra = parse_event(job_event(fields={**JOB_FIELDS, "views": 1234, "recruiter_note": "call back"}))
    assert with_extra.fields["views"] == 1234
    assert event_text(with_extra) == event_text(parse_event(job_event()))


def test_event_text_names_a_missing_template_field():
    fields = {k: v for k, v in JOB_FIELDS.items() if k != "company"}
    event = parse_event(job_event(fields=fields))  # parses: a partial event is only wrong when rendered
    with pytest.raises(EventError) as info:
        event_text(event)
    assert info.value.field == "fields.company" and "company" in str(info.value)


def test_a_delete_needs_no_fields_and_has_no_text():
    event = parse_event(
        {"entity_type": "resume", "entity_id": "m-1", "op": "delete", "event_time": "2024-05-01T00:00Z"}
    )
    assert event.fields == {}
    with pytest.raises(EventError) as info:
        event_text(event)
    assert info.value.field == "op"


def test_unknown_style_is_an_event_error():
    with pytest.raises(EventError) as info:
        event_text(parse_event(job_event()), style="fancy")
    assert info.value.field == "style"


def test_every_template_field_has_a_type():
    for entity_type, names in REQUIRED_FIELDS.items():
        assert set(names) <= set(FIELD_TYPES), entity_type


def test_marketplace_rows_parse_and_render_like_training(small_market):
    """Events built from the entity tables (numpy values, Timestamps) template exactly as training does."""
    jobs = small_market.jobs.head(5).to_dict("records")
    members = small_market.members.head(5).to_dict("records")
    cases = [("job", r["job_id"], r) for r in jobs]
    cases += [(t, r["member_id"], r) for r in members for t in ("profile", "resume")]
    for entity_type, entity_id, row in cases:
        raw = {
            "entity_type": entity_type,
            "entity_id": entity_id,
            "op": "upsert",
            "event_time": row["updated_at"].tz_localize("UTC").isoformat(),
            "fields": row,
        }
        event = parse_event(raw)
        assert event.event_time_ms == row["updated_at"].value // 1_000_000
        assert event_text(event) == render(entity_type, row)


def test_schema_file_is_generated_from_the_model():
    """docs/change_event.schema.json is `python -m jude.nearline.events` output; regenerate it when this fails."""
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_json()
    assert json.loads(schema_json()) == {
        **ChangeEvent.model_json_schema(),
        "$schema": "https://json-schema.org/draft/2020-12/schema",
    }


def test_schema_examples_validate_and_parse():
    jsonschema = pytest.importorskip("jsonschema")
    schema = event_schema()
    for example in schema["examples"]:
        jsonschema.validate(example, schema)
        parse_event(example)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(job_event(fields={**JOB_FIELDS, "remote": "yes please"}), schema)
    # 'remote' is no profile template field: the schema, like parse_event, leaves it alone there.
    jsonschema.validate(job_event(entity_type="profile", fields={"remote": "yes please"}), schema)
