"""Jobs and members of the grounded world: real occupations, title variants, skills, places and wages.

:func:`make_jobs` and :func:`make_members` draw the two entity tables (exactly the columns of
:data:`jude.data.schema.JOBS` and ``MEMBERS``, so labels, split, pairs, templates and serving take them
unchanged); :func:`jude.data.synthetic.generate_marketplace` calls them when ``data.synthetic.world`` is
``grounded`` and then draws the interactions and grades the truth with the same latent model as the small world
(:func:`jude.data.synthetic.pair_features`), whose roles come from :func:`jude.data.grounded.taxonomy.role_of`.

The world (the same for every seed, like the small world's families and cities):

- occupations: the ``cfg.occupations`` most-employed O*NET-SOC occupations of the committed extract;
- places: the ``cfg.areas`` largest US metropolitan areas ("Austin, TX");
- employers: a fixed universe of Faker company names.

A draw (the seed):

- a job's occupation with probability proportional to national employment ** ``OCCUPATION_WEIGHT_POWER``;
  its area with probability proportional to that occupation's employment there (BLS OEWS); seniority and
  ``min_years`` as in the small world; the title a real variant of the occupation (the canonical O*NET title
  most often) with a seniority prefix, sometimes abbreviated ("Sr. Sales Mgr"); skills: 3-6 of the
  occupation's own ESCO skills plus 0-2 of a related occupation's (same SOC broad group or minor group); pay
  from the area's median wage for that occupation, moved along the national percentiles by seniority;
- a member: occupation and area the same way; years of experience as in the small world; 2-4 positions (15 %
  career changers from another occupation of the same SOC major group); skills from the occupation (more with
  experience), a related one and a little noise.

Texts are written in one of several styles per field (:mod:`jude.data.grounded.styles`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from faker import Faker

from jude.config import SyntheticConfig
from jude.data import vocab
from jude.data.grounded import styles
from jude.data.grounded.taxonomy import TITLE_ABBREVIATIONS, Occupation, load_taxonomy, title_case
from jude.entities import Job, Member, record_row

OCCUPATION_WEIGHT_POWER = 0.75  # flattens national employment a little: retail clerks would fill half the board
REMOTE_SHARE = 0.2  # as in the small world
BACKLOG_SHARE = 0.2  # jobs open on day one
CAREER_CHANGER_SHARE = 0.15
CANONICAL_TITLE_SHARE = 0.5  # the O*NET title; otherwise another real variant
ABBREVIATED_TITLE_SHARE = 0.1  # "Sales Mgr"
COMPANY_UNIVERSE_SEED = 20260707  # the employers, fixed for every seed
COMPANIES = 500
JOB_SENIORITY_WEIGHTS = {"junior": 0.2, "mid": 0.35, "senior": 0.3, "lead": 0.15}
# The pay band of each seniority, as a range of national percentiles (index into p10, p25, p50, p75, p90).
PAY_BAND = {"junior": (0, 1), "mid": (1, 2), "senior": (2, 3), "lead": (3, 4)}
STUDIES = {  # SOC major group -> fields of study (a résumé's education line)
    "11": ("Business Administration", "Management", "Economics"),
    "13": ("Finance", "Accounting", "Business Administration", "Economics"),
    "15": ("Computer Science", "Mathematics", "Statistics", "Information Systems"),
    "17": ("Mechanical Engineering", "Civil Engineering", "Electrical Engineering", "Architecture"),
    "19": ("Biology", "Chemistry", "Physics", "Economics", "Psychology"),
    "21": ("Social Work", "Psychology", "Theology"),
    "23": ("Law", "Paralegal Studies"),
    "25": ("Education", "English", "History", "Library Science"),
    "27": ("Fine Arts", "Journalism", "Communications", "Graphic Design"),
    "29": ("Nursing", "Health Sciences", "Pharmacy", "Medicine"),
    "31": ("Health Care Support (certificate)", "Medical Assisting (certificate)"),
    "33": ("Criminal Justice", "Fire Science (certificate)"),
    "35": ("Culinary Arts", "Hospitality Management"),
}
_TRADE_STUDIES = ("Vocational certificate", "High school diploma", "Apprenticeship", "Technical college diploma")


@dataclass(frozen=True)
class GroundedWorld:
    """What one grounded marketplace draws from (fixed for every seed, given the sizes)."""

    occupations: tuple[Occupation, ...]
    occupation_p: np.ndarray  # (O,)
    locations: tuple[str, ...]  # (A,) "Austin, TX"
    area_p: np.ndarray  # (O, A) P(area | occupation), rows sum to 1
    wage: np.ndarray  # (O, A) the area's annual median for the occupation (national median where missing)
    related: tuple[tuple[int, ...], ...]  # per occupation: indices of related / look-alike occupations
    same_major: tuple[tuple[int, ...], ...]  # per occupation: other occupations of its SOC major group
    companies: tuple[str, ...]


@lru_cache(maxsize=8)
def grounded_world(n_occupations: int, n_areas: int) -> GroundedWorld:
    """The world for these sizes: the most-employed occupations, the largest areas, their figures."""
    tax = load_taxonomy()
    occs = sorted(tax.occupations.values(), key=lambda o: (-o.employment, o.code))[:n_occupations]
    areas = tax.areas.head(n_areas)
    codes = [a for a in areas["area_code"]]
    a_index = {a: i for i, a in enumerate(codes)}
    socs = {o.soc for o in occs}
    cells = tax.area_occupations[
        tax.area_occupations["soc"].isin(socs) & tax.area_occupations["area_code"].isin(a_index)
    ]
    emp = {
        (s, a): (e, w) for s, a, e, w in zip(cells["soc"], cells["area_code"], cells["employment"], cells["wage_p50"])
    }
    area_emp = areas["employment"].to_numpy(float)
    shape = (len(occs), len(codes))
    area_p = np.zeros(shape)
    wage = np.zeros(shape)
    for i, o in enumerate(occs):
        for j, a in enumerate(codes):
            e, w = emp.get((o.soc, a), (0, math.nan))
            area_p[i, j] = e
            wage[i, j] = w if w == w else o.wages[2]  # NaN -> the national median
        if area_p[i].sum() == 0:  # an occupation OEWS does not publish in these areas: follow total employment
            area_p[i] = area_emp
        area_p[i] /= area_p[i].sum()
    weights = np.array([max(o.employment, 1) for o in occs], float) ** OCCUPATION_WEIGHT_POWER
    related = tuple(
        tuple(k for k, p in enumerate(occs) if k != i and (p.minor == o.minor or (o.isco and p.isco == o.isco)))
        for i, o in enumerate(occs)
    )
    same_major = tuple(
        tuple(k for k, p in enumerate(occs) if k != i and p.major == o.major) for i, o in enumerate(occs)
    )
    fake = Faker("en_US", use_weighting=False)
    fake.seed_instance(COMPANY_UNIVERSE_SEED)
    companies = tuple(dict.fromkeys(fake.company() for _ in range(COMPANIES)))
    return GroundedWorld(
        tuple(occs), weights / weights.sum(), tuple(areas["location"]), area_p, wage, related, same_major, companies
    )


# ----------------------------------------------------------------------------- helpers


def _pick(rng: np.random.Generator, seq, k: int | None = None, p=None):
    """One element (k None) or k distinct elements of ``seq``, in a seeded order (as the small world's)."""
    n = len(seq)
    if k is None:
        if p is None:
            return seq[int(rng.random() * n)]
        cum = np.cumsum(p)
        return seq[min(int(np.searchsorted(cum, rng.random() * float(cum[-1]), side="right")), n - 1)]
    order = np.argsort(rng.random(n), kind="stable")[: min(k, n)]
    return [seq[i] for i in order]


def _title(rng: np.random.Generator, occ: Occupation, seniority: str, variant: str | None = None) -> str:
    """A real title variant with a prefix that states the seniority; sometimes abbreviated ('Sales Mgr')."""
    if variant is None:
        variant = occ.titles[0] if (len(occ.titles) == 1 or rng.random() < CANONICAL_TITLE_SHARE) else None
        variant = variant or _pick(rng, occ.titles[1:])
    words = title_case(variant).split()
    if rng.random() < ABBREVIATED_TITLE_SHARE:
        words = [_abbrev_word(w) for w in words]
    prefix = _pick(rng, vocab.SENIORITY_PREFIXES[seniority])
    title = " ".join([prefix, *words]).strip()
    if vocab.role_family_of(title) is not None:  # never a title of the small world (taxonomy.role_of)
        title = " ".join([prefix, title_case(variant)]).strip()
    return title


def _abbrev_word(word: str) -> str:
    a = TITLE_ABBREVIATIONS.get(word.lower())
    return a[:1].upper() + a[1:] + ("." if a in ("asst", "supv", "dir") else "") if a else word


def _years_text(years: float) -> str:
    n = int(years)
    return "under a year" if years < 1 else ("1 year" if n == 1 else f"{n} years")


def _ts(start: pd.Timestamp, days: np.ndarray) -> pd.Series:
    return pd.Series(start + pd.to_timedelta(np.asarray(days) * 86400.0, unit="s")).dt.round("s")


def _related_skills(rng: np.random.Generator, world: GroundedWorld, i: int, k: int) -> list[str]:
    near = world.related[i]
    if not near or k <= 0:
        return []
    other = world.occupations[_pick(rng, near)]
    return _pick(rng, other.skills, k)


# ----------------------------------------------------------------------------- jobs


def _pay(rng: np.random.Generator, world: GroundedWorld, i: int, a: int, seniority: str) -> float:
    """An annual figure for the occupation in that area at that seniority (the area's median x national spread)."""
    occ = world.occupations[i]
    lo, hi = PAY_BAND[seniority]
    ratio = (occ.wages[lo] + rng.random() * (occ.wages[hi] - occ.wages[lo])) / max(occ.wages[2], 1)
    return float(world.wage[i, a] * ratio)


def _job_description(
    rng: np.random.Generator,
    occ: Occupation,
    title: str,
    company: str,
    location: str,
    remote: bool,
    min_years: int,
    skills: list[str],
    pay: float,
) -> str:
    style = _pick(rng, styles.JOB_STYLES)
    duties = _pick(rng, occ.duties, 1 + int(rng.random() * len(occ.duties)))
    city = location.split(",")[0]
    hourly = pay < 60000 and rng.random() < 0.6
    lo, hi = pay * 0.93, pay * 1.07
    pay_text = (
        f"{styles.money(lo, hourly)} - {styles.money(hi, hourly)}"
        if rng.random() < 0.6
        else f"up to {styles.money(hi, hourly)}"
    )
    show_pay = rng.random() >= styles.MISSING_PAY
    show_years = rng.random() >= styles.MISSING_YEARS_LINE
    show_place = rng.random() >= styles.MISSING_PLACE_LINE
    years_text = (
        _pick(rng, ("entry level welcome", "no experience needed", "new graduates considered"))
        if min_years == 0
        else _pick(rng, (f"{min_years}+ years of experience", f"minimum {min_years} years in a similar role"))
    )
    place_text = (
        _pick(rng, ("Remote (US).", "Work from home, anywhere in the US.", "100% remote."))
        if remote
        else _pick(rng, (f"On site, {location}.", f"Location: {city} metro area.", f"Based in {location}."))
    )
    skill_list = ", ".join(skills)

    if style == "listing":
        lines = [f"Position: {title}", f"Company: {company}"]
        if show_place:
            lines.append(f"Location: {'Remote' if remote else location}")
        if show_pay:
            lines.append(f"Salary: {pay_text}")
        if show_years:
            lines.append(f"Experience: {years_text}")
        lines.append(f"Skills: {skill_list}")
        lines += ["", "Duties:", *[f"* {d}" for d in duties]]
        return styles.maybe_typos(rng, "\n".join(lines))

    if style == "sections":
        blocks = [
            [_pick(rng, ("About the role", "The role", "Overview"))]
            + [f"{company} has an opening for a {title}."]
            + ([place_text] if show_place else []),
            [_pick(rng, ("Responsibilities", "What the job involves", "Key duties"))] + [f"- {d}" for d in duties],
            [_pick(rng, ("Qualifications", "What we look for", "Must have"))]
            + ([f"- {years_text}"] if show_years else [])
            + [f"- {s}" for s in skills],
        ]
        if show_pay:
            blocks.append([_pick(rng, ("Compensation", "Pay", "Salary range")), pay_text])
        head, rest = blocks[0], blocks[1:]
        order = np.argsort(rng.random(len(rest)), kind="stable")
        return styles.maybe_typos(rng, "\n\n".join("\n".join(b) for b in [head, *[rest[k] for k in order]]))

    if style == "terse":
        lines = [
            f"{title.upper()} | {company.upper()}" + (f" | {'REMOTE' if remote else location}" if show_place else "")
        ]
        lines += [f"> {d}" for d in duties[:2]]
        req = [years_text] if show_years else []
        lines.append("REQ: " + "; ".join(req + skills))
        if show_pay:
            lines.append(f"PAY: {pay_text}")
        return styles.maybe_typos(rng, styles.abbreviate("\n".join(lines)))

    # prose / long
    opening = _pick(
        rng,
        (
            f"{company} is looking for a {title} to join its team.",
            f"Open position at {company}: {title}.",
            f"{company} seeks an experienced {title}." if min_years else f"{company} is hiring a {title}.",
        ),
    )
    work = "The work includes " + "; ".join(styles.duty_gerund(d) for d in duties) + "."
    req_parts = ([years_text[:1].upper() + years_text[1:] + "."] if show_years else []) + [
        _pick(
            rng, (f"Skills: {skill_list}.", f"Useful skills include {skill_list}.", f"Familiarity with {skill_list}.")
        )
    ]
    paras = [opening + (" " + place_text if show_place else ""), work, " ".join(req_parts)]
    if show_pay:
        paras.append(_pick(rng, (f"Pay: {pay_text}.", f"Compensation: {pay_text}, depending on experience.")))
    if style == "long":
        paras.append(
            _pick(
                rng,
                (
                    "Benefits include health, dental and vision cover, a retirement plan with employer match, and "
                    "paid time off.",
                    f"{company} is an equal opportunity employer. We offer medical insurance, paid leave and a "
                    "training budget.",
                ),
            )
        )
    order = [0, *(1 + np.argsort(rng.random(len(paras) - 1), kind="stable"))]  # the opening stays first
    return styles.maybe_typos(rng, "\n\n".join(paras[k] for k in order))


def make_jobs(cfg: SyntheticConfig, rng: np.random.Generator, start: pd.Timestamp) -> pd.DataFrame:
    """The jobs table of a grounded marketplace (module docstring); ``posted_at``/``updated_at`` as the small
    world's: a backlog open on day one, the rest uniform over the period."""
    world = grounded_world(cfg.occupations, cfg.areas)
    seniorities = list(JOB_SENIORITY_WEIGHTS)
    sen_p = np.array(list(JOB_SENIORITY_WEIGHTS.values()))
    occ_index = np.arange(len(world.occupations))
    rows = []
    for n in range(cfg.n_jobs):
        i = int(_pick(rng, occ_index, p=world.occupation_p))
        occ = world.occupations[i]
        a = int(_pick(rng, np.arange(len(world.locations)), p=world.area_p[i]))
        seniority = _pick(rng, seniorities, p=sen_p)
        lo, hi = vocab.MIN_YEARS_BY_SENIORITY[seniority]
        min_years = int(rng.integers(lo, hi + 1))
        title = _title(rng, occ, seniority)
        company = _pick(rng, world.companies)
        remote = bool(rng.random() < REMOTE_SHARE)
        core = _pick(rng, occ.skills, int(rng.integers(3, 7)))
        skills = core + [s for s in _related_skills(rng, world, i, int(rng.integers(0, 3))) if s not in core]
        pay = _pay(rng, world, i, a, seniority)
        location = world.locations[a]
        rows.append(
            record_row(
                Job,
                later=("posted_at", "updated_at"),  # drawn for the whole table below
                job_id=f"J{n:05d}",
                title=title,
                company=company,
                location=location,
                remote=remote,
                seniority=seniority,
                min_years=min_years,
                skills=skills,
                description=_job_description(rng, occ, title, company, location, remote, min_years, skills, pay),
            )
        )
    jobs = pd.DataFrame(rows)
    n = cfg.n_jobs
    backlog = rng.random(n) < BACKLOG_SHARE
    backlog[0] = True
    posted = np.where(backlog, rng.uniform(0.0, 1.0, n), rng.uniform(1.0, cfg.days - 1.0, n))
    edited = rng.random(n) < 0.4
    updated = np.minimum(posted + np.where(edited, rng.uniform(0.0, 14.0, n), 0.0), cfg.days)
    jobs["posted_at"] = _ts(start, posted)
    jobs["updated_at"] = _ts(start, updated)
    jobs["updated_at"] = jobs[["posted_at", "updated_at"]].max(axis=1)
    return jobs


# ----------------------------------------------------------------------------- members


def _member_years(rng: np.random.Generator) -> float:
    """As the small world's: a right-skewed spread from fresh graduates to veterans (0-25)."""
    return float(np.clip(np.round(rng.gamma(2.2, 2.6) * 2) / 2, 0.0, 25.0))


def _date_range(rng_style: int, start: int, end: int | None) -> str:
    now = ("present", "Present", "now", "to date")[rng_style % 4]
    sep = (" - ", "-", " to ", " – ")[rng_style % 4]
    return f"{start}{sep}{now if end is None else end}"


def _resume(
    rng: np.random.Generator,
    name: str,
    title: str,
    location: str,
    positions: list[dict],
    skills: list[str],
    study: str,
    school: str,
    grad_year: int,
    summary: str,
) -> str:
    style = int(rng.integers(0, 4))
    heads = (
        ("Experience", "Education", "Skills", "Profile"),
        ("WORK HISTORY", "EDUCATION", "CORE SKILLS", "SUMMARY"),
        ("Employment", "Training", "Key skills", "About"),
        ("Professional experience", "Qualifications", "Competencies", "Summary"),
    )[style]
    exp = [heads[0]]
    for p in positions:
        line = _pick(
            rng,
            (
                f"{p['title']}, {p['company']} ({_date_range(style, p['from'], p['to'])})",
                f"{p['title']} | {p['company']} | {_date_range(style, p['from'], p['to'])}",
                f"{_date_range(style, p['from'], p['to'])}: {p['title']} at {p['company']}",
            ),
        )
        exp.append(line)
        bullets = _pick(rng, p["occupation"].duties, 1 + int(rng.random() * 2))
        exp += [f"{'-' if style % 2 else '*'} {styles.duty_past(b)}" for b in bullets]
    edu = [heads[1], f"{study}, {school}" + (f" ({grad_year})" if rng.random() < 0.7 else "")]
    skl = [heads[2], _pick(rng, (", ", " | ", "; ", " · ")).join(skills)]
    blocks = [exp, skl] + ([edu] if rng.random() < 0.85 else [])
    order = np.argsort(rng.random(len(blocks)), kind="stable") if rng.random() < 0.5 else np.arange(len(blocks))
    top = [name, f"{title} · {location}" if style != 1 else f"{title.upper()} / {location.upper()}"]
    if summary and rng.random() < 0.4:
        top += ["", heads[3], summary]
    text = "\n".join(top) + "\n\n" + "\n\n".join("\n".join(blocks[k]) for k in order)
    return styles.maybe_typos(rng, styles.abbreviate(text) if style == 1 else text)


def make_members(cfg: SyntheticConfig, rng: np.random.Generator, fake: Faker, start: pd.Timestamp) -> pd.DataFrame:
    """The members table of a grounded marketplace (module docstring)."""
    world = grounded_world(cfg.occupations, cfg.areas)
    all_skills = sorted({s for o in world.occupations for s in o.skills})
    occ_index = np.arange(len(world.occupations))
    now_year = start.year
    rows = []
    for n in range(cfg.n_members):
        i = int(_pick(rng, occ_index, p=world.occupation_p))
        occ = world.occupations[i]
        a = int(_pick(rng, np.arange(len(world.locations)), p=world.area_p[i]))
        location = world.locations[a]
        years = _member_years(rng)
        seniority = vocab.seniority_for_years(years)
        variant = occ.titles[0] if (len(occ.titles) == 1 or rng.random() < CANONICAL_TITLE_SHARE) else None
        variant = variant or _pick(rng, occ.titles[1:])
        title = _title(rng, occ, seniority, variant)
        previous = None
        if years >= 3 and rng.random() < CAREER_CHANGER_SHARE and world.same_major[i]:
            previous = world.occupations[_pick(rng, world.same_major[i])]

        n_core = int(np.clip(rng.integers(2, 5) + years // 4, 2, len(occ.skills)))
        skills = _pick(rng, occ.skills, n_core)
        skills += [s for s in _related_skills(rng, world, i, int(rng.integers(0, 3))) if s not in skills]
        if previous is not None:
            skills += [s for s in _pick(rng, previous.skills, 2) if s not in skills]
        skills += [s for s in _pick(rng, all_skills, int(rng.integers(0, 3))) if s not in skills]

        # positions, most recent first, spanning the years
        k_pos = int(np.clip(1 + years // 3, 2, 4))
        total = max(years, 1.0)
        bounds = np.concatenate([[0.0], np.sort(rng.uniform(0, total, k_pos - 1)), [total]])
        positions = []
        for k in range(k_pos):
            o = previous if previous is not None and k >= max(1, k_pos // 2) else occ
            then = max(0.0, years - bounds[k + 1])
            pos_title = title if k == 0 else _title(rng, o, vocab.seniority_for_years(then), o.titles[0])
            positions.append(
                {
                    "title": pos_title,
                    "company": _pick(rng, world.companies),
                    "occupation": o,
                    "from": now_year - int(math.ceil(bounds[k + 1])),
                    "to": None if k == 0 else now_year - int(math.ceil(bounds[k])),
                }
            )
        company = positions[0]["company"]
        top = skills[:3]
        yrs = _years_text(years)
        headline = _pick(
            rng,
            (
                f"{title} at {company}",
                f"{title} | {' · '.join(top)}",
                f"{title} · {yrs} experience",
                f"{title.upper()}",
                f"{title} | {location.split(',')[0]} area",
                f"{title} - open to new opportunities",
            ),
        )
        if previous is not None and rng.random() < 0.5:
            headline += f" (ex-{title_case(previous.titles[0])})"
        duty = styles.duty_gerund(_pick(rng, occ.duties))
        summary_style = int(rng.integers(0, 5))
        if summary_style == 0:
            summary = f"{title} with {yrs} of experience. Focus: {duty}. Strengths: {', '.join(top)}."
        elif summary_style == 1:
            summary = f"{yrs} in the field; most recently {title} at {company}. Day to day: {duty}."
        elif summary_style == 2:
            summary = styles.abbreviate(f"{yrs} experience | {' / '.join(top)} | {location}")
        elif summary_style == 3:
            summary = f"Skilled {title_case(occ.title).lower()} ({yrs}). Known for {duty}."
        else:
            summary = f"{', '.join(top)}."  # a member who wrote almost nothing
        if previous is not None and summary_style in (0, 1):
            summary += f" Previously worked as a {title_case(previous.titles[0]).lower()}."
        summary = styles.maybe_typos(rng, summary)
        study = _pick(rng, STUDIES.get((previous or occ).major, _TRADE_STUDIES))
        school = _pick(
            rng,
            (f"University of {fake.city()}", f"{fake.last_name()} College", f"{fake.city()} Community College"),
        )
        grad_year = now_year - int(math.ceil(years)) - int(rng.integers(0, 2))
        resume = _resume(rng, fake.name(), title, location, positions, skills, study, school, grad_year, summary)
        rows.append(
            record_row(
                Member,
                later=("updated_at",),  # drawn for the whole table below
                member_id=f"M{n:05d}",
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
