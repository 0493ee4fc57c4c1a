"""Writing styles of the grounded world: several per field, so no model can key on one template.

Each text field is written in one of several styles, drawn per entity from the seeded generator:

- job ``description``: ``prose`` (paragraphs), ``sections`` (headed bullet lists), ``terse`` (capitals and
  abbreviations), ``listing`` (key: value lines first), ``long`` (prose with a benefits paragraph); the order
  of the sections is shuffled, and the pay line, the experience line or the place line can be missing;
- member ``headline``, ``summary`` and ``resume_text``: several phrasings each, résumé sections in varied order
  and date formats, optional summary and education sections;
- every free text: a few typos on some entities (``TYPO_RATE``), lengths from one duty line to all of them.

The structured fields (title, location, remote, min_years, skills, years_experience) are never garbled: the
latent truth reads them. None of these styles is the foreign set's (``jude/data/foreign/``: second-person
"you will ..." prose built from ESCO descriptions, "Requirements: at least N years", the employer last,
first-person profiles "I have N years as ..."); the duty lines here are O*NET's own imperative task summaries.
"""

from __future__ import annotations

import re

import numpy as np

TYPO_RATE = 0.25  # share of entities whose free text carries 1-3 typos
JOB_STYLES = ("prose", "sections", "terse", "listing", "long")
MISSING_PAY = 0.35  # a posting without a pay line
MISSING_YEARS_LINE = 0.15  # the experience asked is only in the structured field
MISSING_PLACE_LINE = 0.2

_ABBREV = {  # for the terse style: whole words, case-insensitive
    "experience": "exp.",
    "years": "yrs",
    "year": "yr",
    "management": "mgmt",
    "department": "dept.",
    "required": "req'd",
    "with": "w/",
    "and": "&",
    "including": "incl.",
    "information": "info",
    "maintenance": "maint.",
    "equipment": "equip.",
    "operations": "ops",
    "communication": "comms",
    "customers": "custs",
    "approximately": "approx.",
}
_IRREGULAR_PAST = {
    "lead": "led", "build": "built", "write": "wrote", "make": "made", "run": "ran", "teach": "taught",
    "drive": "drove", "keep": "kept", "sell": "sold", "set": "set", "put": "put", "cut": "cut", "read": "read",
    "hold": "held", "give": "gave", "take": "took", "meet": "met", "feed": "fed", "speak": "spoke",
    "buy": "bought", "bring": "brought", "find": "found", "choose": "chose", "grow": "grew", "draw": "drew",
    "seek": "sought", "lay": "laid", "pay": "paid", "spend": "spent", "send": "sent", "lend": "lent",
    "dig": "dug", "split": "split", "spread": "spread", "fit": "fitted", "shut": "shut", "sweep": "swept",
    "sew": "sewed", "weave": "wove", "sit": "sat", "stand": "stood", "understand": "understood",
    "undertake": "undertook", "oversee": "oversaw", "see": "saw", "do": "did", "go": "went", "be": "was",
    "have": "had", "tell": "told", "hang": "hung", "hear": "heard", "win": "won", "fly": "flew",
}  # fmt: skip
_VOWELS = "aeiou"
_LEADING = {"may", "might", "can", "must", "should", "often", "usually", "also", "typically", "generally", "primarily"}


def _inflect_first_verbs(sentence: str, fn) -> str:
    """Apply ``fn`` to the leading verb(s) of an imperative sentence: 'Plan, direct, or coordinate x' -> all three."""
    words = sentence.split()
    while len(words) > 2 and words[0].lower() in _LEADING:  # "May care for ..." -> "care for ..."
        words = words[1:]
        words[0] = words[0][:1].upper() + words[0][1:]
    if not words:
        return sentence
    out = list(words)

    def conv(i: int) -> None:
        w = out[i]
        core, tail = re.match(r"([A-Za-z-]+)(.*)", w).groups() if re.match(r"[A-Za-z]", w) else (w, "")
        new = fn(core.lower())
        out[i] = (new[:1].upper() + new[1:] if core[:1].isupper() else new) + tail

    conv(0)
    i = 1
    if len(out) > 2 and out[1] in ("up", "out", "down", "off"):  # "Set up and maintain ..."
        i = 2
    while i < len(out):
        if out[i] in ("and", "or") and i + 1 < len(out) and (out[i - 1].endswith(",") or i <= 2):
            conv(i + 1)
            break
        if out[i - 1].endswith(",") and re.fullmatch(r"[a-z]+,?", out[i]) and i <= 4:
            conv(i)
            i += 1
            continue
        break
    return " ".join(out)


def _doubles(verb: str) -> bool:
    """A short consonant-vowel-consonant verb doubles its last letter: 'plan' -> 'planning', 'set' -> 'setting'."""
    v = verb.lower()
    return len(v) <= 4 and len(v) >= 3 and v[-1] not in _VOWELS + "wxy" and v[-2] in _VOWELS and v[-3] not in _VOWELS


def past(verb: str) -> str:
    if verb in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[verb]
    if _doubles(verb):
        return verb + verb[-1] + "ed"
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and len(verb) > 2 and verb[-2] not in _VOWELS:
        return verb[:-1] + "ied"
    return verb + "ed"


def gerund(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    if _doubles(verb):
        return verb + verb[-1] + "ing"
    return verb + "ing"


def duty_past(sentence: str) -> str:
    """'Develop pricing strategies.' -> 'Developed pricing strategies.' (a résumé bullet)."""
    return _inflect_first_verbs(sentence, past)


def duty_gerund(sentence: str) -> str:
    """'Develop pricing strategies.' -> 'developing pricing strategies' (inside a sentence)."""
    s = _inflect_first_verbs(sentence, gerund).rstrip(".")
    return s[:1].lower() + s[1:]


def abbreviate(text: str) -> str:
    """The terse style's abbreviations, whole words."""

    def sub(m: re.Match) -> str:
        w = m.group(0)
        a = _ABBREV[w.lower()]
        return a.upper() if w.isupper() else a

    return re.sub(r"\b(" + "|".join(_ABBREV) + r")\b", sub, text, flags=re.IGNORECASE)


def add_typos(rng: np.random.Generator, text: str, n: int) -> str:
    """``n`` typos in words of 5+ letters: two letters swapped, a letter dropped or doubled."""
    words = text.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not idx:
        return text
    for _ in range(n):
        i = idx[int(rng.random() * len(idx))]
        w = words[i]
        k = 1 + int(rng.random() * (len(w) - 2))
        kind = int(rng.random() * 3)
        if kind == 0:
            w = w[:k] + w[k + 1] + w[k] + w[k + 2 :]
        elif kind == 1:
            w = w[:k] + w[k + 1 :]
        else:
            w = w[:k] + w[k] + w[k:]
        words[i] = w
    return " ".join(words)


def maybe_typos(rng: np.random.Generator, text: str) -> str:
    if rng.random() < TYPO_RATE:
        return add_typos(rng, text, 1 + int(rng.random() * 3))
    return text


def money(amount: float, hourly: bool) -> str:
    return f"${amount / 2080:,.2f}/hr" if hourly else f"${round(amount, -3):,.0f}"
