"""A seeded synthetic job marketplace: jobs, members and their interactions.

The embedded default of jude, so the whole project runs on one laptop with no
data. Everything is a function of ``SyntheticConfig.seed`` (same seed, identical
frames) and built on real vocabularies: company and person names from Faker,
role families, skills and real city names from :mod:`jude.data.vocab`.

The *world* (role families, cities, the ~400 employers) is the same for every
seed; the seed draws a marketplace from it. So unshifted marketplaces from two
seeds are alike in distribution: a drift detector comparing their embeddings
finds nothing (a classifier cannot tell the seeds apart by, say, company
names), while every ``shift`` is found.

Tables (exactly :data:`jude.data.schema.JOBS`, ``MEMBERS``, ``INTERACTIONS``):

- **jobs**: a title from a role family with a seniority prefix that agrees with
  the ``seniority`` column ("Senior Data Engineer" is senior), ``min_years`` in
  that seniority's band, ~20% remote, skills (mostly the family's core skills
  plus a few adjacent ones), a three-paragraph description (company blurb,
  responsibilities, requirements), ``posted_at`` spread over the period (a
  backlog on day one, so there is something to recommend from the start).
- **members**: current title (seniority from years of experience), headline,
  skills (core + adjacent + a little noise), a 2-3 sentence summary and a
  longer resume (2-4 positions with companies, years and bullets; education).
  About 15% are career changers whose earlier positions, and some skills,
  belong to another family.
- **interactions**: each member sees ``impressions_per_member`` jobs over the
  period, each job posted before (and at most 60 days before) the impression;
  some impressions become a view, and views become an apply or a dismiss.

How impressions are chosen (a multi-source recommender, as in production):
each impression draws one *channel*, then a job from that channel's candidates
(favouring popular jobs); an empty channel falls back to a random job.

====================  =====  ===================================================
channel               share  candidates
====================  =====  ===================================================
family                0.35   the member's role family
family_elsewhere      0.08   same family, on-site in another city    (hard case)
underqualified        0.07   same family, location fits, min_years > years (hard case)
confusable            0.12   a confusable family ("Sales Engineer" for a
                             "Software Engineer")                    (hard case)
city                  0.13   any family, in the member's city or remote
random                0.25   any job
====================  =====  ===================================================

The latent engagement model (:func:`pair_features`, :func:`engagement_probabilities`)::

    role      = family_fit(member family, job family)      1 same, 0.5 related, 0 otherwise
    location  = 1 if the job is remote or in the member's city, else 0
    years_fit = 1 if years >= min_years else exp((years - min_years) / 1.5)
                (x 0.7 when over-qualified by more than 8 years)
    skills    = skill_overlap(job skills, member skills)   share of required skills the member has
    qual      = years_fit * (0.4 + 0.6 * skills)
    fit       = role * location * qual                     in [0, 1]: a match needs all three

    popularity ~ N(0, 0.5) per job, +1.2 for the 10% "hot" jobs (applies regardless of fit)
    P(view    | impression)    = sigmoid(-1.4 + 1.4 role + 0.9 confusable + 0.4 location + popularity)
    P(apply   | view)          = sigmoid(-4.2 + 6.5 fit + 0.6 role + popularity + noise), noise ~ N(0, 0.5)
    P(dismiss | view, no apply) = sigmoid(-2.0 + 2.5 (1 - fit))

Titles attract views by their words (a confusable title gets viewed), but
applies follow fit, so topical similarity alone does not predict them. About
3-8% of impressions become applies. Timestamps: view 30 s + Exp(10 min) after
the impression, apply 60 s + Exp(20 min) after the view, dismiss 5 s + Exp(1 min).

The truth (:func:`truth_grades`): what a member *should* apply to, graded 0-3
from the latent apply propensity of the pair, P(apply | view) above for a job of
average popularity (0) and no noise, with fixed thresholds::

    grade 3  propensity >= 0.7   (same role: fit >= 0.684)
    grade 2  propensity >= 0.5   (same role: fit >= 0.554)
    grade 1  propensity >= 0.2   (same role: fit >= 0.341; an adjacent role: fit >= 0.387, at most grade 1)
    grade 0  otherwise           (a different role never gets past 0.015)

It reads the same latent variables as the engagement model and nothing else:
no judge, no rubric constant (the rubric's skill-share and years thresholds of
:mod:`jude.labels.rubric` are other, discrete cuts of those facts), no
popularity (a hot job is applied to whatever the fit) and no noise. Relevant
under the truth means grade >= :data:`TRUTH_RELEVANT_GRADE`.

The unseen world (:func:`generate_unseen_world`): jobs and members drawn,
with a separate seeded generator, from role families and cities that never occur
in the marketplace the model was trained on (``UNSEEN_ROLE_FAMILIES`` and the
shift families; the shift cities and real cities of other countries from Faker's
locales), written in the same style, and graded by the truth.

The grounded world (``cfg.world == "grounded"``, :mod:`jude.data.grounded`): the jobs and members are drawn
from real O*NET-SOC occupations (ESCO title variants and skills), US metropolitan areas weighted by BLS OEWS
employment, with pay that fits the place, in several writing styles per field; the interactions, the latent
engagement model and the truth above are this module's, unchanged: the role of a title, its fit and its
look-alikes come from :func:`jude.data.grounded.taxonomy.role_of` / ``role_fit`` / ``roles_confusable`` (the
taxonomy's hierarchy instead of hand-made families). Its unseen world is the small world's
(:func:`generate_unseen_world`): no title of it is a grounded title.

Distribution shift for monitoring (``cfg.shift``): ``roles`` draws every job
and member from families that never occur unshifted (healthcare, logistics,
legal); ``cities`` uses a disjoint set of cities on other continents; ``style``
writes descriptions, headlines, summaries and resumes tersely (all-caps headers,
bullet lists, abbreviations); ``all`` does all three. Unshifted data from two
seeds come from the same distributions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np
import pandas as pd
from faker import Faker
from tqdm.auto import tqdm

from jude.config import SyntheticConfig
from jude.data import schema
from jude.data.grounded import world as grounded
from jude.data.grounded.taxonomy import role_fit, role_of, roles_confusable
from jude.data.schema import Marketplace
from jude.data.vocab import (
    ALL_ROLE_FAMILIES,
    CITIES,
    CITY_WEIGHTS,
    MIN_YEARS_BY_SENIORITY,
    ROLE_FAMILIES,
    SENIORITY_PREFIXES,
    SHIFT_CITIES,
    SHIFT_ROLE_FAMILIES,
    RoleFamily,
    seniority_for_years,
)
from jude.entities import Job, Member, record_row

# --- readable defaults of the simulation (one-line reasons) ---
REMOTE_SHARE = 0.2  # share of remote postings
BACKLOG_SHARE = 0.2  # jobs already open on day one, so early impressions have candidates
JOB_FRESH_DAYS = 60  # the recommender stops showing a posting after this many days
CAREER_CHANGER_SHARE = 0.15  # members whose history includes another role family
HOT_JOB_SHARE = 0.1  # "hot" postings that get applies regardless of fit
COMPANY_UNIVERSE_SEED = 20260101  # the employers are fixed for every seed, like the cities
COMPANIES_PER_INDUSTRY = 8  # ~400 employers in all
JOB_SENIORITY_WEIGHTS = {"junior": 0.2, "mid": 0.35, "senior": 0.3, "lead": 0.15}
CHANNELS = {
    "family": 0.35,
    "family_elsewhere": 0.08,
    "underqualified": 0.07,
    "confusable": 0.12,
    "city": 0.13,
    "random": 0.25,
}
# The truth's fixed cuts on the latent apply propensity (module docstring); independent of the judge's rubric.
TRUTH_PROPENSITY_THRESHOLDS = (0.2, 0.5, 0.7)  # grades 1, 2, 3
TRUTH_RELEVANT_GRADE = 2  # relevant under the truth: a grade 2 or 3 pair
UNSEEN_SALT = 7_510_117  # the unseen world's generators: default_rng([seed, UNSEEN_SALT]), apart from every draw
# Faker locales whose city lists are real places, in countries no training marketplace has (Latin script).
UNSEEN_CITY_LOCALES = {
    "fi_FI": "Finland",
    "hr_HR": "Croatia",
    "sl_SI": "Slovenia",
    "sk_SK": "Slovakia",
    "es_CL": "Chile",
    "es_CO": "Colombia",
    "en_IN": "India",
    "id_ID": "Indonesia",
    "az_AZ": "Azerbaijan",
}
UNSEEN_CITIES_PER_LOCALE = 2

_SIZES = ("small", "mid-sized", "fast-growing", "well-established", "venture-backed", "family-owned")
_TEAMS = ("Platform", "Core", "Growth", "Payments", "Insights", "Operations", "Customer", "Infrastructure")


@dataclass(frozen=True)
class _World:
    """The vocabulary a marketplace is drawn from (shifted or not)."""

    families: tuple[RoleFamily, ...]
    cities: tuple[str, ...]
    city_weights: np.ndarray  # (C,) sums to 1
    terse: bool  # the "style" shift

    @classmethod
    def for_shift(cls, shift: str) -> _World:
        roles = shift in ("roles", "all")
        new_cities = shift in ("cities", "all")
        families = tuple((SHIFT_ROLE_FAMILIES if roles else ROLE_FAMILIES).values())
        cities = SHIFT_CITIES if new_cities else CITIES
        weights = np.ones(len(cities)) if new_cities else np.asarray(CITY_WEIGHTS, dtype=float)
        return cls(families, cities, weights / weights.sum(), shift in ("style", "all"))

    @classmethod
    def unseen_from(cls, trained: _World) -> _World:
        """The world a model trained on ``trained`` never saw: every other family, every other city."""
        names = {f.name for f in trained.families} | set(ROLE_FAMILIES)  # never the default training families
        families = tuple(f for f in ALL_ROLE_FAMILIES.values() if f.name not in names)
        seen = {_city_name(c).lower() for c in trained.cities}
        cities = tuple(c for c in (*SHIFT_CITIES, *_faker_cities(), *CITIES) if _city_name(c).lower() not in seen)
        cities = tuple(dict.fromkeys(cities))
        return cls(families, cities, np.full(len(cities), 1.0 / len(cities)), trained.terse)


# ----------------------------------------------------------------------------- helpers


def _pick(rng: np.random.Generator, seq, k: int | None = None, p=None):
    """One element (k None) or k distinct elements of ``seq``, in a seeded order.

    Written with ``rng.random`` rather than ``rng.choice``: this is called tens of
    thousands of times and ``choice``'s overhead dominated generation time.
    """
    n = len(seq)
    if k is None:
        if p is None:
            return seq[int(rng.random() * n)]
        return seq[min(int(np.searchsorted(np.cumsum(p), rng.random() * float(np.sum(p)), side="right")), n - 1)]
    order = np.argsort(rng.random(n), kind="stable")[: min(k, n)]
    return [seq[i] for i in order]


def _join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _titled(rng: np.random.Generator, family: RoleFamily, seniority: str, base: str | None = None) -> str:
    """A title whose prefix states ``seniority``: 'Senior Data Engineer', 'Data Engineer' (mid)."""
    base = base or _pick(rng, family.titles, p=_title_weights(family))
    prefix = _pick(rng, SENIORITY_PREFIXES[seniority])
    return f"{prefix} {base}".strip()


def _title_weights(family: RoleFamily) -> np.ndarray:
    w = np.array([2.0] + [1.0] * (len(family.titles) - 1))  # the canonical title is the most common
    return w / w.sum()


def _years_text(years: float) -> str:
    if years < 1:
        return "less than a year"
    n = int(years)
    return "1 year" if n == 1 else f"{n} years"


def _city_name(location: str) -> str:
    return location.split(",")[0]


def _ts(start: pd.Timestamp, days: np.ndarray) -> pd.Series:
    """Day offsets (floats) -> timestamps rounded to the second."""
    return pd.Series(start + pd.to_timedelta(np.asarray(days) * 86400.0, unit="s")).dt.round("s")


# ----------------------------------------------------------------------------- jobs


@lru_cache(maxsize=1)
def _company_universe() -> dict[str, tuple[str, ...]]:
    """Industry -> the employers of that industry: Faker company names, the same for every seed.

    Like the cities, the set of employers is part of the world, not of one draw
    from it: two unshifted marketplaces share their companies (a classifier
    must not tell two seeds apart by company names), while ``cfg.seed`` decides
    which of them post which jobs.
    """
    fake = Faker("en_US", use_weighting=False)
    fake.seed_instance(COMPANY_UNIVERSE_SEED)
    industries = sorted({i for f in (*ROLE_FAMILIES.values(), *SHIFT_ROLE_FAMILIES.values()) for i in f.industries})
    return {ind: tuple(fake.company() for _ in range(COMPANIES_PER_INDUSTRY)) for ind in industries}


def _job_description(
    rng: np.random.Generator,
    world: _World,
    title: str,
    company: str,
    industry: str,
    location: str,
    remote: bool,
    min_years: int,
    skills: list[str],
    adjacent: list[str],
    family: RoleFamily,
) -> str:
    duties = _pick(rng, family.duties, 3)
    size = _pick(rng, _SIZES)
    people = _pick(rng, (40, 80, 150, 300, 800, 2000, 5000))
    team = _pick(rng, _TEAMS)
    core = skills[: max(2, len(skills) - len(adjacent))]
    where = "This role is fully remote." if remote else f"This position is based in our {_city_name(location)} office."
    if world.terse:
        header = _pick(rng, ("ABOUT US", "WHO WE ARE", "COMPANY"))
        must = _pick(rng, ("MUST HAVE", "REQUIREMENTS", "YOU BRING"))
        lines = [
            f"{header}: {company.upper()} / {industry} / {people}+ ppl",
            f"{_pick(rng, ('ROLE', 'THE JOB', 'WHAT YOU DO'))}:",
            *[f"- {d}" for d in duties[:2]],
            f"{must}:",
            f"- {min_years}+ yrs exp" if min_years else "- entry level ok",
            *[f"- {s}" for s in core[:4]],
        ]
        if adjacent:
            lines.append(f"NICE TO HAVE: {' / '.join(adjacent)}")
        lines.append(f"REMOTE: {'YES' if remote else 'NO - ' + _city_name(location).upper()}")
        return "\n".join(lines)

    blurb = _pick(
        rng,
        (
            f"{company} is a {size} {industry} company with about {people} people.",
            f"At {company} we build products for the {industry} sector. We are a {size} team of {people}.",
            f"{company} ({industry}) is growing and looking for a {title} to join the {team} team.",
            f"Join {company}, a {size} {industry} business with around {people} employees.",
        ),
    )
    resp = _pick(
        rng,
        (
            f"As a {title}, you will be {duties[0]} and {duties[1]}.",
            f"In this role you will spend your time {duties[0]}, {duties[1]} and {duties[2]}.",
            f"You will join the {team} team and be responsible for {duties[0]}. You will also be {duties[1]}.",
            f"Day to day, you will be {duties[0]}. Expect to be {duties[1]} as well.",
        ),
    )
    if min_years == 0:
        req = _pick(
            rng,
            (
                f"This is an entry-level role: we expect solid basics in {_join(core[:3])}.",
                f"No prior experience is required, but you know {_join(core[:3])}.",
            ),
        )
    else:
        req = _pick(
            rng,
            (
                f"You have at least {min_years} years of experience and know {_join(core)}.",
                f"We are looking for {min_years}+ years in a similar role, strong {core[0]} and {core[1]}, "
                f"and familiarity with {_join(core[2:] or core[:1])}.",
                f"Requirements: {min_years}+ years of experience; {', '.join(core)}.",
            ),
        )
    if adjacent:
        req += " " + _pick(
            rng,
            (
                f"Experience with {_join(adjacent)} is a plus.",
                f"Nice to have: {', '.join(adjacent)}.",
                f"Bonus points for {_join(adjacent)}.",
            ),
        )
    return "\n\n".join([blurb, f"{resp} {where}", req])


def _make_jobs(
    cfg: SyntheticConfig,
    rng: np.random.Generator,
    world: _World,
    start: pd.Timestamp,
    companies: dict[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    companies = companies or _company_universe()
    seniorities = list(JOB_SENIORITY_WEIGHTS)
    sen_p = np.array(list(JOB_SENIORITY_WEIGHTS.values()))
    rows = []
    for i in range(cfg.n_jobs):
        family = _pick(rng, world.families)
        seniority = _pick(rng, seniorities, p=sen_p)
        lo, hi = MIN_YEARS_BY_SENIORITY[seniority]
        min_years = int(rng.integers(lo, hi + 1))
        title = _titled(rng, family, seniority)
        industry = _pick(rng, family.industries)
        company = _pick(rng, companies[industry])
        location = _pick(rng, world.cities, p=world.city_weights)
        remote = bool(rng.random() < REMOTE_SHARE)
        core = _pick(rng, family.core_skills, int(rng.integers(4, 7)))
        adjacent = _pick(rng, family.adjacent_skills, int(rng.integers(0, 3)))
        skills = core + adjacent
        description = _job_description(
            rng, world, title, company, industry, location, remote, min_years, skills, adjacent, family
        )
        rows.append(
            record_row(
                Job,
                later=("posted_at", "updated_at"),  # drawn for the whole table below
                job_id=f"J{i:05d}",
                title=title,
                company=company,
                location=location,
                remote=remote,
                seniority=seniority,
                min_years=min_years,
                skills=skills,
                description=description,
            )
        )
    jobs = pd.DataFrame(rows)

    # posted_at: a backlog open on day one, the rest uniform over the period (leaving a last day).
    n = cfg.n_jobs
    backlog = rng.random(n) < BACKLOG_SHARE
    backlog[0] = True  # at least one job is open from day one, so every member gets an impression
    posted = np.where(backlog, rng.uniform(0.0, 1.0, n), rng.uniform(1.0, cfg.days - 1.0, n))
    edited = rng.random(n) < 0.4
    updated = np.minimum(posted + np.where(edited, rng.uniform(0.0, 14.0, n), 0.0), cfg.days)
    jobs["posted_at"] = _ts(start, posted)
    jobs["updated_at"] = _ts(start, updated)
    jobs["updated_at"] = jobs[["posted_at", "updated_at"]].max(axis=1)  # rounding never reverses them
    return jobs


# ----------------------------------------------------------------------------- members


def _member_years(rng: np.random.Generator) -> float:
    """Years of experience: a right-skewed spread from fresh graduates to veterans (0-25)."""
    return float(np.clip(np.round(rng.gamma(2.2, 2.6) * 2) / 2, 0.0, 25.0))


def _positions(
    rng: np.random.Generator,
    family: RoleFamily,
    previous: RoleFamily | None,
    years: float,
    title: str,
    pool: list[str],
    now_year: int,
) -> list[dict]:
    """Work history, most recent first: 2-4 positions spanning ``years``."""
    n = int(np.clip(1 + years // 3, 2, 4))
    total = max(years, 1.0)
    cuts = np.sort(rng.uniform(0, total, n - 1))
    bounds = np.concatenate([[0.0], cuts, [total]])  # years ago, ascending: 0 = now
    positions = []
    for k in range(n):
        ago_end, ago_start = bounds[k], bounds[k + 1]
        # Career changers spent the older half of their career in the previous family.
        fam = previous if previous is not None and k >= max(1, n // 2) else family
        experience_then = max(0.0, years - ago_start)
        if k == 0:
            pos_title = title
        elif years < 2 and k == n - 1:
            pos_title = f"{fam.titles[0]} Intern"
        else:
            pos_title = _titled(rng, fam, seniority_for_years(experience_then))
        company = _pick(rng, pool)
        positions.append(
            {
                "title": pos_title,
                "company": company,
                "family": fam,
                "from": now_year - int(math.ceil(ago_start)),
                "to": None if k == 0 else now_year - int(math.ceil(ago_end)),
            }
        )
    return positions


def _resume(
    rng: np.random.Generator,
    world: _World,
    name: str,
    location: str,
    positions: list[dict],
    skills: list[str],
    study: str,
    university: str,
    grad_year: int,
) -> str:
    lines: list[str] = []
    if world.terse:
        lines += [name.upper(), f"{positions[0]['title'].upper()} | {location.upper()}", "", "EXPERIENCE"]
        for p in positions:
            to = "NOW" if p["to"] is None else str(p["to"])
            lines.append(f"* {p['title']} @ {p['company']} [{p['from']}-{to}]")
            fam = p["family"]
            for d in _pick(rng, fam.duties, int(rng.integers(1, 3))):
                lines.append(f"  - {d}; {'/'.join(_pick(rng, fam.core_skills, 2)).lower()}")
        lines += ["", "EDUCATION", f"* {study.upper()}, {university} [{grad_year}]", "", "SKILLS", " / ".join(skills)]
        return "\n".join(lines)

    lines += [name, f"{positions[0]['title']} - {location}", "", "Experience"]
    for p in positions:
        to = "present" if p["to"] is None else str(p["to"])
        lines.append(f"{p['title']}, {p['company']} ({p['from']} - {to})")
        fam = p["family"]
        for d in _pick(rng, fam.duties, int(rng.integers(1, 3))):
            tools = _pick(rng, fam.core_skills, 2)
            lines.append(
                "- "
                + _pick(
                    rng,
                    (
                        f"{_cap(d)} with {tools[0]} and {tools[1]}.",
                        f"{_cap(d)}, using {tools[0]}.",
                        f"Responsible for {d}.",
                    ),
                )
            )
    degree = (
        _pick(rng, ("B.Sc.", "M.Sc.", "B.A.", "M.A."))
        if study not in ("Law", "Nursing", "Pharmacy")
        else {"Law": "J.D.", "Nursing": "B.Sc.", "Pharmacy": "Pharm.D."}[study]
    )
    lines += ["", "Education", f"{degree} in {study}, {university} ({grad_year})", "", "Skills: " + ", ".join(skills)]
    return "\n".join(lines)


def _make_members(
    cfg: SyntheticConfig,
    rng: np.random.Generator,
    fake: Faker,
    world: _World,
    start: pd.Timestamp,
    company_pool: list[str],
) -> pd.DataFrame:
    all_skills = sorted({s for f in world.families for s in f.core_skills + f.adjacent_skills})
    now_year = start.year
    rows = []
    for i in range(cfg.n_members):
        family = _pick(rng, world.families)
        years = _member_years(rng)
        seniority = seniority_for_years(years)
        title = _titled(rng, family, seniority)
        location = _pick(rng, world.cities, p=world.city_weights)
        previous = None
        if years >= 3 and rng.random() < CAREER_CHANGER_SHARE:
            previous = _pick(rng, [f for f in world.families if f.name != family.name])

        # Skills: more of the core with experience, some adjacent, a little noise.
        n_core = int(np.clip(rng.integers(2, 5) + years // 4, 2, len(family.core_skills)))
        skills = _pick(rng, family.core_skills, n_core) + _pick(rng, family.adjacent_skills, int(rng.integers(0, 3)))
        if previous is not None:
            skills += [s for s in _pick(rng, previous.core_skills, 2) if s not in skills]
        for s in _pick(rng, all_skills, int(rng.integers(0, 3))):
            if s not in skills:
                skills.append(s)

        name = fake.name()
        positions = _positions(rng, family, previous, years, title, company_pool, now_year)
        current_company = positions[0]["company"]
        industry = _pick(rng, family.industries)
        top = skills[:3]
        duty = _pick(rng, family.duties)
        if world.terse:
            headline = _pick(
                rng,
                (
                    f"{title.upper()} // {' / '.join(top)}",
                    f"{title} | {_years_text(years).replace('years', 'yrs')} | OPEN TO WORK",
                    f"{title.upper()} @ {current_company.upper()}",
                ),
            )
            summary = (
                f"{_years_text(years).replace('years', 'yrs')} exp. {'/'.join(s.lower() for s in top)}. "
                f"{_cap(duty)}."
                + (f" EX-{previous.titles[0].upper()}." if previous else "")
                + _pick(rng, (" OPEN TO RELOCATION.", " REMOTE ONLY.", ""))
            )
        else:
            headline = _pick(
                rng,
                (
                    f"{title} at {current_company}",
                    f"{title} | {', '.join(top)}",
                    f"{title} with {_years_text(years)} of experience",
                    f"{title} | {industry}",
                ),
            )
            if previous is not None:
                headline += f", formerly {previous.titles[0]}"
            sentences = [
                _pick(
                    rng,
                    (
                        f"I am a {title} with {_years_text(years)} of experience in {industry}.",
                        f"{_cap(_years_text(years))} of experience as a {family.titles[0]}, "
                        f"most recently at {current_company}.",
                        f"Experienced {family.titles[0]} based in {_city_name(location)}.",
                    ),
                ),
                _pick(rng, (f"I enjoy {duty}.", f"Most of my work is {duty}.", f"Focused on {duty}.")),
            ]
            if previous is not None:
                sentences.append(f"I moved into this field after working as a {previous.titles[0]}.")
            else:
                sentences.append(_pick(rng, (f"Strong in {_join(top)}.", f"Skilled in {_join(top)}.", "")))
            summary = " ".join(s for s in sentences if s)
        study = _pick(rng, (previous or family).studies)
        university = _pick(
            rng,
            (
                f"University of {fake.city()}",
                f"{fake.last_name()} University",
                f"{fake.city()} Institute of Technology",
                f"{fake.last_name()} College",
            ),
        )
        grad_year = now_year - int(math.ceil(years)) - int(rng.integers(0, 2))
        resume = _resume(rng, world, name, location, positions, skills, study, university, grad_year)
        rows.append(
            record_row(
                Member,
                later=("updated_at",),  # drawn for the whole table below
                member_id=f"M{i:05d}",
                headline=headline,
                title=title,
                location=location,
                years_experience=years,
                skills=skills,
                summary=summary,
                resume_text=resume,
            )
        )
    members = pd.DataFrame(rows)
    members["updated_at"] = _ts(start, rng.uniform(0.0, cfg.days, cfg.n_members))
    return members


# ----------------------------------------------------------------------------- latent engagement model


def pair_features(jobs: pd.DataFrame, members: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The latent fit of each (member_id, job_id) pair in ``pairs``, as documented in the module.

    Returns a frame aligned with ``pairs`` with columns: role (0, 0.5, 1),
    confusable (bool), location (0/1), years_gap (years - min_years),
    years_fit, skills, qual, fit (all in [0, 1]). Families are read from the
    titles with :func:`jude.data.grounded.taxonomy.role_of` (a small-world role
    family or a grounded occupation), so this works on any table that uses
    either vocabulary, generated or loaded.
    """
    for col, table, known in (("job_id", "jobs", jobs["job_id"]), ("member_id", "members", members["member_id"])):
        unknown = ~pairs[col].isin(set(known)).to_numpy()
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise ValueError(f"pairs: column '{col}', row {row}: not in {table} (value: {pairs[col].iloc[row]!r})")
    j = jobs.set_index("job_id").loc[pairs["job_id"].to_numpy()]
    m = members.set_index("member_id").loc[pairs["member_id"].to_numpy()]
    job_fam = {t: role_of(t) for t in jobs["title"].unique()}
    mem_fam = {t: role_of(t) for t in members["title"].unique()}
    jf = [job_fam[t] for t in j["title"]]
    mf = [mem_fam[t] for t in m["title"]]
    fit_of: dict[tuple, tuple[float, bool]] = {}  # (member role, job role) -> (fit, confusable), few distinct pairs
    for key in set(zip(mf, jf)):
        fit_of[key] = (role_fit(*key), roles_confusable(*key))
    role = np.array([fit_of[k][0] for k in zip(mf, jf)], dtype=float)
    confusable = np.array([fit_of[k][1] for k in zip(mf, jf)], dtype=bool)
    location = (
        j["remote"].to_numpy(bool) | (m["location"].str.lower().to_numpy() == j["location"].str.lower().to_numpy())
    ).astype(float)
    gap = m["years_experience"].to_numpy(float) - j["min_years"].to_numpy(float)
    years_fit = np.where(gap >= 0, 1.0, np.exp(np.minimum(gap, 0.0) / 1.5)) * np.where(gap > 8, 0.7, 1.0)
    job_sk = {k: _skill_set(v) for k, v in zip(jobs["job_id"], jobs["skills"])}
    mem_sk = {k: _skill_set(v) for k, v in zip(members["member_id"], members["skills"])}
    skills = np.array([_overlap(job_sk[a], mem_sk[b]) for a, b in zip(pairs["job_id"], pairs["member_id"])])
    qual = years_fit * (0.4 + 0.6 * skills)
    fit = role * location * qual
    return pd.DataFrame(
        {
            "role": role,
            "confusable": confusable,
            "location": location,
            "years_gap": gap,
            "years_fit": years_fit,
            "skills": skills,
            "qual": qual,
            "fit": fit,
        },
        index=pairs.index,
    )


