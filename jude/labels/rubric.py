"""The rubric judge: one strict rubric for grading a (member, job) pair 0-3, computed from the structured fields.

:data:`RUBRIC` is the rubric in words (what an LLM judge is shown);
:func:`rubric_grade` applies the same rules to the structured fields, from the
same threshold constants, so the rule and the LLM agree. :class:`RubricJudge`
is the default judge: deterministic, free, and what the embedded (no-GPU,
no-API) setup uses.

The judge is not the truth. A real LLM judge misreads some pairs, so the
pipeline's judge (``labels.judge_errors``, on by default) makes seeded mistakes
of the kinds an LLM makes (see :class:`RubricJudge`), and the evaluation also
scores every model on the generator's own truth
(:func:`jude.data.synthetic.truth_grades`), which never calls this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from tqdm.auto import tqdm

from jude.config import JUDGE_ERROR_MODES, JudgeErrorConfig
from jude.data import vocab
from jude.data.grounded.taxonomy import role_fit, role_of, role_title, roles_confusable
from jude.labels.judge_interface import Judge, Judgement, Pair

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
   Titles outside these families are real occupations: the same role when both
   titles name the same O*NET-SOC occupation; an adjacent role when the two
   occupations share a SOC broad occupation or an ISCO-08 unit group; otherwise
   a different role. A title found in neither is the same role only as the same
   job title.
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
    """The canonical title of a role ('Data Engineer', 'Credit Analyst'), or the raw title if unknown."""
    return role_title(family, title)


def _field(record: Mapping[str, Any], name: str, kind: str) -> Any:
    try:
        return record[name]
    except KeyError:
        raise ValueError(f"{kind} record is missing field '{name}' (has {sorted(record.keys())})") from None


def rubric_grade(member: Mapping[str, Any], job: Mapping[str, Any]) -> Judgement:
    """Apply :data:`RUBRIC` to one (member, job) pair from its structured fields.

    Role: ``role_fit`` of the member's and the job's title roles (small-world
    families or grounded occupations, :mod:`jude.data.grounded.taxonomy`; 1 same,
    0.5 adjacent, 0 different; a title outside both is the same role only as the
    same title). Location: ``vocab.location_fit``. Qualification: years
    against ``min_years`` and ``vocab.skill_overlap`` of the job's skills.
    """
    return _grade(member, job)


def _grade(
    member: Mapping[str, Any], job: Mapping[str, Any], misread: str | None = None, direction: int = 1
) -> Judgement:
    """:func:`rubric_grade`, or the grade of a judge that misreads one fact (``misread``: a judge error mode).

    ``location``: the location fit is read the other way round. ``seniority``: the posting's minimum years are
    read one seniority band off (``direction`` +1 up, -1 down; the only neighbour at either end).
    ``lookalike``: a confusable or adjacent role is taken for the same role (no effect on other pairs).
    """
    m_title, j_title = str(_field(member, "title", "member")), str(_field(job, "title", "job"))
    m_fam, j_fam = role_of(m_title), role_of(j_title)
    if m_fam is None and j_fam is None:
        fit = 1.0 if " ".join(m_title.lower().split()) == " ".join(j_title.lower().split()) else 0.0
    else:
        fit = role_fit(m_fam, j_fam)
    if misread == "lookalike" and fit < 1.0 and (fit > 0.0 or roles_confusable(m_fam, j_fam)):
        fit, m_fam = 1.0, j_fam  # "Sales Engineer" read as "Software Engineer"
    role = {1.0: "same", 0.5: "adjacent", 0.0: "different"}[fit]
    if role == "same":
        role_text = f"same role ({_family_title(j_fam, j_title)})"
    else:
        role_text = f"{role} role ({_family_title(m_fam, m_title)} vs {_family_title(j_fam, j_title)})"

    remote = bool(_field(job, "remote", "job"))
    m_loc, j_loc = str(_field(member, "location", "member")), str(_field(job, "location", "job"))
    loc_ok = vocab.location_fit(m_loc, j_loc, remote)
    if misread == "location":
        loc_ok = not loc_ok
        remote = remote and loc_ok
    if remote:
        loc_text = "location fits (remote)"
    elif loc_ok:
        loc_text = f"location fits ({j_loc})"
    else:
        loc_text = f"location does not fit ({m_loc} vs {j_loc}, on-site)"

    years = float(_field(member, "years_experience", "member"))
    min_years = float(_field(job, "min_years", "job"))
    if misread == "seniority":
        min_years = _seniority_misread(min_years, direction)
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


def _seniority_misread(min_years: float, direction: int) -> float:
    """``min_years`` read one seniority band off: shifted by the distance between the bands' lower ends."""
    bands = list(vocab.MIN_YEARS_BY_SENIORITY.values())  # junior, mid, senior, lead: (lo, hi)
    i = max((k for k, (lo, _) in enumerate(bands) if min_years >= lo), default=0)
    j = i + direction if 0 <= i + direction < len(bands) else i - direction
    return max(0.0, min_years + bands[j][0] - bands[i][0])


