"""The entity contract: what a job and a member are, field by field, in one place.

Two records, three entity types:

- :class:`Job`, a row of the ``jobs`` table, is the entity type ``job``.
- :class:`Member`, a row of the ``members`` table, is two entity types, the member's two
  texts (either can be the query side): ``profile`` (headline, title, location, years,
  skills, summary) and ``resume`` (the resume text).

Each field says its type and bounds (pydantic: ``Field(ge=0, le=80)``, a ``Literal``
vocabulary), whether it is required, and, with a :class:`Template` marker in its
``Annotated`` type, which entity type's text template reads it. Every consumer derives
its tables from these two models instead of keeping its own copy:

========================  ==========================================================
``jude.data.schema``      ``JOBS``, ``MEMBERS``: the table columns and their checks
``jude.modeling.templates``  ``REQUIRED_FIELDS``: the fields each template reads
``jude.nearline.events``  ``FIELD_TYPES``: the type check of a change event's fields
``jude.serving.schemas``  ``JobEntity``, ``ProfileEntity``, ``ResumeEntity``: the API's entities
========================  ==========================================================

so adding a field is one line here (``tests/data/test_entities.py`` fails when a
consumer disagrees). A field a template reads must also be written into that template's
text (``jude.modeling.templates._body``, with a new ``TEMPLATES_VERSION``): the layout of
the text is a modelling choice, not derived.

This module imports no other jude module: it sits at the bottom of the layers, beside
``jude.data.schema``, which re-exports its vocabularies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, create_model
from pydantic_core import PydanticCustomError

SENIORITIES = ("junior", "mid", "senior", "lead")
ENTITY_TYPES = ("job", "profile", "resume")
MEMBER_VIEWS = ("profile", "resume")  # the member's two texts (entity types), either can be a query
MAX_YEARS = 80  # a working life; more is a typo (or months sent as years)


# ---- text: valid Unicode only -----------------------------------------------------------
def invalid_unicode(text: str) -> str | None:
    """What makes ``text`` impossible to encode as UTF-8, or None when it is valid text.

    JSON can carry a lone surrogate (``"\\ud800"``), and Python decodes it into a ``str``
    that no tokenizer accepts; it is refused with a message instead of failing in the model.
    """
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return f"contains a lone surrogate U+{ord(text[e.start]):04X} at position {e.start}; send valid Unicode text"
    return None


def valid_text(value: Any) -> Any:
    """A pydantic before-validator: refuse text that is not valid Unicode (pydantic's own message names no reason)."""
    problem = invalid_unicode(value) if isinstance(value, str) else None
    if problem:
        raise PydanticCustomError("invalid_unicode", problem)
    return value


def valid_texts(value: Any) -> Any:
    """:func:`valid_text` for a string or a list of strings; names the item that is wrong."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = invalid_unicode(item) if isinstance(item, str) else None
            if problem:
                raise PydanticCustomError("invalid_unicode", "item {index} {problem}", {"index": i, "problem": problem})
        return value
    return valid_text(value)


Text = Annotated[str, BeforeValidator(valid_text)]
"""A string that is valid Unicode (no lone surrogates)."""
Skills = Annotated[list[str] | str, BeforeValidator(valid_texts)]
"""A list of skills, or one text of them (``"Python; SQL"``); the template joins a list with commas."""
Id = Annotated[str, StringConstraints(min_length=1)]
Seniority = Literal[SENIORITIES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class Template:
    """Marks a field that the text template of ``entity_type`` reads: ``Annotated[Text, Template("job")]``."""

    entity_type: str

    def __post_init__(self):
        if self.entity_type not in ENTITY_TYPES:
            raise ValueError(
                f"Template: unknown entity type {self.entity_type!r}; expected one of {list(ENTITY_TYPES)}"
            )


JOB, PROFILE, RESUME = (Template(t) for t in ENTITY_TYPES)


class Record(BaseModel):
    """A row of an entity table. ``table`` and ``key`` name the table and its key columns."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    table: ClassVar[str]
    key: ClassVar[tuple[str, ...]]


class Job(Record):
    """A job posting. Its template fields are the ``job`` entity."""

    table: ClassVar[str] = "jobs"
    key: ClassVar[tuple[str, ...]] = ("job_id",)

    job_id: Id = Field(description="The job's id.")
    title: Annotated[Text, JOB] = Field(description="The job title ('Senior Data Engineer').")
    company: Annotated[Text, JOB] = Field(description="The hiring company.")
    location: Annotated[Text, JOB] = Field(description="Where the job is ('Berlin, Germany').")
    remote: Annotated[bool, JOB] = Field(description="Whether it can be done remotely ('remote' or 'on-site').")
    seniority: Annotated[Seniority, JOB] = Field(description="The level of the role.")
    min_years: Annotated[int, JOB] = Field(
        ge=0, le=MAX_YEARS, description="The years of experience the job asks for at least, a whole number."
    )
    skills: Annotated[Skills, JOB] = Field(description="The skills the job asks for.")
    description: Annotated[Text, JOB] = Field(description="The posting's text.")
    posted_at: datetime = Field(description="When the job was posted (UTC).")
    updated_at: datetime = Field(description="When the row last changed (UTC).")


class Member(Record):
    """A member: the ``profile`` entity (the profile's fields) and the ``resume`` entity (the resume's text)."""

    table: ClassVar[str] = "members"
    key: ClassVar[tuple[str, ...]] = ("member_id",)

    member_id: Id = Field(description="The member's id.")
    headline: Annotated[Text, PROFILE] = Field(description="The profile's one-line headline.")
    title: Annotated[Text, PROFILE] = Field(description="The member's current job title.")
    location: Annotated[Text, PROFILE] = Field(description="Where the member lives ('Lyon, France').")
    years_experience: Annotated[float, PROFILE] = Field(
        ge=0, le=MAX_YEARS, allow_inf_nan=False, description="Years of work experience."
    )
    skills: Annotated[Skills, PROFILE] = Field(description="The member's skills.")
    summary: Annotated[Text, PROFILE] = Field(description="The profile's 'about' text.")
    resume_text: Annotated[Text, RESUME] = Field(min_length=1, description="The resume, as plain text.")
    updated_at: datetime = Field(description="When the row last changed (UTC).")


RECORDS: tuple[type[Record], ...] = (Job, Member)
RECORD_OF: dict[str, type[Record]] = {"job": Job, "profile": Member, "resume": Member}


# ---- the field table every consumer reads -------------------------------------------------
KINDS = ("str", "bool", "int", "float", "datetime", "list[str]")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a record, as the consumers need it.

    ``kind`` is one of :data:`KINDS`; ``annotation`` the full pydantic type (constraints
    and validators included) for a ``TypeAdapter`` or a derived model; ``template`` the
    entity type whose text template reads the field, or None.
    """

    name: str
    kind: str
    annotation: Any
    required: bool
    nullable: bool
    template: str | None
    choices: tuple[str, ...] | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    description: str = ""

    @property
    def expected(self) -> str:
        """What a valid value is, in the words of an error message: 'a whole number from 0 to 80'."""
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        words = {
            "str": "non-empty text" if self.min_length else "text",
            "bool": "a boolean",
            "int": "a whole number",
            "float": "a number",
            "datetime": "a timestamp",
            "list[str]": "a list of strings or text",
        }[self.kind]
        if self.ge is not None and self.le is not None:
            return f"{words} from {_number(self.ge)} to {_number(self.le)}"
        if self.ge is not None:
            return f"{words} >= {_number(self.ge)}"
        return words


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


_KIND_OF_TYPE = {str: "str", bool: "bool", int: "int", float: "float", datetime: "datetime"}


def _kind(annotation: Any, name: str) -> tuple[str, bool, tuple[str, ...] | None]:
    """(kind, nullable, choices) of a field's bare type (pydantic has already taken the Annotated metadata off)."""
    args = get_args(annotation)
    is_union = get_origin(annotation) in (Union, UnionType)
    nullable = is_union and type(None) in args
    if nullable:
        args = tuple(a for a in args if a is not type(None))
        annotation, is_union = (args[0], False) if len(args) == 1 else (annotation, True)
        args = get_args(annotation) if not is_union else args
    if get_origin(annotation) is Literal and all(isinstance(a, str) for a in args):
        return "str", nullable, tuple(args)
    if not is_union and annotation in _KIND_OF_TYPE:
        return _KIND_OF_TYPE[annotation], nullable, None
    if is_union and set(args) == {list[str], str}:
        return "list[str]", nullable, None
    raise TypeError(f"entity field {name!r}: type {annotation!r} has no table kind; expected one of {list(KINDS)}")


def _constraint(metadata: list[Any], cls: type, attr: str) -> Any:
    """The ``attr`` of the first ``cls`` in a field's pydantic metadata (``Ge(ge=0)`` -> 0), or None."""
    return next((getattr(m, attr) for m in metadata if isinstance(m, cls)), None)


@cache
def fields_of(record: type[Record]) -> tuple[FieldSpec, ...]:
    """The :class:`FieldSpec` of every field of ``record``, in its order."""
    specs = []
    for name, info in record.model_fields.items():
        kind, nullable, choices = _kind(info.annotation, name)
        meta = info.metadata
        templates = [m.entity_type for m in meta if isinstance(m, Template)]
        if len(templates) > 1:
            raise TypeError(f"{record.__name__}.{name}: one Template marker at most, got {templates}")
        # StringConstraints (the Id type) keeps its bounds in one object, Field(min_length=...) in a MinLen
        min_length = _constraint(meta, annotated_types.MinLen, "min_length")
        min_length = min_length if min_length is not None else _constraint(meta, StringConstraints, "min_length")
        specs.append(
            FieldSpec(
                name=name,
                kind=kind,
                annotation=info.rebuild_annotation(),
                required=info.is_required(),
                nullable=nullable,
                template=templates[0] if templates else None,
                choices=choices,
                ge=_constraint(meta, annotated_types.Ge, "ge"),
                le=_constraint(meta, annotated_types.Le, "le"),
                min_length=min_length,
                description=info.description or "",
            )
        )
    return tuple(specs)


def template_specs(entity_type: str, records: tuple[type[Record], ...] = RECORDS) -> tuple[FieldSpec, ...]:
    """The fields the template of ``entity_type`` reads, in their record's order."""
    if entity_type not in ENTITY_TYPES:
        raise ValueError(f"unknown entity type {entity_type!r}; expected one of {list(ENTITY_TYPES)}")
    return tuple(s for r in records for s in fields_of(r) if s.template == entity_type)


def template_fields(records: tuple[type[Record], ...] = RECORDS) -> dict[str, tuple[str, ...]]:
    """Entity type -> the names of the fields its template reads."""
    return {t: tuple(s.name for s in template_specs(t, records)) for t in ENTITY_TYPES}


TEMPLATE_FIELDS = template_fields()


def entity_model(
    entity_type: str,
    *,
    base: type[BaseModel] = BaseModel,
    name: str | None = None,
    records: tuple[type[Record], ...] = RECORDS,
) -> type[BaseModel]:
    """A pydantic model of only the template fields of ``entity_type`` (what a model embeds), on ``base``.

    The serving API's request entities are these models (``jude.serving.schemas``).
    """
    specs = template_specs(entity_type, records)
    fields = {s.name: (s.annotation, Field(... if s.required else None, description=s.description)) for s in specs}
    name = name or f"{entity_type.capitalize()}Entity"
    doc = f"The fields the {entity_type} template reads ({', '.join(fields)}); other fields are ignored."
    return create_model(name, __base__=base, __doc__=doc, __module__=base.__module__, **fields)


def record_row(record: type[Record], *, later: tuple[str, ...] = (), **values: Any) -> dict[str, Any]:
    """One row of ``record``'s table, from ``values`` by field name, in the contract's column order.

    A generator builds its rows with this, so a new field of the contract is one edit here: an optional field
    not given is None; a required field not given, or a name the contract does not have, raises ``ValueError``.
    ``later``: required columns the caller fills for the whole table afterwards (a generator's timestamps); they
    are left out of the row.
    """
    specs = fields_of(record)
    names = {s.name for s in specs}
    unknown = [n for n in [*values, *later] if n not in names]
    if unknown:
        raise ValueError(f"{record.__name__}: no field(s) {unknown}; the fields are {[s.name for s in specs]}")
    missing = [s.name for s in specs if s.required and s.name not in values and s.name not in later]
    if missing:
        raise ValueError(f"{record.__name__}: required field(s) {missing} not given")
    return {s.name: values.get(s.name) for s in specs if s.name not in later}
