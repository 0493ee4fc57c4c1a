"""The change event: one entity created, edited or deleted, as it travels on a change stream.

The contract every source, producer and processor shares (``docs/nearline.md``,
``docs/change_event.schema.json``):

- ``entity_type``: ``job`` | ``profile`` | ``resume`` (one stream / topic per type).
- ``entity_id``: the entity's id, a non-empty string (the Kafka message key).
- ``op``: ``upsert`` | ``delete``.
- ``event_time``: when the change happened at the source, ISO 8601 *with* a timezone.
  It is normalised to UTC and truncated to whole milliseconds, because both stores
  order writes by ``event_time_ms`` (int epoch milliseconds): a time that carried
  microseconds would otherwise compare differently in memory and in the stores.
- ``fields``: the entity's fields, those its template reads
  (``jude.modeling.templates.REQUIRED_FIELDS``); extra fields are kept and ignored
  by the template. A delete may leave it empty.

Template fields that are present are checked on parse against the entity contract
(``jude.entities``: the same types, bounds and vocabularies as the tables and the
serving API) and normalised (``"true"`` becomes ``True``, ``"5"`` becomes ``5``, a
numpy array of skills a list): a ``remote: "false"`` that slipped through as text would
render as remote, and the same entity sent as ``5`` or ``"5"`` must template (and hash)
the same. Missing template fields are only an error when the entity is read
(``event_entity``, ``event_text``), so a delete needs no fields.

Everything that can be wrong with an event raises :class:`EventError`, which names
the field and the value; the worker dead-letters the event with that reason.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from jude.entities import ENTITY_TYPES, RECORDS, Record, template_specs
from jude.modeling.templates import REQUIRED_FIELDS, TemplateError, render

OPS = ("upsert", "delete")
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "change_event.schema.json"

_NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]


def field_types(records: tuple[type[Record], ...] = RECORDS) -> dict[str, dict[str, tuple[Any, str]]]:
    """Entity type -> template field -> (its type, the words an error uses for it), from the entity contract."""
    return {t: {s.name: (s.annotation, s.expected) for s in template_specs(t, records)} for t in ENTITY_TYPES}


# What parse_event checks a change event's template fields against: the entity contract's types.
_TYPES = field_types()
_FIELD_ADAPTERS = {t: {name: TypeAdapter(tp) for name, (tp, _) in fields.items()} for t, fields in _TYPES.items()}
# The same by field name alone (a name means the same thing in every template that reads it).
FIELD_TYPES: dict[str, tuple[Any, str]] = {name: v for fields in _TYPES.values() for name, v in fields.items()}


class EventError(ValueError):
    """A change event that cannot be processed. ``field`` and ``value`` say what was wrong.

    ``field`` is a dotted path into the event (``event_time``, ``fields.remote``) or
    ``<event>`` when the message as a whole is unreadable (not UTF-8, not JSON).
    """

    def __init__(self, field: str, value: Any, reason: str):
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"change event field '{field}': {reason} (value: {_short(value)})")


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _plain(value: Any) -> Any:
    """numpy scalars and arrays (events built from parquet rows) -> plain Python values."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "tolist"):
        return value
    return value.tolist()