def _pair_key(member: Mapping[str, Any], job: Mapping[str, Any]) -> str:
    """What identifies a pair for the error draw: the ids, or (records without ids) the fields graded."""
    m_id, j_id = member.get("member_id"), job.get("job_id")
    if m_id is not None and j_id is not None:
        return f"{m_id}|{j_id}"
    fields = [str(member.get(k)) for k in ("title", "location", "years_experience", "skills")]
    fields += [str(job.get(k)) for k in ("title", "location", "remote", "min_years", "skills")]
    return "|".join(fields)


def _uniforms(seed: int, key: str) -> tuple[float, float, float]:
    """Three uniforms in [0, 1) from (seed, pair): the same pair gets the same draws in any order, any process."""
    digest = hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=12).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in (0, 4, 8))  # type: ignore[return-value]


class RubricJudge(Judge):
    """The default judge: :func:`rubric_grade` on every pair, with optional seeded mistakes. Free.

    ``errors`` (``labels.judge_errors``; None or ``rate=0`` = the exact rubric) makes the judge misread a share
    ``rate`` of the pairs it *could* misread (those with a role in common with the member's or a look-alike one:
    a pair of unrelated roles is graded 0 by any reader), one fact each, the mistakes an LLM judge makes on
    this task:

    - ``location``: the location fit read the other way round (a remote flag missed, a city misread);
    - ``seniority``: the posting's level read one seniority band off ("Senior" taken for "Lead" or "Mid"), so
      its minimum years move by the distance between the bands;
    - ``lookalike``: a look-alike role taken for the same role (Sales Engineer for Software Engineer, an
      adjacent family for the family itself); a pair of unrelated roles is left as it is.

    A touched pair's rationale ends with ``[judge error: <mode>]``; ``stats.misread`` counts the touched pairs
    and ``changed`` those whose grade moved. Which pairs are touched, and how, is a hash of (``errors.seed``,
    member_id, job_id): the same pair judged twice (labels, then the pooled evaluation, then the promotion
    gate) gets the same grade, and the mistakes do not depend on the order or the batch of the pairs.

    Why 15 % by default: studies of LLM relevance judges against human assessors (Thomas et al., "Large
    language models can accurately predict searcher preferences", SIGIR 2024; Faggioli et al., "Perspectives
    on large language models for relevance judgment", ICTIR 2023) find good but clearly imperfect agreement,
    the disagreements concentrated on near misses, and no single error rate that would transfer to this task.
    15 % is the middle of the 10-20 % range that keeps the judge useful as a label source while making
    "copies the judge" and "finds the truth" measurably different. Measured on the small test marketplace
    (``tests/labels/test_judge_errors.py``): of the pairs the judge could misread, about 15 % are touched
    and most of those change grade; over all interacted pairs, where many roles are unrelated, fewer.
    """

    name = "rubric"

    def __init__(self, errors: JudgeErrorConfig | None = None) -> None:
        super().__init__()
        self.errors = errors if errors is not None and errors.rate > 0 else None
        self.changed = 0  # misread pairs whose grade differs from the exact rubric's (stats.misread: all of them)
        self._weights = {m: float(errors.modes.get(m, 0.0)) for m in JUDGE_ERROR_MODES} if errors else {}

    def misread(self, member: Mapping[str, Any], job: Mapping[str, Any]) -> tuple[str | None, int]:
        """The error mode this judge applies to the pair (None: graded exactly), and the seniority direction.

        Only a mode that can matter is drawn: a location or seniority misreading needs a role in common (same or
        adjacent), a look-alike misreading a confusable or adjacent role; a pair of unrelated roles is graded 0
        by any careful or careless reader, so it is never touched.
        """
        if self.errors is None:
            return None, 1
        touch, which, direction = _uniforms(self.errors.seed, _pair_key(member, job))
        if touch >= self.errors.rate:
            return None, 1
        m_fam = role_of(str(_field(member, "title", "member")))
        j_fam = role_of(str(_field(job, "title", "job")))
        fit = role_fit(m_fam, j_fam)
        applicable = {
            "location": fit > 0,
            "seniority": fit > 0,
            "lookalike": 0 < fit < 1 or roles_confusable(m_fam, j_fam),
        }
        modes = [m for m in JUDGE_ERROR_MODES if applicable[m] and self._weights[m] > 0]
        if not modes:
            return None, 1
        total, acc, chosen = sum(self._weights[m] for m in modes), 0.0, modes[-1]
        for m in modes:
            acc += self._weights[m] / total
            if which < acc:
                chosen = m
                break
        return chosen, (1 if direction < 0.5 else -1)

    def grade(self, member: Mapping[str, Any], job: Mapping[str, Any]) -> Judgement:
        """One pair's judgement, with this judge's mistake on it if it makes one."""
        mode, direction = self.misread(member, job)
        if mode is None:
            return rubric_grade(member, job)
        wrong = _grade(member, job, misread=mode, direction=direction)
        self.stats.misread += 1
        self.changed += int(wrong.grade != rubric_grade(member, job).grade)
        return Judgement(grade=wrong.grade, rationale=f"{wrong.rationale} [judge error: {mode}]")

    def grade_pairs(self, pairs: Sequence[Pair]) -> list[Judgement]:
        pairs = list(pairs)
        out = [self.grade(m, j) for m, j in tqdm(pairs, desc="rubric judge", unit="pair", disable=len(pairs) < 1000)]
        self.stats.pairs += len(pairs)
        self.stats.graded += len(out)
        return out
