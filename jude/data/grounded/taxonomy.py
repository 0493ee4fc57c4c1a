"""The grounded world's occupations, read from the committed extract, and the one role resolver of jude.

The files beside this module (built by ``scripts/build_grounded_world.py``, see ``README.md``):

- ``occupations.csv``: O*NET-SOC occupations (``code`` "15-1252.00"), their SOC cell in BLS OEWS (``soc``),
  ISCO-08 unit group where known (``isco``), the O*NET description, national employment and wage percentiles;
- ``titles.csv``: real title variants (O*NET title parts, ESCO preferred and alternative labels), each owned by
  exactly one occupation;
- ``skills.csv``: ESCO skill labels attached to each occupation from its own description texts;
- ``areas.csv`` / ``area_occupations.csv``: US metropolitan areas with the employment and median wage of each
  occupation there (BLS OEWS May 2025).

Roles. Every part of jude that asks "is this the same job?" (the generator's latent truth and engagement,
the rubric judge) resolves a title with :func:`role_of`: first the small synthetic world's role families
(:func:`jude.data.vocab.role_family_of`), then the grounded titles (exact, after seniority prefixes, level
suffixes and title abbreviations are taken off). The two vocabularies are disjoint by construction (the build
drops every grounded title the synthetic vocabulary resolves), so a title has one role in one world.

How two roles fit (:func:`role_fit`, :func:`roles_confusable`), from the taxonomy's hierarchy, not by hand:

==========================================  =============  =================================================
relation of two grounded occupations         role_fit       as in the synthetic world
==========================================  =============  =================================================
same O*NET-SOC occupation                    1.0            same family
same SOC broad occupation (15-125x), same    0.5            related family (a weak fit)
SOC detailed code, or same ISCO unit group
same SOC minor group (15-12xx) or ISCO       0.0, look-alike  confusable family ("Sales Engineer" for a
minor group, otherwise unrelated                            "Software Engineer")
anything else                                0.0            unrelated
==========================================  =============  =================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from jude.data import vocab

DATA_FILES = ("occupations.csv", "titles.csv", "skills.csv", "areas.csv", "area_occupations.csv")

# Title abbreviations the grounded writing styles use ("Sr. Credit Analyst", "Sales Mgr"), word for word.
TITLE_ABBREVIATIONS = {
    "manager": "mgr",
    "assistant": "asst",
    "technician": "tech",
    "engineer": "eng",
    "specialist": "spec",
    "coordinator": "coord",
    "representative": "rep",
    "administrator": "admin",
    "supervisor": "supv",
    "director": "dir",
}
_EXPAND = {v: k for k, v in TITLE_ABBREVIATIONS.items()}
_PREFIXES = {p.lower().rstrip("."): s for s, ps in vocab.SENIORITY_PREFIXES.items() for p in ps if p} | {
    "mid-level": "mid",
    "intermediate": "mid",
}
_SUFFIX_RE = re.compile(r"\s*(?:\b(?:i{1,3}|iv|\d)\b|\(.*?\))\s*$")  # "... II", "... (m/f/d)"


class GroundedDataError(RuntimeError):
    """A committed data file of the grounded world is missing or malformed."""


@dataclass(frozen=True)
class Occupation:
    """One O*NET-SOC occupation of the grounded world."""

    code: str  # O*NET-SOC, "15-1252.00"
    name: str  # O*NET title, "Software Developers"
    title: str  # canonical title, "software developer"
    soc: str  # the OEWS cell, "151252" (a broad cell "151250" where OEWS has no detailed one)
    isco: str  # ISCO-08 unit group "2512", or ""
    titles: tuple[str, ...]  # every title variant (lower case), canonical first
    skills: tuple[str, ...]  # ESCO skill labels, best attached first
    duties: tuple[str, ...]  # O*NET description sentences (imperative)
    employment: int  # national
    wages: tuple[int, int, int, int, int]  # national annual p10, p25, p50, p75, p90

    @property
    def minor(self) -> str:  # "15-12"
        return self.code[:5]

    @property
    def broad(self) -> str:  # "15-125"
        return self.code[:6]

    @property
    def detailed(self) -> str:  # "15-1252"
        return self.code[:7]

    @property
    def major(self) -> str:  # "15"
        return self.code[:2]


@dataclass(frozen=True)
class Taxonomy:
    """The whole committed extract: occupations by code, the title index, the places and their figures."""

    occupations: dict[str, Occupation]
    title_to_code: dict[str, str]  # lower-case title variant -> occupation code
    areas: pd.DataFrame  # area_code, location, area_name, employment (largest first)
    area_occupations: pd.DataFrame  # area_code, soc, employment, wage_p50


def _read(name: str) -> pd.DataFrame:
    try:
        with resources.files("jude.data.grounded").joinpath(name).open("rb") as f:
            return pd.read_csv(f, dtype=str, keep_default_na=False)
    except FileNotFoundError as e:
        raise GroundedDataError(f"jude/data/grounded/{name} is missing: run `make grounded-world`") from e


def _duties(description: str) -> tuple[str, ...]:
    """O*NET's description as imperative sentences; classification notes ("Excludes ...") dropped."""
    out = []
    for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", description):
        s = s.strip()
        first = s.split()[0].lower() if s else ""
        noun_start = first.endswith("s") and not first.endswith("ss")  # "Duties include ...": not imperative
        if (
            s
            and not noun_start
            and not re.match(r"(May |Might |Can )?(Excludes|Includes|Exclude|Include)\b", s)
            and len(s.split()) >= 3
        ):
            out.append(s if s.endswith(".") else s + ".")
    return tuple(out)


