"""A seeded change stream over time for the synthetic marketplace: what the nearline updater consumes.

:func:`generate_change_stream` turns a :class:`~jude.data.synthetic.Marketplace`
into the change events its jobs, profiles and resumes would publish over the
marketplace's period: one event per application-level save, ordered by event time,
following the change-event contract (``jude.nearline.events``): ``entity_type``,
``entity_id``, ``op`` (upsert | delete), ``event_time`` (ISO 8601, UTC, whole
milliseconds) and ``fields`` (the fields the entity's template reads, plus extras the
template ignores). Everything is a function of the marketplace and
``ChangeStreamConfig.seed``.

What happens, per entity
------------------------
- **Jobs.** Each posting is created at its ``posted_at`` (``job_posted``). While it is
  open it gets counter flushes (``job_stats``: ``view_count``, ``application_count``),
  status changes (``job_status``: open <-> paused), recruiter notes (``job_notes``),
  re-saves of the unchanged posting (``job_refresh``: the poster renews it; same id,
  same text), and edits of the text (``job_text_edit``: a skill added, a sentence
  added to the description, a team added to the title), mostly in its first days.
  Half the postings close 7-60 days after posting (the window the recommender shows a
  job); those that close inside the period, about a third of all, are deleted then
  (``job_deleted``). 30% of the deleted ones are reposted a few days later under a new
  id with the same text (``job_reposted``, id ``<job_id>-R``).
- **Members.** A member signs up shortly before their first impression
  (``profile_created`` and ``resume_created``). Then: activity that the profile
  template does not read (``profile_activity``: ``open_to_work``, ``profile_views``),
  profile edits (``profile_edit``: a skill, a headline, a summary sentence, a work
  anniversary), the same resume uploaded again (``resume_reupload``: new
  ``uploaded_at``, same text) and resume edits (``resume_edit``: a new bullet, a new
  skill). 1% of members close their account (``profile_deleted``, ``resume_deleted``).

The edits speak the entity's world. Which world is decided per title (``jude.data.grounded.taxonomy.role_of``:
the small world's role families first), so the small world's stream is what it always was, byte for byte
(``tests/data/test_changes.py`` pins it). An entity whose title is a grounded occupation's (a marketplace of
``data.synthetic.world: grounded``) is edited from its occupation's vocabulary, never the small world's:

- skills: the occupation's own ESCO skills (``GROUNDED_OWN_SKILL_SHARE``), else those of its SOC minor group or
  ISCO unit group (the grounded world's related occupations), else any skill the marketplace uses;
- a job's title: another real title variant of the same occupation under the same seniority prefix ("Sr.
  Auditing Clerk" -> "Sr. Audit Control Clerk"), or a qualifier in brackets ("(Night Shift)", which the title resolver
  drops), so an edited title keeps its role;
- description lines and résumé bullets: the occupation's O*NET duties (as gerunds, or in the past tense), under
  the grounded résumés' own headings ("WORK HISTORY", "Key skills");
- places: a member moves to another metro of the marketplace, or writes that they are open to relocating there,
  drawn by the occupation's employment in each metro (BLS OEWS); the summary's "Looking for ... roles" names the
  occupation's canonical title.

The schedule, the kinds and their shares are the same in both worlds.

Proportions, and why
--------------------
The events that follow a creation (the *updates*, ``ChangeStreamConfig.mix``) are
drawn with these shares (defaults; they must sum to 1):

=================  =====  ====================  =========================================
kind               share  templated text        why so often
=================  =====  ====================  =========================================
job_stats          0.38   unchanged             counters move all day on every live posting
job_status         0.04   unchanged             pausing a posting is occasional
job_notes          0.06   unchanged             recruiters annotate their pipeline
job_refresh        0.04   unchanged (same id)   renewing a posting re-saves it as is
job_text_edit      0.08   changed               typo fixes, a skill or perk added early on
profile_activity   0.18   unchanged             open-to-work toggles, profile view counts
profile_edit       0.11   changed               members touch their profile now and then
resume_reupload    0.06   unchanged             the same file attached to another application
resume_edit        0.05   changed               resumes change least often
=================  =====  ====================  =========================================

So 24% of the updates change the templated text, and with the creations (new postings,
reposts under a new id, sign-ups; all need an embedding) about 28-30% of all upserts
at the default size. The reference points:

- **JUDE** (LinkedIn, "Real-Time Embedding Generation and Serving"): change detection
  on the templated text cuts nearline inference *up to 3x*, i.e. about two thirds of
  the changes an entity stream carries leave the text the model reads unchanged. The
  mix above gives ~3.3-3.6x (``stream_summary(...)["inference_reduction"]``), at the
  low end of "up to 3x" plus the margin that a few creations fall near the period's end.
- **LinkedIn's bootstrap**: naive database change tracking emits *6x* more row
  versions than there are distinct contents to embed, because every write of any
  column is a row version. :func:`row_versions` reproduces that: besides one version
  per save in this stream, every single counter increment (a view, an application, a
  profile view) is its own row write, while the stream only publishes the flushed
  counts. At the default size that is ~6x the distinct (entity, templated text) pairs.

Edits that follow outcomes (``ChangeStreamConfig.apply_edit_share``, 0 by default): a share
of the marketplace's applies is followed, 1 minute + Exp(1 day) later, by a
``profile_tailored`` edit: the member adds up to two of the job's skills they lacked and
a headline naming its role. Members do reshape their profiles around the jobs they apply
to, and this is what makes a training join with today's embeddings (a nightly snapshot)
see the future: the apply-prediction ranker's time-travel row (``jude.ranker``). Its
draws come from separate generators (``default_rng([seed, 14, ...])``), so every other
event of a stream is the same with or without it.

Out-of-order and duplicated delivery (for tests of idempotent sinks):
``ChangeStreamConfig.duplicates`` copies that share of the events and delivers each
copy up to ``DUPLICATE_SPREAD`` positions after the original;
``ChangeStreamConfig.shuffle_window`` moves every event by up to that many positions.
Event times never change, so a shuffled stream is out of order by event time.

Columns of the returned frame: ``seq`` (position in the clean, time-ordered stream; a
duplicate keeps its original's), the five contract keys, ``event_time_ms`` (int epoch
milliseconds), ``kind`` (the table above, plus ``*_posted/_created/_reposted/
_deleted``) and ``text_changed`` (the upsert's templated text differs from the
entity's previous upsert's: true for a creation and for every ``*_edit``, false for
the rest, by construction; the tests check it against
:func:`jude.modeling.templates.render`, which ``jude.data`` does not import).
:func:`to_events` gives the bare contract dicts.

A repost under a new id has the same text as its original but is a new entity: the
online store holds no hash for it, so change detection per entity embeds it (only a
content-hash cache across entities would not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from jude.data.grounded import styles
from jude.data.grounded.taxonomy import (
    Occupation,
    grounded_occupation_of,
    load_taxonomy,
    normalise_title,
    role_fit,
    role_of,
    title_case,
)
from jude.data.synthetic import Marketplace
from jude.data.vocab import ALL_ROLE_FAMILIES, RoleFamily, role_family_of

EVENT_KEYS = ("entity_type", "entity_id", "op", "event_time", "fields")
COUNTER_FIELDS = ("view_count", "application_count", "profile_views")  # one DB write per increment

# --- readable defaults of the simulation (one-line reasons) ---
DAY_MS = 86_400_000
JOB_LIFETIME_DAYS = (7.0, 60.0)  # a closed posting was open this long (the recommender shows jobs <= 60 days)
REPOST_DELAY_DAYS = 2.0  # mean wait before a closed posting is reposted
SIGNUP_LEAD_DAYS = 2.0  # mean time between a member's sign-up and their first impression
RESUME_AFTER_PROFILE_MS = 10 * 60_000  # the resume is uploaded within 10 minutes of signing up
STATS_EXTRA_VIEWS = 1.5  # Poisson mean of views per counter flush beyond the first (row_versions ~6x)
APPLY_PER_VIEW = 0.08  # applications per view in a counter flush (the marketplace's apply rate)
PROFILE_VIEWS_EXTRA = 1.5  # Poisson mean of profile views per activity event beyond the first
OPEN_TO_WORK_TOGGLE = 0.3  # share of profile_activity events that toggle open_to_work
DUPLICATE_SPREAD = 100  # a duplicate arrives up to this many positions after its original
APPLY_EDIT_DELAY_DAYS = 1.0  # mean wait between an apply and the profile edit it prompts (apply_edit_share)
APPLY_EDIT_STREAM = 14  # apply-prompted edits draw from default_rng([seed, 14, ...]): every other draw is unchanged
APPLY_EDIT_KIND = "profile_tailored"  # a profile edited toward a job the member applied to (changes the text)

UPDATE_KINDS = {  # kind -> (entity type, changes the templated text)
    "job_stats": ("job", False),
    "job_status": ("job", False),
    "job_notes": ("job", False),
    "job_refresh": ("job", False),
    "job_text_edit": ("job", True),
    "profile_activity": ("profile", False),
    "profile_edit": ("profile", True),
    "resume_reupload": ("resume", False),
    "resume_edit": ("resume", True),
}
CREATE_KINDS = ("job_posted", "job_reposted", "profile_created", "resume_created")
DELETE_KINDS = ("job_deleted", "profile_deleted", "resume_deleted")

_DESCRIPTION_ADDENDA = (
    "We offer flexible working hours and a yearly learning budget.",
    "Visa sponsorship is available for this role.",
    "Please include a short note on a project you are proud of.",
    "The interview process has three steps and takes about two weeks.",
    "We welcome applicants from all backgrounds.",
    "Update: we are hiring two people for this role.",
    "Relocation support is available.",
)
_TEAMS = ("Platform", "Core", "Growth", "Payments", "Insights", "Operations", "Customer", "Infrastructure")
_RECRUITER_NOTES = (
    "phone screens scheduled with two candidates",
    "hiring manager asked for more senior profiles",
    "budget approved for a second hire",
    "sourcing paused until next quarter",
    "referral received from the team",
    "offer extended to one candidate",
    "shortlist sent to the hiring manager",
)
_HEADLINE_TAILS = ("Open to new opportunities", "Open to work", "Hiring", "Mentor", "Speaker")
_SUMMARY_ADDENDA = (
    "Recently completed a course in {skill}.",
    "Currently learning {skill}.",
    "Looking for {role} roles.",
    "Happy to relocate for the right role.",
)
# The grounded world's edits (an entity whose title is a grounded occupation's, jude.data.grounded): its
# vocabulary comes from the taxonomy (skills, duties, title variants, metros); these are the words around it.
GROUNDED_OWN_SKILL_SHARE = 0.75  # a skill edit takes one of the occupation's own skills, else a related one's
GROUNDED_VARIANT_TITLE_SHARE = 0.6  # a title edit swaps in another real variant (when the occupation has one)
_TITLE_QUALIFIERS = ("Day Shift", "Night Shift", "Full-Time", "Part-Time", "Contract", "Temporary", "Weekends")
_GROUNDED_DESCRIPTION_LINES = ("The role also includes {duty}.", "Additional duties: {duty}.")
_GROUNDED_SUMMARY_ADDENDA = (  # ESCO skills are mostly verb phrases ("prepare sandwiches"): after a colon
    "Recently completed training: {skill}.",
    "Currently building skills: {skill}.",
    "Looking for {role} roles.",
    "Open to relocating to {place}.",
    "Also experienced in {duty}.",
)
_EXPERIENCE_HEADS = ("experience", "work history", "employment", "professional experience")
_SKILLS_HEADS = ("skills", "core skills", "key skills", "competencies")


class UpdateMix(BaseModel):
    """Shares of the update events (everything after an entity's creation) by kind; they sum to 1.

    The defaults and their reasons are in the module docstring: 24% change the text.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    job_stats: float = Field(0.38, ge=0, le=1, description="Counter flushes on a posting (views, applications).")
    job_status: float = Field(0.04, ge=0, le=1, description="A posting paused or reopened.")
    job_notes: float = Field(0.06, ge=0, le=1, description="Recruiter notes on a posting.")
    job_refresh: float = Field(0.04, ge=0, le=1, description="A posting re-saved unchanged (same id, same text).")
    job_text_edit: float = Field(0.08, ge=0, le=1, description="A posting's title, skills or description edited.")
    profile_activity: float = Field(0.18, ge=0, le=1, description="open_to_work or profile_views changed.")
    profile_edit: float = Field(0.11, ge=0, le=1, description="Headline, skills, summary or years edited.")
    resume_reupload: float = Field(0.06, ge=0, le=1, description="The same resume uploaded again.")
    resume_edit: float = Field(0.05, ge=0, le=1, description="The resume text edited.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> UpdateMix:
        total = sum(self.model_dump().values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"mix: the shares must sum to 1, got {total:.6g}")
        return self


class ChangeStreamConfig(BaseModel):
    """The synthetic change stream (module docstring). Sizes are in events, shares in [0, 1]."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int = Field(0, description="Everything drawn is a function of this seed (and the marketplace).")
    n_events: int = Field(
        24_000, gt=0, description="Events in the clean stream (before duplicates); the bench needs >= 20,000."
    )
    mix: UpdateMix = Field(default_factory=UpdateMix, description="Shares of the update events by kind.")
    job_close_share: float = Field(0.5, ge=0, le=1, description="Postings closed (deleted) within the period.")
    repost_share: float = Field(
        0.3, ge=0, le=1, description="Closed postings reposted under a new id with the same text."
    )
    member_delete_share: float = Field(0.01, ge=0, le=1, description="Members who close their account.")
    duplicates: float = Field(0.0, ge=0, le=1, description="Share of events delivered twice (tests).")
    shuffle_window: int = Field(0, ge=0, description="Each event moves by up to this many positions (tests).")
    apply_edit_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of the marketplace's applies followed (after ~1 day) by an edit of the member's profile "
        "toward the job applied to: its missing skills, a headline naming its role. Outcome-correlated edits, what "
        "makes a join with the latest embeddings see the future (the ranker's time-travel row). 0: none, the "
        "stream as it always was; its draws come from a separate generator, so every other event is unchanged.",
    )


# ----------------------------------------------------------------------------- helpers


def _iso(ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds -> ISO 8601 UTC text with milliseconds ('2026-01-01T08:30:00.123Z')."""
    text = np.datetime_as_string(np.asarray(ms, dtype="int64").astype("datetime64[ms]"), unit="ms")
    return np.char.add(text, "Z")


def _to_ms(ts: pd.Series) -> np.ndarray:
    """Naive-UTC or aware timestamps -> int64 epoch milliseconds."""
    ts = pd.to_datetime(ts, utc=True)
    return ts.dt.tz_convert(None).to_numpy("datetime64[ms]").astype("int64")


def _family(title: str, cache: dict[str, RoleFamily | None]) -> RoleFamily | None:
    if title not in cache:
        name = role_family_of(title)
        cache[title] = ALL_ROLE_FAMILIES.get(name) if name else None
    return cache[title]


def _new_skill(rng: np.random.Generator, skills: list[str], family: RoleFamily | None, pool: list[str]) -> str | None:
    """A skill the entity does not list yet: from its role family if known, else from every skill seen."""
    have = set(skills)
    candidates = [s for s in ((family.core_skills + family.adjacent_skills) if family else ()) if s not in have]
    if not candidates:
        candidates = [s for s in pool if s not in have]
    return candidates[int(rng.random() * len(candidates))] if candidates else None


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.random() * len(seq))]


