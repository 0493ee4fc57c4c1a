"""The LLM judge's prompt and answer: strict matching of role, location and qualifications, graded 0-3.

The prompt (version :data:`PROMPT_VERSION`) is the rubric (:data:`jude.labels.rubric.RUBRIC`, the same words
and thresholds the rubric judge computes with) as the system message, followed by a fixed procedure: decide
the three facts one at a time, from the texts only, then the grade they give. The user message is the two
entity texts, rendered by the same templates the embedder reads (:func:`jude.modeling.templates.render`), so
the judge sees exactly what the model is trained on, and nothing structured.

The answer is constrained by :data:`ANSWER_SCHEMA`, a JSON schema whose properties come in the order of the
procedure (role, location, qualification, then grade), so a model generating left to right writes the facts
before it commits to the grade. Servers enforce it as a grammar (llama.cpp, vLLM's guided decoding, Ollama,
OpenAI's structured outputs): see :func:`response_format` for the three request shapes. An answer that still
does not parse is counted as malformed by the client and never becomes a label.

A second prompt, ``labels.llm.prompt: questions`` (:data:`QUESTIONS_VERSION`), is for small models that the
long rubric overwhelms: three short questions about the same two texts, one request each (role, location,
qualification), each answer constrained to a few words (:func:`question_schema`), combined into the grade by the
rubric's own combination (:func:`grade_from_facts`). The texts come first and the question last, so a server
with prefix caching (llama.cpp, vLLM) reads the texts once for the three questions.

Changing the prompt, the procedure or the schema changes what the judge answers: bump :data:`PROMPT_VERSION`
(or :data:`QUESTIONS_VERSION`), which is part of the judge cache's key (:func:`jude.labels.llm_judge.cache_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jude.labels.rubric import RUBRIC
from jude.modeling.templates import render

PROMPT_VERSION = "strict-v1"

ROLES = ("same", "adjacent", "different")
LOCATIONS = ("fits", "does not fit")
QUALIFICATIONS = ("fully qualified", "slightly under-qualified", "clearly under-qualified")
FACTS = ("role", "location", "qualification")

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": list(ROLES)},
        "location": {"type": "string", "enum": list(LOCATIONS)},
        "qualification": {"type": "string", "enum": list(QUALIFICATIONS)},
        "grade": {"type": "integer", "enum": [0, 1, 2, 3]},
    },
    "required": ["role", "location", "qualification", "grade"],
    "additionalProperties": False,
}

PROCEDURE = """\
Procedure. Read only the member profile and the job posting below; use no other knowledge about the people or
the companies.
1. role: compare the member's current title with the job title by the role families above:
   "same", "adjacent" or "different". Similar words are not the same role.
2. location: "fits" when the posting says remote, or when the posting's city is the member's city;
   otherwise "does not fit". A different city of the same country does not fit.
3. qualification: count the job's listed skills that the member also lists, and compare the member's years
   with the job's minimum years: "fully qualified", "slightly under-qualified" or "clearly under-qualified".
4. grade: 0, 1, 2 or 3, by the grades above, from these three facts only.

Answer with one JSON object and nothing else, its keys in this order:
{"role": "same" | "adjacent" | "different", "location": "fits" | "does not fit",
 "qualification": "fully qualified" | "slightly under-qualified" | "clearly under-qualified", "grade": 0-3}"""

SYSTEM_PROMPT = f"{RUBRIC}\n\n{PROCEDURE}"


def build_messages(member: Mapping[str, Any], job: Mapping[str, Any]) -> list[dict[str, str]]:
    """The chat prompt for one pair: the rubric and the procedure (system, the same for every pair, so a server
    with prefix caching processes it once), then both entity texts (user)."""
    user = (
        "Member profile:\n"
        f"{render('profile', member)}\n\n"
        "Job posting:\n"
        f"{render('job', job)}\n\n"
        "Judge this pair strictly by the procedure. Answer with the JSON object only."
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def response_format(kind: str, schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``response_format`` of the request that constrains the answer to ``schema`` (default
    :data:`ANSWER_SCHEMA`).

    - ``json_schema``: OpenAI's structured outputs, also vLLM, Ollama (>= 0.5) and llama.cpp's ``llama-server``;
    - ``json_object_schema``: ``{"type": "json_object", "schema": ...}``, what llama-cpp-python's server
      (``python -m llama_cpp.server``) turns into a grammar (it rejects ``json_schema``);
    - ``json_object``: JSON mode only (any JSON object; for servers without schemas).
    """
    schema = ANSWER_SCHEMA if schema is None else dict(schema)
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "judgement", "strict": True, "schema": schema}}
    if kind == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    if kind == "json_object":
        return {"type": "json_object"}
    raise ValueError(f"labels.llm.response_format must be json_schema, json_object_schema or json_object, got {kind!r}")


