"""The rubric judge: one strict rubric for grading a (member, job) pair 0-3, computed from the structured fields.

:data:`RUBRIC` is the rubric in words (what an LLM judge is shown);
:func:`rubric_grade` applies the same rules to the structured fields, from the
same threshold constants, so the rule and the LLM agree. :class:`RubricJudge`
is the default judge: deterministic, free, and what the embedded (no-GPU,
no-API) setup uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tqdm.auto import tqdm

from jude.data import vocab
from jude.labels.judges import Judge, Judgement, Pair

# The qualification thresholds of the rubric. They appear in RUBRIC's text and in
# RubricJudge's code from these constants, so the LLM and the rule agree.
QUALIFIED_SKILL_SHARE = 0.5  # fully qualified: has at least half the job's required skills
SLIGHT_SKILL_SHARE = 0.25  # slightly under-qualified: at least a quarter of them ...
SLIGHT_YEARS_GAP = 2  # ... and at most this many years short of the job's minimum


def _families_text() -> str:
    """The role families and their adjacent (related) families, one line each."""
    lines = []
    for fam in vocab.ALL_ROLE_FAMILIES.values():
        related = [
            vocab.ALL_ROLE_FAMILIES[r].titles[0]
            for r in sorted(
                {r for r in fam.related} | {o.name for o in vocab.ALL_ROLE_FAMILIES.values() if fam.name in o.related}
            )
        ]
        line = f"   - {fam.titles[0]}: also {', '.join(fam.titles[1:])}"
        if related:
            line += f"; adjacent: {', '.join(related)}"
        lines.append(line)
    return "\n".join(lines)


RUBRIC = f"""\
You judge whether a job posting is relevant to a member of a job marketplace.
Grade the pair 0, 1, 2 or 3, strictly, from three facts and nothing else.

1. Role. Compare the member's current title with the job title.
   - same role: both titles are in the same role family. Seniority words
     ("Senior", "Lead", "Junior", "II") do not change the family.
   - adjacent role: the two families are listed as adjacent below.
   - different role: anything else, even when the titles share words or skills
     (Data Engineer vs Data Analyst, Software Engineer vs Sales Engineer, Product
     Manager vs Project Manager are different roles).
   Role families (title: other titles of the same family; adjacent families):
{_families_text()}
   A title outside these families is the same role only as the same job title.
2. Location. The location fits when the job is remote, or when the job's city is
   the member's city. Otherwise it does not fit.
3. Qualification. Years: the member's years of experience against the job's
   minimum years. Skills: the share of the job's listed skills that the member
   also lists.
   - fully qualified: years >= the minimum, and skills share >= {QUALIFIED_SKILL_SHARE:.0%}.
   - slightly under-qualified: not fully qualified, but at most {SLIGHT_YEARS_GAP} years short
     of the minimum and skills share >= {SLIGHT_SKILL_SHARE:.0%}.
   - clearly under-qualified: anything less.

Grades:
- 3: same role, location fits, fully qualified.
- 2: same role, location fits, slightly under-qualified.
- 1: same role, but the location does not fit or the member is clearly
     under-qualified (or both); or an adjacent role where the location fits and
     the member is fully qualified.
- 0: a different role; or an adjacent role that does not fit otherwise.

Over-qualification never lowers a grade. Do not reward a good company, a nice
description or anything else the rubric does not name."""


def _skills(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.replace("|", ";").split(";") if p.strip()]
    return [str(s) for s in value]


def _years(value: float) -> str:
    v = float(value)
    return str(int(v)) if v == int(v) else f"{v:.1f}"


def _family_title(family: str | None, title: str) -> str:
    """The canonical title of a family ('Data Engineer'), or the raw title if unknown."""
    if family is None:
        return str(title)
    return vocab.ALL_ROLE_FAMILIES[family].titles[0]


def _field(record: Mapping[str, Any], name: str, kind: str) -> Any:
    try:
        return record[name]
    except KeyError:
        raise ValueError(f"{kind} record is missing field '{name}' (has {sorted(record.keys())})") from None


def rubric_grade(member: Mapping[str, Any], job: Mapping[str, Any]) -> Judgement:
    """Apply :data:`RUBRIC` to one (member, job) pair from its structured fields.

    Role: ``vocab.family_fit`` of the member's and the job's title families (1 same,
    0.5 adjacent, 0 different; a title outside the vocabulary is the same role only
    as the same title). Location: ``vocab.location_fit``. Qualification: years
    against ``min_years`` and ``vocab.skill_overlap`` of the job's skills.
    """
    m_title, j_title = str(_field(member, "title", "member")), str(_field(job, "title", "job"))
    m_fam, j_fam = vocab.role_family_of(m_title), vocab.role_family_of(j_title)
    if m_fam is None and j_fam is None:
        fit = 1.0 if " ".join(m_title.lower().split()) == " ".join(j_title.lower().split()) else 0.0
    else:
        fit = vocab.family_fit(m_fam, j_fam)
    role = {1.0: "same", 0.5: "adjacent", 0.0: "different"}[fit]
    if role == "same":
        role_text = f"same role ({_family_title(j_fam, j_title)})"
    else:
        role_text = f"{role} role ({_family_title(m_fam, m_title)} vs {_family_title(j_fam, j_title)})"

    remote = bool(_field(job, "remote", "job"))
    m_loc, j_loc = str(_field(member, "location", "member")), str(_field(job, "location", "job"))
    loc_ok = vocab.location_fit(m_loc, j_loc, remote)
    if remote:
        loc_text = "location fits (remote)"
    elif loc_ok:
        loc_text = f"location fits ({j_loc})"
    else:
        loc_text = f"location does not fit ({m_loc} vs {j_loc}, on-site)"

    years = float(_field(member, "years_experience", "member"))
    min_years = float(_field(job, "min_years", "job"))
    share = vocab.skill_overlap(_skills(_field(job, "skills", "job")), _skills(_field(member, "skills", "member")))
    years_text = f"{_years(years)} {'>=' if years >= min_years else '<'} {_years(min_years)} years"
    if years >= min_years and share >= QUALIFIED_SKILL_SHARE:
        qual = "full"
        qual_text = f"qualified: {years_text}, skills {share:.0%}"
    elif years >= min_years - SLIGHT_YEARS_GAP and share >= SLIGHT_SKILL_SHARE:
        qual = "slight"
        qual_text = f"slightly under-qualified: {years_text}, skills {share:.0%}"
    else:
        qual = "clear"
        qual_text = f"clearly under-qualified: {years_text}, skills {share:.0%}"

    if role == "same":
        if loc_ok and qual == "full":
            grade = 3
        elif loc_ok and qual == "slight":
            grade = 2
        else:
            grade = 1
    elif role == "adjacent":
        grade = 1 if (loc_ok and qual == "full") else 0
    else:
        grade = 0
    return Judgement(grade=grade, rationale=f"{role_text}, {loc_text}, {qual_text}")


class RubricJudge(Judge):
    """The default judge: :func:`rubric_grade` on every pair. Deterministic and free."""

    name = "rubric"

    def grade_pairs(self, pairs: Sequence[Pair]) -> list[Judgement]:
        pairs = list(pairs)
        out = [rubric_grade(m, j) for m, j in tqdm(pairs, desc="rubric judge", unit="pair", disable=len(pairs) < 1000)]
        self.stats.pairs += len(pairs)
        self.stats.graded += len(out)
        return out
