"""Entity -> text. One template per entity type, shared by training, evaluation,
serving and the nearline updater.

The templates act as soft task descriptors for the shared base model (JUDE's
"specialised prompt templates for different input types"): the same network
embeds a job, a profile or a resume, and the prefix tells it which one it reads.

Two styles:

- ``plain``: short field-labelled text for encoder models (MiniLM, BERT).
- ``instruct``: an instruction line followed by the fields, for decoder-only
  LLMs (the e5-mistral / Qwen embedding convention ``Instruct: ...\\nQuery: ...``).

``TEMPLATES_VERSION`` is stored in every model's ``jude.json``; change it whenever
the rendered text changes, so a served model never meets text it was not trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from jude.entities import ENTITY_TYPES, TEMPLATE_FIELDS

TEMPLATES_VERSION = "v1"
STYLES = ("plain", "instruct")

INSTRUCTIONS = {
    "job": "Represent this job posting for retrieving members who are qualified for it.",
    "profile": "Represent this member profile for retrieving job postings that fit it.",
    "resume": "Represent this resume for retrieving job postings that fit it.",
}

# The fields each template reads: those the entity contract (jude.entities) marks with the entity type's
# Template. _body below writes each of them into the text (tests/data/test_entities.py checks it does).
REQUIRED_FIELDS = TEMPLATE_FIELDS


class TemplateError(ValueError):
    """An entity type or record that no template can render."""


def _skills(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return ", ".join(str(s) for s in value)


def _years(value: Any) -> str:
    v = float(value)
    return str(int(v)) if v == int(v) else f"{v:.1f}"


def _body(entity_type: str, r: Mapping[str, Any]) -> str:
    if entity_type == "job":
        where = "remote" if bool(r["remote"]) else "on-site"
        return (
            f"Job: {r['title']} at {r['company']}\n"
            f"Location: {r['location']} ({where})\n"
            f"Seniority: {r['seniority']}; at least {_years(r['min_years'])} years\n"
            f"Skills: {_skills(r['skills'])}\n"
            f"{r['description']}"
        )
    if entity_type == "profile":
        return (
            f"Member: {r['headline']}\n"
            f"Current title: {r['title']}\n"
            f"Location: {r['location']}\n"
            f"Experience: {_years(r['years_experience'])} years\n"
            f"Skills: {_skills(r['skills'])}\n"
            f"{r['summary']}"
        )
    if entity_type == "resume":
        return f"Resume:\n{r['resume_text']}"
    raise TemplateError(f"unknown entity type {entity_type!r}; expected one of {list(ENTITY_TYPES)}")


def render(entity_type: str, record: Mapping[str, Any], style: str = "plain") -> str:
    """Render one entity record (a dict or a pandas row) as model input text."""
    if entity_type not in ENTITY_TYPES:
        raise TemplateError(f"unknown entity type {entity_type!r}; expected one of {list(ENTITY_TYPES)}")
    if style not in STYLES:
        raise TemplateError(f"unknown template style {style!r}; expected one of {list(STYLES)}")
    missing = [f for f in REQUIRED_FIELDS[entity_type] if f not in record]
    if missing:
        raise TemplateError(f"{entity_type} record is missing field(s) {missing}")
    body = _body(entity_type, record)
    if style == "instruct":
        return f"Instruct: {INSTRUCTIONS[entity_type]}\nQuery: {body}"
    return body


def render_many(
    entity_type: str, records: pd.DataFrame | Iterable[Mapping[str, Any]], style: str = "plain"
) -> list[str]:
    """Render every row of a table (or every dict of an iterable)."""
    rows = records.to_dict("records") if isinstance(records, pd.DataFrame) else records
    return [render(entity_type, r, style) for r in rows]


def member_entity_types() -> tuple[str, str]:
    """The two ways a member can be the query side: profile and resume."""
    return ("profile", "resume")