def facts_rationale(answer: Mapping[str, Any]) -> str | None:
    """``"role: same; location: fits; qualification: fully qualified"`` from an answer holding the three facts
    (each one of its allowed values), else None."""
    allowed = {"role": ROLES, "location": LOCATIONS, "qualification": QUALIFICATIONS}
    if not all(answer.get(f) in allowed[f] for f in FACTS):
        return None
    return "; ".join(f"{f}: {answer[f]}" for f in FACTS)


def parse_facts(rationale: str) -> dict[str, str] | None:
    """The inverse of :func:`facts_rationale` (None when ``rationale`` is not of that form)."""
    parts = [p.partition(": ") for p in str(rationale).split("; ")]
    facts = {k: v for k, _, v in parts}
    return facts if list(facts) == list(FACTS) and facts_rationale(facts) == rationale else None


def grade_from_facts(facts: Mapping[str, str]) -> int:
    """The grade the rubric gives three facts (role, location, qualification), the combination of
    :func:`jude.labels.rubric.rubric_grade`: how consistent a judge's grade is with its own facts."""
    role, loc_ok, qual = facts["role"], facts["location"] == "fits", facts["qualification"]
    if role == "same":
        if loc_ok and qual == "fully qualified":
            return 3
        if loc_ok and qual == "slightly under-qualified":
            return 2
        return 1
    if role == "adjacent":
        return 1 if loc_ok and qual == "fully qualified" else 0
    return 0


# --- the three-question prompt (labels.llm.prompt: questions) ---------------------------------------------------

QUESTIONS_VERSION = "questions-v1"

QUESTION_SYSTEM = (
    "You compare a member profile with a job posting on a job marketplace. Read only the two texts. Answer the "
    'question with one of the allowed answers, as a JSON object {"answer": ...}.'
)

# fact -> (the question, {allowed answer: the fact's value in the strict prompt's terms})
QUESTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "role": (
        "Is the job the same occupation as the member's current job title? Other words for the same job, and "
        'seniority words such as "Senior" or "Lead", do not make a different occupation. Titles that share words '
        'but are other jobs (Sales Engineer and Software Engineer) are different. Answer "same", "related" '
        '(a neighbouring occupation in the same field) or "different".',
        {"same": "same", "related": "adjacent", "different": "different"},
    ),
    "location": (
        'Can the member take this job where they live? Answer "yes" if the posting is remote or its city is the '
        'member\'s city, and "no" if it is on site in another city.',
        {"yes": "fits", "no": "does not fit"},
    ),
    "qualification": (
        "Does the member meet the job's requirements? Compare the member's years of experience with the minimum "
        "years the job asks for, and the member's skills with the job's skills. Answer \"yes\" (enough years and "
        'most of the skills), "almost" (at most two years short, or missing several skills) or "no".',
        {"yes": "fully qualified", "almost": "slightly under-qualified", "no": "clearly under-qualified"},
    ),
}


def question_schema(fact: str) -> dict[str, Any]:
    """The JSON schema of one question's answer: ``{"answer": <one of the question's allowed answers>}``."""
    return {
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": list(QUESTIONS[fact][1])}},
        "required": ["answer"],
        "additionalProperties": False,
    }


def build_question_messages(
    member: Mapping[str, Any], job: Mapping[str, Any]
) -> list[tuple[str, list[dict[str, str]]]]:
    """``[(fact, messages), ...]`` for the three questions of :data:`QUESTIONS`: the same system message and the
    same two texts each time (a shared prefix), then the question."""
    texts = f"Member profile:\n{render('profile', member)}\n\nJob posting:\n{render('job', job)}\n\n"
    return [
        (fact, [{"role": "system", "content": QUESTION_SYSTEM}, {"role": "user", "content": texts + q}])
        for fact, (q, _) in QUESTIONS.items()
    ]


def fact_from_answer(fact: str, answer: Any) -> str | None:
    """The strict prompt's value of ``fact`` for one question's allowed answer, else None."""
    return QUESTIONS[fact][1].get(answer) if isinstance(answer, str) else None