@lru_cache(maxsize=1)
def load_taxonomy() -> Taxonomy:
    """Read and check the committed files once (a few hundred ms); errors name the file, row and field."""
    occ, titles, skills = _read("occupations.csv"), _read("titles.csv"), _read("skills.csv")
    areas, cells = _read("areas.csv"), _read("area_occupations.csv")
    for name, df, cols in (
        ("occupations.csv", occ, ("code", "name", "soc", "isco", "description", "employment", "wage_p50")),
        ("titles.csv", titles, ("title", "code")),
        ("skills.csv", skills, ("code", "skill")),
        ("areas.csv", areas, ("area_code", "location", "employment")),
        ("area_occupations.csv", cells, ("area_code", "soc", "employment", "wage_p50")),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise GroundedDataError(f"jude/data/grounded/{name}: missing column(s) {missing}")
    dup = titles["title"].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise GroundedDataError(
            f"jude/data/grounded/titles.csv: row {row}: title {titles['title'].iat[row]!r} belongs to two occupations"
        )
    by_code_titles: dict[str, list[str]] = {}
    for t, c, src in zip(titles["title"], titles["code"], titles.get("source", [""] * len(titles))):
        by_code_titles.setdefault(c, [])
        (by_code_titles[c].insert(0, t) if src == "onet" else by_code_titles[c].append(t))
    by_code_skills: dict[str, list[str]] = {}
    for c, s in zip(skills["code"], skills["skill"]):
        by_code_skills.setdefault(c, []).append(s)
    occupations = {}
    for i, r in enumerate(occ.to_dict("records")):
        code = r["code"]
        if code not in by_code_titles or code not in by_code_skills:
            raise GroundedDataError(
                f"jude/data/grounded/occupations.csv: row {i}: occupation {code} has no titles/skills"
            )
        try:
            wages = tuple(int(r[f"wage_p{p}"]) for p in (10, 25, 50, 75, 90))
            employment = int(r["employment"])
        except (KeyError, ValueError) as e:
            raise GroundedDataError(f"jude/data/grounded/occupations.csv: row {i} ({code}): bad wage/employment") from e
        occupations[code] = Occupation(
            code=code,
            name=r["name"],
            title=by_code_titles[code][0],
            soc=r["soc"],
            isco=r["isco"],
            titles=tuple(by_code_titles[code]),
            skills=tuple(by_code_skills[code]),
            duties=_duties(r["description"]) or (r["description"],),
            employment=employment,
            wages=wages,  # type: ignore[arg-type]
        )
    unknown = sorted(set(titles["code"]) - set(occupations))
    if unknown:
        raise GroundedDataError(f"jude/data/grounded/titles.csv: occupation code {unknown[0]!r} not in occupations.csv")
    areas = areas.assign(employment=areas["employment"].astype(int)).reset_index(drop=True)
    cells = cells.assign(
        employment=cells["employment"].astype(int),
        wage_p50=pd.to_numeric(cells["wage_p50"], errors="coerce"),
    )
    title_to_code = {t: c for t, c in zip(titles["title"], titles["code"])}
    return Taxonomy(occupations, title_to_code, areas, cells)


# ----------------------------------------------------------------------------- roles


def normalise_title(title: str) -> tuple[str | None, str]:
    """'Sr. Credit Analyst II' -> ('senior', 'credit analyst'); abbreviations expanded ('Sales Mgr' -> ...)."""
    t = " ".join(str(title).replace(",", " ").split()).lower()
    t = _SUFFIX_RE.sub("", t).strip()
    words = [_EXPAND.get(w.rstrip("."), w) for w in t.split()]
    seniority = None
    if len(words) > 1 and words[0].rstrip(".") in _PREFIXES and " ".join(words) not in load_taxonomy().title_to_code:
        seniority, words = _PREFIXES[words[0].rstrip(".")], words[1:]
    return seniority, " ".join(words)


@lru_cache(maxsize=65536)
def grounded_occupation_of(title: str) -> str | None:
    """The grounded occupation code of a title (exact variant after normalisation), else None."""
    if not isinstance(title, str) or not title.strip():
        return None
    return load_taxonomy().title_to_code.get(normalise_title(title)[1])


@lru_cache(maxsize=65536)
def role_of(title: str) -> str | None:
    """The role of any title jude generates: a synthetic role family name, a grounded occupation code, or None."""
    fam = vocab.role_family_of(title)
    if fam is not None:
        return fam
    return grounded_occupation_of(title)


def _grounded_pair(a: str | None, b: str | None) -> tuple[Occupation, Occupation] | None:
    if a is None or b is None:
        return None
    occ = load_taxonomy().occupations
    oa, ob = occ.get(a), occ.get(b)
    return (oa, ob) if oa is not None and ob is not None else None


def role_fit(a: str | None, b: str | None) -> float:
    """1.0 same role, 0.5 related (synthetic: listed; grounded: same SOC broad/detailed or ISCO unit group), 0."""
    pair = _grounded_pair(a, b)
    if pair is None:
        return vocab.family_fit(a, b)
    oa, ob = pair
    if oa.code == ob.code:
        return 1.0
    if oa.broad == ob.broad or (oa.isco and oa.isco == ob.isco):
        return 0.5
    return 0.0


def roles_confusable(a: str | None, b: str | None) -> bool:
    """Look-alike roles: synthetic confusable groups; grounded: same SOC minor group or ISCO minor group, not
    related (so an adjacent occupation is related, not a look-alike)."""
    pair = _grounded_pair(a, b)
    if pair is None:
        return vocab.are_confusable(a, b)
    oa, ob = pair
    if role_fit(a, b) > 0:
        return False
    return oa.minor == ob.minor or bool(oa.isco and ob.isco and oa.isco[:3] == ob.isco[:3])


def role_title(role: str | None, fallback: str) -> str:
    """The canonical title of a role ('Data Engineer', 'Credit Analyst'), or ``fallback`` when unknown."""
    if role is None:
        return str(fallback)
    if role in vocab.ALL_ROLE_FAMILIES:
        return vocab.ALL_ROLE_FAMILIES[role].titles[0]
    occ = load_taxonomy().occupations.get(role)
    return title_case(occ.title) if occ is not None else str(fallback)


def title_case(label: str) -> str:
    """'market research analyst' -> 'Market Research Analyst' (small words lower, acronyms kept)."""
    small = {"and", "of", "in", "for", "the", "a", "an", "to", "on", "with", "or"}
    words = label.split()
    return " ".join(
        w if (w.isupper() or (i and w in small)) else "-".join(p[:1].upper() + p[1:] for p in w.split("-"))
        for i, w in enumerate(words)
    )