def _date(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms").astype("datetime64[D]"))


# ----------------------------------------------------------------------------- edits (one per kind)


def _edit_job_text(rng: np.random.Generator, f: dict, family: RoleFamily | None, pool: list[str]) -> None:
    """A skill added, a sentence appended to the description, or a team added to (or changed in) the title."""
    choice = rng.random()
    skill = _new_skill(rng, f["skills"], family, pool) if choice < 0.4 else None
    if skill is not None:
        f["skills"] = [*f["skills"], skill]
    elif choice < 0.8:
        f["description"] = f"{f['description']}\n\n{_pick(rng, _DESCRIPTION_ADDENDA)}"
    else:
        base, _, team = f["title"].partition(", ")
        f["title"] = f"{base}, {_pick(rng, [t for t in _TEAMS if t != team])}"


def _edit_profile(rng: np.random.Generator, f: dict, family: RoleFamily | None, pool: list[str]) -> None:
    """A skill added, a new headline, a summary sentence, or half a year more experience."""
    choice = rng.random()
    skill = _new_skill(rng, f["skills"], family, pool) if choice < 0.35 else None
    if skill is not None:
        f["skills"] = [*f["skills"], skill]
    elif choice < 0.55:
        tail = _pick(rng, [t for t in _HEADLINE_TAILS if not f["headline"].endswith(t)])
        f["headline"] = f"{f['title']} | {tail}"
    elif choice < 0.85:
        extra = _new_skill(rng, f["skills"], family, pool) or "public speaking"
        role = family.titles[0] if family else f["title"]
        f["summary"] = f"{f['summary']} {_pick(rng, _SUMMARY_ADDENDA).format(skill=extra, role=role)}".strip()
    else:
        f["years_experience"] = float(f["years_experience"]) + 0.5


def _edit_resume(rng: np.random.Generator, f: dict, family: RoleFamily | None, pool: list[str]) -> None:
    """A bullet added under the current position, or a skill added to the skills line."""
    lines = f["resume_text"].split("\n")
    skill = _new_skill(rng, [], family, pool) or "teamwork"
    if rng.random() < 0.6:
        duty = _pick(rng, family.duties) if family and family.duties else "delivering projects"
        bullet = f"- {duty[:1].upper()}{duty[1:]} with {skill}."
        at = next((i + 2 for i, line in enumerate(lines) if line.strip().lower() == "experience"), len(lines))
        lines.insert(min(at, len(lines)), bullet)
    else:
        lines[-1] = f"{lines[-1]}{' / ' if ' / ' in lines[-1] else ', '}{skill}"
    f["resume_text"] = "\n".join(lines)


# ----------------------------------------------------------------------------- edits in the grounded world


def _occupation(title: str, cache: dict[str, Occupation | None]) -> Occupation | None:
    """The grounded occupation of a title that no small-world family claims (``taxonomy.role_of``), else None."""
    if title not in cache:
        code = grounded_occupation_of(title)
        cache[title] = load_taxonomy().occupations.get(code) if code else None
    return cache[title]


@lru_cache(maxsize=1024)
def _adjacent_skills(code: str) -> tuple[str, ...]:
    """Skills of the occupations near ``code`` that it does not list: those of its SOC minor group or ISCO unit
    group (the grounded world's "related" occupations, whose skills its jobs and members also carry), the
    closest first (``role_fit`` 0.5: same SOC broad occupation or ISCO unit group), then by code."""
    occupations = load_taxonomy().occupations
    occ = occupations[code]
    near = [
        o
        for c, o in sorted(occupations.items())
        if c != code and (o.minor == occ.minor or (occ.isco and o.isco == occ.isco))
    ]
    near.sort(key=lambda o: -role_fit(code, o.code))  # stable: code order within each fit
    out = {s: None for o in near for s in o.skills if s not in occ.skills}
    return tuple(out)


@lru_cache(maxsize=1)
def _employment_by_soc() -> dict[str, dict[str, int]]:
    """BLS OEWS employment by occupation cell and metro: ``{soc: {area_code: employment}}``."""
    cells = load_taxonomy().area_occupations
    out: dict[str, dict[str, int]] = {}
    for soc, area, employment in zip(cells["soc"], cells["area_code"], cells["employment"]):
        out.setdefault(soc, {})[area] = int(employment)
    return out


@lru_cache(maxsize=1024)
def _metros(code: str, locations: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """The grounded metros among ``locations`` and P(metro | occupation) there (BLS OEWS employment; the metros'
    total employment where the occupation is not published in any of them)."""
    tax = load_taxonomy()
    areas = tax.areas[tax.areas["location"].isin(set(locations))]
    employment = _employment_by_soc().get(tax.occupations[code].soc, {})
    weight = np.array([employment.get(a, 0) for a in areas["area_code"]], dtype=float)
    if weight.sum() <= 0:
        weight = areas["employment"].to_numpy(dtype=float)
    return tuple(areas["location"]), weight / max(weight.sum(), 1.0)


def _new_metro(rng: np.random.Generator, occ: Occupation, current: str, locations: tuple[str, ...]) -> str | None:
    """Another metro of the marketplace, where ``occ`` employs people (OEWS), or None when there is none."""
    places, p = _metros(occ.code, locations)
    keep = [i for i, place in enumerate(places) if place != current]
    if not keep:
        return None
    cum = np.cumsum(p[keep]) if p[keep].sum() > 0 else np.arange(1, len(keep) + 1, dtype=float)
    return places[keep[min(int(np.searchsorted(cum, rng.random() * float(cum[-1]), side="right")), len(keep) - 1)]]


def _new_grounded_skill(
    rng: np.random.Generator, skills: Iterable[str], occ: Occupation, pool: list[str]
) -> str | None:
    """A skill the entity does not list yet: the occupation's own (mostly) or a related occupation's (ESCO),
    else from every skill seen."""
    have = set(skills)
    own = [s for s in occ.skills if s not in have]
    near = [s for s in _adjacent_skills(occ.code) if s not in have]
    candidates = own if own and (not near or rng.random() < GROUNDED_OWN_SKILL_SHARE) else near
    if not candidates:
        candidates = [s for s in pool if s not in have]
    return candidates[int(rng.random() * len(candidates))] if candidates else None


def _grounded_title(rng: np.random.Generator, title: str, occ: Occupation) -> str | None:
    """Another title of the same occupation: a real variant under the same seniority prefix ("Senior Operations
    Mgr" -> "Senior Business Operations Manager"), or a qualifier in brackets ("Registered Nurse (Night Shift)").
    It differs from ``title`` and resolves to ``occ`` (``taxonomy.role_of``); None when neither would."""
    head, bracket, rest = title.partition(" (")
    seniority, base = normalise_title(head)
    prefix = head.split()[0] if seniority is not None else ""
    variants = [v for v in occ.titles if v != base]
    if variants and rng.random() < GROUNDED_VARIANT_TITLE_SHARE:
        new = " ".join([prefix, title_case(_pick(rng, variants))]).strip()
        if new != title and role_of(new) == occ.code:
            return new
    current = rest[:-1] if bracket and rest.endswith(")") else ""
    new = f"{head} ({_pick(rng, [q for q in _TITLE_QUALIFIERS if q != current])})"
    return new if role_of(new) == occ.code else None


def _edit_grounded_job_text(rng: np.random.Generator, f: dict, occ: Occupation, pool: list[str]) -> None:
    """A skill added (ESCO), a sentence appended (a general one or one of the occupation's duties), or the title
    changed to another of the occupation's (a real variant, or a shift/contract qualifier; a general sentence
    instead when no other title would resolve to the occupation)."""
    choice = rng.random()
    skill = _new_grounded_skill(rng, f["skills"], occ, pool) if choice < 0.4 else None
    title = _grounded_title(rng, f["title"], occ) if choice >= 0.8 else None
    if skill is not None:
        f["skills"] = [*f["skills"], skill]
    elif title is not None:
        f["title"] = title
    elif choice < 0.6 or choice >= 0.8:
        f["description"] = f"{f['description']}\n\n{_pick(rng, _DESCRIPTION_ADDENDA)}"
    else:
        line = _pick(rng, _GROUNDED_DESCRIPTION_LINES).format(duty=styles.duty_gerund(_pick(rng, occ.duties)))
        f["description"] = f"{f['description']}\n\n{line}"


def _edit_grounded_profile(
    rng: np.random.Generator, f: dict, occ: Occupation, pool: list[str], locations: tuple[str, ...]
) -> None:
    """A skill added, a new headline, a summary sentence (a skill, the occupation, a metro, a duty), a move to
    another metro of the marketplace (where the occupation employs people), or half a year more experience."""
    choice = rng.random()
    skill = _new_grounded_skill(rng, f["skills"], occ, pool) if choice < 0.35 else None
    place = _new_metro(rng, occ, f["location"], locations) if 0.75 <= choice < 0.85 else None
    if skill is not None:
        f["skills"] = [*f["skills"], skill]
    elif choice < 0.55:
        tail = _pick(rng, [t for t in _HEADLINE_TAILS if not f["headline"].endswith(t)])
        f["headline"] = f"{f['title']} | {tail}"
    elif choice < 0.75:
        sentence = _pick(rng, _GROUNDED_SUMMARY_ADDENDA)
        there = _new_metro(rng, occ, f["location"], locations) if "{place}" in sentence else None
        if "{place}" in sentence and there is None:
            sentence = "Looking for {role} roles."
        sentence = sentence.format(
            skill=_new_grounded_skill(rng, f["skills"], occ, pool) or occ.skills[0],
            role=title_case(occ.title),
            place=there,
            duty=styles.duty_gerund(_pick(rng, occ.duties)),
        )
        f["summary"] = f"{f['summary']} {sentence}".strip()
    elif place is not None:
        f["location"] = place
    else:
        f["years_experience"] = float(f["years_experience"]) + 0.5


def _edit_grounded_resume(rng: np.random.Generator, f: dict, occ: Occupation, pool: list[str]) -> None:
    """A bullet (one of the occupation's duties, in the past tense, with a skill) under the current position, or
    a skill added to the skills line; the headings are the grounded résumés' ("WORK HISTORY", "Key skills")."""
    text = f["resume_text"]
    lines = text.split("\n")
    listed = [s for s in (*occ.skills, *_adjacent_skills(occ.code)) if s in text]
    skill = _new_grounded_skill(rng, listed, occ, pool) or occ.skills[0]
    if rng.random() < 0.6:
        duty = styles.duty_past(_pick(rng, occ.duties)).rstrip(".")
        at = next((i + 2 for i, line in enumerate(lines) if line.strip().lower() in _EXPERIENCE_HEADS), len(lines))
        lines.insert(min(at, len(lines)), f"- {duty} ({skill}).")
    else:
        at = next((i + 1 for i, line in enumerate(lines[:-1]) if line.strip().lower() in _SKILLS_HEADS), len(lines) - 1)
        sep = next((s for s in (" | ", "; ", " · ", ", ") if s in lines[at]), ", ")
        lines[at] = f"{lines[at]}{sep}{skill}"
    f["resume_text"] = "\n".join(lines)


# ----------------------------------------------------------------------------- the stream


def _period(market: Marketplace) -> tuple[int, int]:
    """[start, end) of the marketplace's period in epoch ms: whole days around everything it holds."""
    times = [market.jobs["posted_at"], market.jobs["updated_at"], market.members["updated_at"]]
    if len(market.interactions):
        times.append(market.interactions["ts"])
    lo = min(int(_to_ms(t).min()) for t in times)
    hi = max(int(_to_ms(t).max()) for t in times)
    start = lo - lo % DAY_MS
    end = hi - hi % DAY_MS + DAY_MS
    return start, end


def _entities(market: Marketplace, cfg: ChangeStreamConfig, rng: np.random.Generator, start: int, end: int):
    """Every entity's life: (entity_type, entity_id, created_ms, deleted_ms or None, origin job id or None)."""
    jobs = market.jobs
    posted = _to_ms(jobs["posted_at"])
    n = len(jobs)
    lifetime = rng.uniform(*JOB_LIFETIME_DAYS, n) * DAY_MS
    close_at = (posted + lifetime).astype("int64")
    closed = (rng.random(n) < cfg.job_close_share) & (close_at < end - 1)
    repost_at = (close_at + 3_600_000 + rng.exponential(REPOST_DELAY_DAYS * DAY_MS, n)).astype("int64")
    reposted = closed & (rng.random(n) < cfg.repost_share) & (repost_at < end - DAY_MS)

    out = []
    for i, job_id in enumerate(jobs["job_id"]):
        out.append(("job", job_id, int(posted[i]), int(close_at[i]) if closed[i] else None, None))
    for i in np.flatnonzero(reposted):
        out.append(("job", f"{jobs['job_id'].iat[i]}-R", int(repost_at[i]), None, jobs["job_id"].iat[i]))

    members = market.members
    m = len(members)
    first_seen = pd.Series(np.full(m, np.nan), index=members["member_id"])
    if len(market.interactions):
        first = market.interactions.groupby("member_id")["ts"].min()
        first_seen.loc[first.index] = _to_ms(first.reset_index(drop=True))
    first_ms = first_seen.to_numpy()
    unseen = np.isnan(first_ms)
    first_ms = np.where(unseen, start + rng.random(m) * (end - start), first_ms)
    signup = first_ms - 3_600_000 - rng.exponential(SIGNUP_LEAD_DAYS * DAY_MS, m)
    # Those who would have signed up before the period joined during its first hours instead.
    early = start + rng.random(m) * np.clip(first_ms - start, 0, DAY_MS)
    signup = np.minimum(np.where(signup < start, early, signup), end - DAY_MS).astype("int64")
    leaves = rng.random(m) < cfg.member_delete_share
    leave_at = (signup + DAY_MS + rng.random(m) * np.maximum(end - signup - 2 * DAY_MS, 0)).astype("int64")
    resume_lag = (rng.random(m) * RESUME_AFTER_PROFILE_MS).astype("int64")
    for i, member_id in enumerate(members["member_id"]):
        gone = int(leave_at[i]) if leaves[i] else None
        out.append(("profile", member_id, int(signup[i]), gone, None))
        out.append(("resume", member_id, int(signup[i] + resume_lag[i]), None if gone is None else gone + 1, None))
    return out


def _schedule(cfg: ChangeStreamConfig, rng: np.random.Generator, entities: list, end: int) -> pd.DataFrame:
    """When each event happens: creations, updates drawn by the mix over each entity's life, deletes."""
    etype = np.array([e[0] for e in entities], dtype=object)
    created = np.array([e[2] for e in entities], dtype="int64")
    until = np.array([e[3] if e[3] is not None else end for e in entities], dtype="int64")
    deleted = np.array([e[3] is not None for e in entities])

    n_fixed = len(entities) + int(deleted.sum())
    n_updates = cfg.n_events - n_fixed
    if n_updates < 0:
        raise ValueError(
            f"n_events must be >= the {n_fixed} creations and deletes this marketplace implies, got {cfg.n_events}"
        )
    kinds = list(UPDATE_KINDS)
    shares = np.array([getattr(cfg.mix, k) for k in kinds])
    counts = rng.multinomial(n_updates, shares / shares.sum())

    rows_e, rows_t, rows_k = [np.arange(len(entities))], [created], [np.full(len(entities), -1)]
    span = np.maximum(until - created - 2, 0).astype(float)  # updates fall strictly inside the life
    for k, (kind, count) in enumerate(zip(kinds, counts)):
        if count == 0:
            continue
        ent_type = UPDATE_KINDS[kind][0]
        weight = np.where(etype == ent_type, span, 0.0)
        if weight.sum() <= 0:
            raise ValueError(f"mix.{kind} is {getattr(cfg.mix, kind)} but no {ent_type} lives long enough to edit")
        who = rng.choice(len(entities), size=int(count), p=weight / weight.sum())
        u = rng.random(int(count))
        if kind == "job_text_edit":
            u = u**3  # postings are mostly corrected in their first days
        rows_e.append(who)
        rows_t.append(created[who] + 1 + (u * span[who]).astype("int64"))
        rows_k.append(np.full(int(count), k))
    gone = np.flatnonzero(deleted)
    rows_e.append(gone)
    rows_t.append(until[gone])
    rows_k.append(np.full(len(gone), len(kinds)))
    plan = pd.DataFrame(
        {"entity": np.concatenate(rows_e), "t": np.concatenate(rows_t), "k": np.concatenate(rows_k)}
    ).sort_values(["entity", "t", "k"], kind="stable")
    # One entity never has two events at one millisecond, so "the latest event" is always defined.
    t = plan["t"].to_numpy().copy()
    ent = plan["entity"].to_numpy()
    for i in range(1, len(t)):
        if ent[i] == ent[i - 1] and t[i] <= t[i - 1]:
            t[i] = t[i - 1] + 1
    plan["t"] = t
    return plan.reset_index(drop=True)


def _initial_fields(entity_type: str, row: Mapping[str, Any], created: int) -> dict:
    """The fields an entity is created with: its template fields plus the extras the template ignores."""
    if entity_type == "job":
        fields = {
            "title": str(row["title"]),
            "company": str(row["company"]),
            "location": str(row["location"]),
            "remote": bool(row["remote"]),
            "seniority": str(row["seniority"]),
            "min_years": int(row["min_years"]),
            "skills": [str(s) for s in row["skills"]],
            "description": str(row["description"]),
        }
        return fields | {
            "posted_at": str(_iso(np.array([created]))[0]),
            "status": "open",
            "view_count": 0,
            "application_count": 0,
            "recruiter_notes": "",
        }
    if entity_type == "profile":
        return {
            "headline": str(row["headline"]),
            "title": str(row["title"]),
            "location": str(row["location"]),
            "years_experience": float(row["years_experience"]),
            "skills": [str(s) for s in row["skills"]],
            "summary": str(row["summary"]),
            "open_to_work": False,
            "profile_views": 0,
        }
    return {"resume_text": str(row["resume_text"]), "file_name": "resume.pdf", "uploaded_at": ""}


def generate_change_stream(market: Marketplace, cfg: ChangeStreamConfig | None = None) -> pd.DataFrame:
    """The change events of ``market`` over its period, ordered by event time (see the module docstring).

    Same marketplace and ``cfg`` give an identical frame. Raises ``ValueError`` when
    ``cfg.n_events`` cannot hold the creations and deletes the marketplace implies.
    """
    cfg = cfg or ChangeStreamConfig()
    rng = np.random.default_rng(cfg.seed)
    start, end = _period(market)
    entities = _entities(market, cfg, rng, start, end)
    plan = _schedule(cfg, rng, entities, end)
    tailored = _apply_edits(market, cfg, entities, end)  # entity index -> [(t, job_id)], empty at share 0
    edit_rng = np.random.default_rng([cfg.seed, APPLY_EDIT_STREAM, 1])  # what each of those edits changes

    jobs = market.jobs.set_index("job_id")
    members = market.members.set_index("member_id")
    pool = sorted({s for col in (jobs["skills"], members["skills"]) for skills in col for s in skills})
    families: dict[str, RoleFamily | None] = {}
    occupations: dict[str, Occupation | None] = {}  # titles no family claims: the grounded world's
    locations = tuple(sorted({str(x) for col in (jobs["location"], members["location"]) for x in col}))
    kinds = list(UPDATE_KINDS)
    final_job_fields: dict[str, dict] = {}  # a repost copies its original's last text

    # Originals before reposts, so a repost sees the text its original was closed with.
    order = sorted(range(len(entities)), key=lambda i: entities[i][4] is not None)
    by_entity = {e: g for e, g in plan.groupby("entity", sort=False)}
    records = []
    for i in order:
        etype, eid, created, _, origin = entities[i]
        group = by_entity[i]
        if etype == "job":
            fields = _initial_fields("job", jobs.loc[origin or eid], created)
            if origin is not None:
                fields |= {k: final_job_fields[origin][k] for k in ("title", "skills", "description")}
        else:
            fields = _initial_fields(etype, members.loc[eid], created)
        title = members.loc[eid, "title"] if etype == "resume" else fields["title"]
        family = _family(title, families)
        occupation = _occupation(title, occupations) if family is None else None
        timeline = [(int(t), int(k), None) for t, k in zip(group["t"].to_numpy(), group["k"].to_numpy())]
        if i in tailored:
            timeline = _merge_timeline(timeline, tailored[i])
        for t, k, applied_job in timeline:
            if applied_job is not None:  # an apply-prompted edit (cfg.apply_edit_share), from its own generator
                fields = dict(fields)
                _tailor_profile(edit_rng, fields, jobs.loc[applied_job])
                records.append((etype, eid, "upsert", t, APPLY_EDIT_KIND, True, fields))
                continue
            if k == len(kinds):  # the delete
                records.append((etype, eid, "delete", t, f"{etype}_deleted", False, {}))
                continue
            if k >= 0:
                kind = kinds[k]
            else:
                kind = "job_reposted" if origin else ("job_posted" if etype == "job" else f"{etype}_created")
            fields = dict(fields)
            if kind == "resume_created":
                fields["uploaded_at"] = str(_iso(np.array([t]))[0])
            elif kind == "job_stats":
                views = 1 + int(rng.poisson(STATS_EXTRA_VIEWS))
                fields["view_count"] += views
                fields["application_count"] += int(rng.binomial(views, APPLY_PER_VIEW))
            elif kind == "job_status":
                fields["status"] = "paused" if fields["status"] == "open" else "open"
            elif kind == "job_notes":
                note = _pick(rng, [n for n in _RECRUITER_NOTES if not fields["recruiter_notes"].endswith(n)])
                fields["recruiter_notes"] = f"{_date(t)}: {note}"
            elif kind == "job_refresh":
                fields["refreshed_at"] = str(_iso(np.array([t]))[0])
            elif kind == "job_text_edit" and occupation is not None:
                _edit_grounded_job_text(rng, fields, occupation, pool)
            elif kind == "job_text_edit":
                _edit_job_text(rng, fields, family, pool)
            elif kind == "profile_activity":
                if rng.random() < OPEN_TO_WORK_TOGGLE:
                    fields["open_to_work"] = not fields["open_to_work"]
                else:
                    fields["profile_views"] += 1 + int(rng.poisson(PROFILE_VIEWS_EXTRA))
            elif kind == "profile_edit" and occupation is not None:
                _edit_grounded_profile(rng, fields, occupation, pool, locations)
            elif kind == "profile_edit":
                _edit_profile(rng, fields, family, pool)
            elif kind == "resume_reupload":
                fields["uploaded_at"] = str(_iso(np.array([t]))[0])
            elif kind == "resume_edit" and occupation is not None:
                _edit_grounded_resume(rng, fields, occupation, pool)
            elif kind == "resume_edit":
                _edit_resume(rng, fields, family, pool)
            changes_text = UPDATE_KINDS[kind][1] if kind in UPDATE_KINDS else True  # a creation
            records.append((etype, eid, "upsert", t, kind, changes_text, fields))
        if etype == "job":
            final_job_fields[eid] = fields

    stream = pd.DataFrame.from_records(
        records, columns=["entity_type", "entity_id", "op", "event_time_ms", "kind", "text_changed", "fields"]
    )
    stream = stream.sort_values(["event_time_ms", "entity_type", "entity_id"], kind="stable").reset_index(drop=True)
    stream.insert(0, "seq", np.arange(len(stream), dtype="int64"))
    stream.insert(4, "event_time", _iso(stream["event_time_ms"].to_numpy()).astype(object))
    return _deliver(stream, cfg, rng)


def _apply_edits(market: Marketplace, cfg: ChangeStreamConfig, entities: list, end: int) -> dict[int, list]:
    """When members edit their profile toward a job they applied to: ``{profile entity index: [(t, job_id)]}``.

    Each apply is followed by such an edit with probability ``cfg.apply_edit_share``, 1 minute + Exp(1 day)
    later, if the profile still exists then. Drawn from ``default_rng([seed, APPLY_EDIT_STREAM, 0])``.
    """
    if cfg.apply_edit_share == 0 or not len(market.interactions):
        return {}
    rng = np.random.default_rng([cfg.seed, APPLY_EDIT_STREAM, 0])
    applies = market.interactions[market.interactions["action"] == "apply"]
    profile_of = {e[1]: i for i, e in enumerate(entities) if e[0] == "profile"}
    chosen = rng.random(len(applies)) < cfg.apply_edit_share
    delay = (60_000 + rng.exponential(APPLY_EDIT_DELAY_DAYS * DAY_MS, len(applies))).astype("int64")
    at = _to_ms(applies["ts"].reset_index(drop=True)) + delay
    out: dict[int, list] = {}
    for member_id, job_id, t, pick in zip(applies["member_id"], applies["job_id"], at, chosen):
        i = profile_of.get(member_id)
        if not pick or i is None:
            continue
        created, deleted = entities[i][2], entities[i][3]
        if created < t < (deleted if deleted is not None else end):
            out.setdefault(i, []).append((int(t), str(job_id)))
    return out


def _merge_timeline(timeline: list[tuple], edits: list[tuple[int, str]]) -> list[tuple]:
    """An entity's scheduled events with its apply-prompted edits, by time; an edit never shares a millisecond."""
    taken = {t for t, _, _ in timeline}
    merged = list(timeline)
    for t, job_id in sorted(edits):
        while t in taken:
            t += 1
        taken.add(t)
        merged.append((t, -2, job_id))
    return sorted(merged, key=lambda e: e[0])


def _tailor_profile(rng: np.random.Generator, f: dict, job: pd.Series) -> None:
    """The profile moves toward ``job``: up to two of its skills the member lacks, a headline naming its role.

    Always changes the templated text: when both are there already, a summary sentence names the role.
    """
    before = (list(f["skills"]), f["headline"], f["summary"])
    missing = [str(s) for s in job["skills"] if str(s) not in set(f["skills"])]
    if missing:
        order = np.argsort(rng.random(len(missing)), kind="stable")[: 1 + int(rng.random() < 0.5)]
        f["skills"] = [*f["skills"], *(missing[j] for j in sorted(order))]
    role = str(job["title"]).partition(", ")[0]
    headline = f"{f['title']} | Open to {role} roles"
    if f["headline"] != headline:
        f["headline"] = headline
    if (list(f["skills"]), f["headline"], f["summary"]) == before:
        f["summary"] = f"{f['summary']} Recently applied for {role} positions.".strip()


def _deliver(stream: pd.DataFrame, cfg: ChangeStreamConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Duplicate and locally shuffle the clean stream (``cfg.duplicates``, ``cfg.shuffle_window``)."""
    if cfg.duplicates == 0 and cfg.shuffle_window == 0:
        return stream
    position = np.arange(len(stream), dtype=float)
    copies = np.flatnonzero(rng.random(len(stream)) < cfg.duplicates)
    out = pd.concat([stream, stream.iloc[copies]], ignore_index=True)
    key = np.concatenate([position, position[copies] + rng.uniform(1, DUPLICATE_SPREAD, len(copies))])
    key = key + rng.uniform(0, cfg.shuffle_window, len(key))
    return out.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)


# ----------------------------------------------------------------------------- views of a stream


def to_events(stream: pd.DataFrame) -> list[dict]:
    """The stream's events as bare contract dicts (entity_type, entity_id, op, event_time, fields), in order."""
    cols = [stream[k].tolist() for k in EVENT_KEYS]
    return [dict(zip(EVENT_KEYS, values)) for values in zip(*cols)]


def stream_summary(stream: pd.DataFrame) -> dict:
    """Counts and shares of a generated stream, computed on its clean events (duplicates dropped).

    ``inference_reduction`` is upserts / upserts that change the templated text: how
    many fewer inferences per-entity change detection makes than a naive updater that
    embeds every upsert.
    """
    clean = stream.drop_duplicates("seq")
    upserts = clean[clean["op"] == "upsert"]
    changed = int(upserts["text_changed"].sum())
    kinds = clean["kind"].value_counts()
    return {
        "events": int(len(clean)),
        "delivered": int(len(stream)),
        "upserts": int(len(upserts)),
        "deletes": int((clean["op"] == "delete").sum()),
        "text_changing_upserts": changed,
        "inference_reduction": len(upserts) / changed if changed else float("inf"),
        "kinds": {k: int(v) for k, v in kinds.sort_index().items()},
        "entity_types": {k: int(v) for k, v in clean["entity_type"].value_counts().sort_index().items()},
    }


def _event_ms(event: Mapping[str, Any]) -> int:
    if "event_time_ms" in event and event["event_time_ms"] is not None:
        return int(event["event_time_ms"])
    ts = pd.Timestamp(event["event_time"])
    if ts.tzinfo is None:
        raise ValueError(f"event_time must carry a timezone, got {event['event_time']!r}")
    return int(ts.tz_convert("UTC").tz_localize(None).floor("ms").value // 1_000_000)


def latest_state(events: pd.DataFrame | Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict]:
    """The oracle of the nearline tests: per (entity_type, entity_id), the latest event by event time.

    Delivery order does not matter: duplicates, redeliveries and out-of-order events
    give the same state. A delete that is the latest event means the entity is gone
    (its entry has ``op == "delete"``). Two *different* events of one entity at the
    same millisecond have no defined winner and raise ``ValueError`` (the generator
    never makes them; identical duplicates are fine).
    """
    records = events.to_dict("records") if isinstance(events, pd.DataFrame) else events
    best: dict[tuple[str, str], tuple[int, dict]] = {}
    for event in records:
        key = (event["entity_type"], event["entity_id"])
        ms = _event_ms(event)
        bare = {k: event[k] for k in EVENT_KEYS}
        held = best.get(key)
        if held is None or ms > held[0]:
            best[key] = (ms, bare)
        elif ms == held[0] and (held[1]["op"], held[1]["fields"]) != (bare["op"], bare["fields"]):
            raise ValueError(
                f"entity {key}: two different events at event_time {bare['event_time']!r}; the latest is undefined"
            )
    return {key: event for key, (_, event) in best.items()}


def row_versions(stream: pd.DataFrame) -> pd.DataFrame:
    """Every version of every entity row that naive database change tracking would emit.

    One version per save in ``stream`` (duplicates dropped), plus one per single counter
    increment the stream only publishes in aggregate: a ``job_stats`` event that adds 3
    views and 1 application was 4 row writes (``COUNTER_FIELDS``), the first three
    spread evenly between the entity's previous event and this one. A delete is a
    version with ``op == "delete"`` and no fields. This is the input of the bootstrap's
    dedup (LinkedIn: ~6x more row versions than distinct contents).

    Columns: entity_type, entity_id, version (1, 2, ... per entity), op, event_time_ms,
    event_time, fields; ordered by entity, then version.
    """
    clean = stream.drop_duplicates("seq") if "seq" in stream else stream
    clean = clean.sort_values(["entity_type", "entity_id", "event_time_ms"], kind="stable")
    out_type, out_id, out_op, out_ms, out_fields = [], [], [], [], []
    prev_key, prev_ms, prev_fields = None, 0, {}
    for etype, eid, op, ms, fields in zip(
        clean["entity_type"], clean["entity_id"], clean["op"], clean["event_time_ms"], clean["fields"]
    ):
        key = (etype, eid)
        if key != prev_key:
            prev_key, prev_ms, prev_fields = key, int(ms), {}
        steps = []
        if op == "upsert" and prev_fields:
            for name in COUNTER_FIELDS:
                grew = int(fields.get(name, 0)) - int(prev_fields.get(name, 0))
                steps += [name] * max(grew, 0)
        current = dict(prev_fields)
        for j, name in enumerate(steps[:-1]):  # the increments before the one the event shows
            current = dict(current)
            current[name] = int(current[name]) + 1
            out_type.append(etype)
            out_id.append(eid)
            out_op.append("upsert")
            out_ms.append(prev_ms + (int(ms) - prev_ms) * (j + 1) // len(steps))
            out_fields.append(current)
        out_type.append(etype)
        out_id.append(eid)
        out_op.append(op)
        out_ms.append(int(ms))
        out_fields.append(fields)
        prev_ms, prev_fields = int(ms), (fields if op == "upsert" else {})
    versions = pd.DataFrame(
        {"entity_type": out_type, "entity_id": out_id, "op": out_op, "event_time_ms": out_ms, "fields": out_fields}
    )
    versions.insert(2, "version", versions.groupby(["entity_type", "entity_id"]).cumcount().astype("int64") + 1)
    versions.insert(5, "event_time", _iso(versions["event_time_ms"].to_numpy()).astype(object))
    return versions.reset_index(drop=True)