class ChangeEvent(BaseModel):
    """One change to one entity, as it travels on a change stream (one JSON object, UTF-8)."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        title="ChangeEvent",
        json_schema_extra={
            "examples": [
                {
                    "entity_type": "resume",
                    "entity_id": "m-000042",
                    "op": "upsert",
                    "event_time": "2024-05-01T12:00:00.250Z",
                    "fields": {"resume_text": "Data engineer, 6 years: Spark, Kafka, Python."},
                },
                {"entity_type": "job", "entity_id": "j-000007", "op": "delete", "event_time": "2024-05-02T08:30:00Z"},
            ],
            # The types of each entity type's template fields (when present), as parse_event checks them.
            "allOf": [
                {
                    "if": {"properties": {"entity_type": {"const": entity_type}}},
                    "then": {
                        "properties": {
                            "fields": {"properties": {f: _FIELD_ADAPTERS[entity_type][f].json_schema() for f in names}}
                        }
                    },
                }
                for entity_type, names in REQUIRED_FIELDS.items()
            ],
        },
    )

    entity_type: Literal[ENTITY_TYPES] = Field(  # type: ignore[valid-type]
        ..., description="Which entity changed; one stream (Redis) or topic (Kafka) per type."
    )
    entity_id: _NonEmptyStr = Field(..., description="The entity's id; the Kafka message key.")
    op: Literal[OPS] = Field(  # type: ignore[valid-type]
        ..., description="upsert (created or edited) or delete."
    )
    event_time: AwareDatetime = Field(
        ...,
        description=(
            "When the change happened at the source: ISO 8601 with a timezone. Normalised to UTC and "
            "truncated to milliseconds; the stores order writes by it (last write wins)."
        ),
    )
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "The entity's fields. Those its template reads: job: "
            + ", ".join(REQUIRED_FIELDS["job"])
            + "; profile: "
            + ", ".join(REQUIRED_FIELDS["profile"])
            + "; resume: "
            + ", ".join(REQUIRED_FIELDS["resume"])
            + ". Extra fields are allowed and ignored; a delete may send none."
        ),
    )

    @field_validator("event_time", mode="before")
    @classmethod
    def _no_bare_numbers(cls, value: Any) -> Any:
        # pydantic would read 1700000000 as seconds or milliseconds by magnitude; an event
        # time must say what it means, so numbers (and numeric text) are refused.
        if isinstance(value, (bool, int, float)) or (isinstance(value, str) and _is_number(value)):
            raise PydanticCustomError(
                "event_time_number", "expected an ISO 8601 timestamp with a timezone, not a bare number"
            )
        return value

    @field_validator("event_time")
    @classmethod
    def _utc_ms(cls, value: datetime) -> datetime:
        value = value.astimezone(timezone.utc)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)

    @field_validator("fields", mode="before")
    @classmethod
    def _check_template_fields(cls, value: Any, info) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic reports "expected a dictionary"
        entity_type = info.data.get("entity_type")
        out = dict(value)
        for name, adapter in _FIELD_ADAPTERS.get(entity_type, {}).items():
            if name not in out:
                continue
            raw = _plain(out[name])
            try:
                out[name] = adapter.validate_python(raw)
            except ValidationError as exc:
                reason = f"expected {_TYPES[entity_type][name][1]} ({exc.errors()[0]['msg']})"
                raise PydanticCustomError(
                    "template_field", "{field}: {reason}", {"field": name, "value": out[name], "reason": reason}
                ) from None
        return out

    @property
    def event_time_ms(self) -> int:
        """``event_time`` as int epoch milliseconds: how both stores compare event times."""
        delta = self.event_time - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_event(raw: bytes | str | dict) -> ChangeEvent:
    """Parse one change event from the wire (UTF-8 JSON bytes or text) or from a dict.

    Raises :class:`EventError` naming the first field that is wrong and its value.
    """
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventError("<event>", bytes(raw), f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise EventError("<event>", raw, f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise EventError("<event>", raw, f"expected a JSON object, got {type(raw).__name__}")
    try:
        return ChangeEvent.model_validate(raw)
    except ValidationError as exc:
        raise _event_error(exc, raw) from None


def _event_error(exc: ValidationError, raw: dict) -> EventError:
    err = exc.errors()[0]
    if err["type"] == "template_field":
        ctx = err["ctx"]
        return EventError(f"fields.{ctx['field']}", ctx["value"], f"wrong type for the template: {ctx['reason']}")
    field = ".".join(str(p) for p in err["loc"]) or "<event>"
    value = raw.get(err["loc"][0], "<missing>") if err["loc"] else raw
    if err["type"] == "missing":
        return EventError(field, "<missing>", "required field is missing")
    if field == "entity_type":
        return EventError(field, value, f"unknown entity type; expected one of {list(ENTITY_TYPES)}")
    if field == "op":
        return EventError(field, value, f"unknown op; expected one of {list(OPS)}")
    if field == "event_time":
        return EventError(field, value, f"unparsable event time: {err['msg']}")
    return EventError(field, value, err["msg"])


def event_entity(event: ChangeEvent) -> dict[str, Any]:
    """The template fields of an upsert, checked on parse (every one of them present, or :class:`EventError`).

    Raises :class:`EventError` for a delete (it has no entity) or a missing template field.
    """
    if event.op != "upsert":
        raise EventError("op", event.op, "only an upsert has text to embed")
    names = REQUIRED_FIELDS[event.entity_type]
    missing = [f for f in names if f not in event.fields]
    if missing:
        raise EventError(
            f"fields.{missing[0]}",
            "<missing>",
            f"the {event.entity_type} template reads {missing}, missing from the event",
        )
    return {f: event.fields[f] for f in names}


def event_text(event: ChangeEvent, style: str = "plain") -> str:
    """The model input text of an upsert: the entity rendered by its template.

    The same ``jude.modeling.templates.render`` that training and serving use, so the
    nearline never embeds text the model was not trained on. Raises :class:`EventError`
    for a delete (it has no text), a missing template field or an unknown style.
    """
    return render_entity(event.entity_type, event_entity(event), style)


def render_entity(entity_type: str, entity: dict[str, Any], style: str) -> str:
    """``templates.render`` of an entity ``event_entity`` returned; an unknown style is an :class:`EventError`."""
    try:
        return render(entity_type, entity, style)
    except TemplateError as exc:
        raise EventError("style", style, str(exc)) from None


def event_schema() -> dict:
    """The JSON schema of a change event, generated from :class:`ChangeEvent`."""
    schema = ChangeEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def schema_json() -> str:
    """``event_schema()`` as the text of ``docs/change_event.schema.json``."""
    return json.dumps(event_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: str | Path = SCHEMA_PATH) -> Path:
    """Regenerate ``docs/change_event.schema.json`` (``python -m jude.nearline.events``)."""
    path = Path(path)
    path.write_text(schema_json(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(f"wrote {write_schema()}")