def _skill_set(skills) -> frozenset[str]:
    return frozenset(str(x).strip().lower() for x in skills if str(x).strip())


def _overlap(required: frozenset[str], have: frozenset[str]) -> float:
    """Same as :func:`jude.data.vocab.skill_overlap`, on pre-normalised sets (fast for many pairs)."""
    return len(required & have) / len(required) if required else 1.0


def truth_propensity(features: pd.DataFrame) -> np.ndarray:
    """The latent apply propensity of each pair: P(apply | view) at popularity 0 and no noise (module docstring)."""
    return engagement_probabilities(features, np.zeros(len(features)))["apply"]


def truth_grades(jobs: pd.DataFrame, members: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """The truth's grade 0-3 of each (member_id, job_id) row of ``pairs``, aligned with it (module docstring).

    Fixed cuts :data:`TRUTH_PROPENSITY_THRESHOLDS` on :func:`truth_propensity` of :func:`pair_features`. Reads
    only the generator's latent variables: no judge and none of the judge's thresholds.
    """
    propensity = truth_propensity(pair_features(jobs, members, pairs))
    return np.searchsorted(np.asarray(TRUTH_PROPENSITY_THRESHOLDS), propensity, side="right").astype(int)


def truth_relevance(
    jobs: pd.DataFrame, members: pd.DataFrame, member_ids, min_grade: int = TRUTH_RELEVANT_GRADE
) -> dict[str, dict[str, int]]:
    """member_id -> {job_id: truth grade} for every job of ``jobs`` graded >= ``min_grade`` (exhaustive).

    Every (member, job) pair is graded, not a sample: the truth's relevant set of a member is complete.
    """
    member_ids = [str(m) for m in member_ids]
    job_ids = jobs["job_id"].astype(str).to_numpy()
    out: dict[str, dict[str, int]] = {}
    for start in range(0, len(member_ids), 64):  # 64 members x every job per call: bounded memory
        chunk = member_ids[start : start + 64]
        pairs = pd.DataFrame({"member_id": np.repeat(chunk, len(job_ids)), "job_id": np.tile(job_ids, len(chunk))})
        grades = truth_grades(jobs, members, pairs)
        for i, m in enumerate(chunk):
            g = grades[i * len(job_ids) : (i + 1) * len(job_ids)]
            keep = np.flatnonzero(g >= min_grade)
            out[m] = {job_ids[k]: int(g[k]) for k in keep}
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def engagement_probabilities(
    features: pd.DataFrame, popularity: np.ndarray, noise: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """P(view | impression), P(apply | view), P(dismiss | view, no apply) per pair (module docstring)."""
    noise = np.zeros(len(features)) if noise is None else noise
    role, fit = features["role"].to_numpy(), features["fit"].to_numpy()
    conf, loc = features["confusable"].to_numpy(float), features["location"].to_numpy()
    return {
        "view": _sigmoid(-1.4 + 1.4 * role + 0.9 * conf + 0.4 * loc + popularity),
        "apply": _sigmoid(-4.2 + 6.5 * fit + 0.6 * role + popularity + noise),
        "dismiss": _sigmoid(-2.0 + 2.5 * (1.0 - fit)),
    }


# ----------------------------------------------------------------------------- interactions


def _impressions(
    cfg: SyntheticConfig,
    rng: np.random.Generator,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    popularity: np.ndarray,
    start: pd.Timestamp,
) -> pd.DataFrame:
    """Which member saw which job when (the recommender's channels, module docstring). Times in days."""
    job_fam = np.array([role_of(t) for t in jobs["title"]], dtype=object)
    mem_fam = [role_of(t) for t in members["title"]]
    job_loc = jobs["location"].to_numpy(object)
    remote = jobs["remote"].to_numpy(bool)
    min_years = jobs["min_years"].to_numpy(float)
    posted = ((jobs["posted_at"] - start).dt.total_seconds() / 86400.0).to_numpy()  # days since start
    channel_names = list(CHANNELS)
    channel_p = np.array(list(CHANNELS.values()))
    pop_w = np.exp(0.5 * popularity)  # the recommender favours popular jobs
    families = sorted({f for f in job_fam if f is not None} | {f for f in mem_fam if f is not None})
    job_roles = sorted({g for g in job_fam if g is not None})
    confusable_of = {}
    for f in families:
        look = {g for g in job_roles if roles_confusable(f, g)}
        confusable_of[f] = np.array([g in look for g in job_fam], dtype=bool)

    log_w = np.log(pop_w)
    rows_m, rows_j, rows_t = [], [], []
    for mi in tqdm(range(len(members)), desc="impressions", leave=False, disable=len(members) < 5000):
        fam, loc, years = mem_fam[mi], members["location"].iat[mi], float(members["years_experience"].iat[mi])
        same = job_fam == fam
        loc_ok = remote | (job_loc == loc)
        masks = np.stack(
            [  # (channels, J), in the order of CHANNELS
                same,  # family
                same & ~loc_ok,  # family_elsewhere
                same & loc_ok & (min_years > years),  # underqualified
                confusable_of.get(fam, np.zeros(len(jobs), bool)),  # confusable
                loc_ok,  # city
                np.ones(len(jobs), bool),  # random
            ]
        )
        times = np.sort(rng.uniform(1.0, cfg.days - 1.0, cfg.impressions_per_member))  # (K,)
        channels = rng.choice(len(channel_names), size=len(times), p=channel_p)  # (K,)
        avail = (posted[None, :] < times[:, None]) & (posted[None, :] >= times[:, None] - JOB_FRESH_DAYS)  # (K, J)
        # Gumbel-max: argmax(log w + Gumbel) samples a job with probability proportional to w.
        score = log_w[None, :] + rng.gumbel(size=avail.shape)  # (K, J)
        primary = np.where(avail & masks[channels], score, -np.inf)
        fallback = np.where(avail, score, -np.inf)  # an empty channel falls back to any open job
        for k in range(len(times)):
            ji = int(np.argmax(primary[k]))
            if primary[k, ji] == -np.inf:
                ji = int(np.argmax(fallback[k]))
                if fallback[k, ji] == -np.inf:
                    continue  # nothing open yet that this member has not seen
            primary[:, ji] = fallback[:, ji] = -np.inf  # each job at most once per member
            rows_m.append(mi)
            rows_j.append(ji)
            rows_t.append(times[k])
    return pd.DataFrame({"m": rows_m, "j": rows_j, "t": rows_t})


def _make_interactions(
    cfg: SyntheticConfig, rng: np.random.Generator, jobs: pd.DataFrame, members: pd.DataFrame, start: pd.Timestamp
) -> pd.DataFrame:
    n_jobs = len(jobs)
    popularity = rng.normal(0.0, 0.5, n_jobs) + 1.2 * (rng.random(n_jobs) < HOT_JOB_SHARE)
    imp = _impressions(cfg, rng, jobs, members, popularity, start)
    pairs = pd.DataFrame(
        {"member_id": members["member_id"].to_numpy()[imp["m"]], "job_id": jobs["job_id"].to_numpy()[imp["j"]]}
    )
    feats = pair_features(jobs, members, pairs)
    probs = engagement_probabilities(feats, popularity[imp["j"].to_numpy()], rng.normal(0.0, 0.5, len(pairs)))
    n = len(pairs)
    viewed = rng.random(n) < probs["view"]
    applied = viewed & (rng.random(n) < probs["apply"])
    dismissed = viewed & ~applied & (rng.random(n) < probs["dismiss"])

    t_imp = imp["t"].to_numpy()  # days since start
    t_view = t_imp + (30.0 + rng.exponential(600.0, n)) / 86400.0
    t_apply = t_view + (60.0 + rng.exponential(1200.0, n)) / 86400.0
    t_dismiss = t_view + (5.0 + rng.exponential(60.0, n)) / 86400.0
    parts = []
    for action, mask, t in (
        ("impression", np.ones(n, bool), t_imp),
        ("view", viewed, t_view),
        ("apply", applied, t_apply),
        ("dismiss", dismissed, t_dismiss),
    ):
        parts.append(
            pd.DataFrame(
                {
                    "member_id": pairs["member_id"].to_numpy()[mask],
                    "job_id": pairs["job_id"].to_numpy()[mask],
                    "ts": _ts(start, t[mask]).to_numpy(),
                    "action": action,
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    order = {a: i for i, a in enumerate(schema.ACTIONS)}
    out["_o"] = out["action"].map(order)
    return out.sort_values(["ts", "member_id", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)


# ----------------------------------------------------------------------------- entry point


def generate_marketplace(cfg: SyntheticConfig | None = None, start: datetime | str = "2026-01-01") -> Marketplace:
    """Generate the seeded marketplace described in the module docstring.

    ``start`` is the first day of the simulated period (naive UTC; an aware
    datetime is converted). Same ``cfg`` and ``start`` give identical frames.
    The tables are returned validated, with the canonical dtypes of
    :mod:`jude.data.schema`.
    """
    cfg = cfg or SyntheticConfig()
    start_ts = pd.Timestamp(start)
    if start_ts.tzinfo is not None:
        start_ts = start_ts.tz_convert("UTC").tz_localize(None)
    start_ts = start_ts.normalize()
    rng = np.random.default_rng(cfg.seed)
    fake = Faker("en_US", use_weighting=False)  # uniform over Faker's lists: same vocabulary, 3x faster
    fake.seed_instance(cfg.seed)
    if cfg.world == "grounded":  # real occupations, places and wages (jude.data.grounded.world)
        if cfg.shift != "none":
            raise ValueError(
                f"data.synthetic.shift {cfg.shift!r} is a shift of the small world; the grounded world has none"
            )
        jobs = grounded.make_jobs(cfg, rng, start_ts)
        members = grounded.make_members(cfg, rng, fake, start_ts)
    else:
        world = _World.for_shift(cfg.shift)
        jobs = _make_jobs(cfg, rng, world, start_ts)
        company_pool = sorted({c for cs in _company_universe().values() for c in cs})
        members = _make_members(cfg, rng, fake, world, start_ts, company_pool)
    interactions = _make_interactions(cfg, rng, jobs, members, start_ts)
    jobs = schema.JOBS.validate(jobs, where="synthetic jobs")
    members = schema.MEMBERS.validate(members, where="synthetic members")
    interactions = schema.INTERACTIONS.validate(interactions, where="synthetic interactions")
    return Marketplace(jobs=jobs, members=members, interactions=interactions)


# ----------------------------------------------------------------------------- the unseen world


@lru_cache(maxsize=1)
def _faker_cities() -> tuple[str, ...]:
    """Real cities of countries no training marketplace has, from Faker's locales ("Kouvola, Finland").

    Fixed for every seed (a seeded Faker per locale), like :data:`jude.data.vocab.CITIES`.
    """
    out = []
    for locale, country in UNSEEN_CITY_LOCALES.items():
        fake = Faker(locale, use_weighting=False)
        fake.seed_instance(COMPANY_UNIVERSE_SEED)
        names: list[str] = []
        for _ in range(50):
            name = fake.city().strip()
            if name and name not in names and name.replace(" ", "").replace("-", "").isalpha() and len(name) < 20:
                names.append(name)
            if len(names) == UNSEEN_CITIES_PER_LOCALE:
                break
        out += [f"{n}, {country}" for n in names]
    return tuple(out)


@lru_cache(maxsize=1)
def _unseen_company_universe() -> dict[str, tuple[str, ...]]:
    """Industry -> employers for the unseen world: Faker companies of other locales, apart from the trained ones."""
    fake = Faker(["en_GB", "en_AU", "en_IN", "es_CL"], use_weighting=False)
    fake.seed_instance(COMPANY_UNIVERSE_SEED + UNSEEN_SALT)
    industries = sorted({i for f in ALL_ROLE_FAMILIES.values() for i in f.industries})
    return {ind: tuple(fake.company() for _ in range(COMPANIES_PER_INDUSTRY)) for ind in industries}


def unseen_world_vocabulary(cfg: SyntheticConfig | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(role family names, cities) of the unseen world for a marketplace generated with ``cfg``."""
    world = _World.unseen_from(_World.for_shift((cfg or SyntheticConfig()).shift))
    return tuple(f.name for f in world.families), world.cities


def generate_unseen_world(
    cfg: SyntheticConfig | None = None, n_jobs: int = 300, n_members: int = 200, start: datetime | str = "2026-01-01"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(jobs, members) from role families, titles and cities that a model trained on ``cfg``'s marketplace never
    saw (module docstring); no interactions: the truth (:func:`truth_grades`) judges them.

    Drawn from ``np.random.default_rng([cfg.seed, UNSEEN_SALT])`` and its own Faker, so it changes no draw of
    :func:`generate_marketplace`; same ``cfg`` and sizes give identical frames. Ids are ``UJ00000`` /
    ``UM00000`` so they never collide with the marketplace's.
    """
    cfg = cfg or SyntheticConfig()
    start_ts = pd.Timestamp(start)
    if start_ts.tzinfo is not None:
        start_ts = start_ts.tz_convert("UTC").tz_localize(None)
    start_ts = start_ts.normalize()
    world = _World.unseen_from(_World.for_shift(cfg.shift))
    sized = cfg.model_copy(update={"n_jobs": n_jobs, "n_members": n_members})
    rng = np.random.default_rng([cfg.seed, UNSEEN_SALT])
    fake = Faker(["en_IN", "es_CL", "fi_FI", "hr_HR", "id_ID"], use_weighting=False)
    fake.seed_instance(cfg.seed + UNSEEN_SALT)
    companies = _unseen_company_universe()
    jobs = _make_jobs(sized, rng, world, start_ts, companies=companies)
    pool = sorted({c for cs in companies.values() for c in cs})
    members = _make_members(sized, rng, fake, world, start_ts, pool)
    jobs["job_id"] = "U" + jobs["job_id"]
    members["member_id"] = "U" + members["member_id"]
    jobs = schema.JOBS.validate(jobs, where="unseen-world jobs")
    members = schema.MEMBERS.validate(members, where="unseen-world members")
    return jobs, members
