"""How far the evaluation's "truth" is from the rubric judge: Cohen's kappa on generated pairs.

    .venv/bin/python bench/truth_rubric_agreement.py --out bench/results/truth_rubric/run.json

The truth (:func:`jude.data.synthetic.truth_grades`) grades a pair from the generator's latent variables; the
rubric judge (:func:`jude.labels.rubric.rubric_grade`, without its injected errors) grades it from the
structured fields. Both read the same four facts (role fit, city or remote, years, skill share), so this
measures how much of "the model beats base on the truth" is "the model recovers the rubric". On the data of
``configs/train.yaml`` (600 jobs, 400 members, data seed 0 unless ``--seeds``), two samples per seed:

- ``viewed``: every distinct (member, job) pair with a view, the pairs the chain judges from;
- ``uniform``: ``--pairs`` pairs drawn uniformly from members x jobs (seeded), most of them irrelevant.

Per sample: Cohen's kappa on relevance (grade >= 2, the chain's ``relevant_grade``), on the grade (unweighted
and linear), the share of truth-relevant pairs the rubric calls relevant and the reverse, and the confusion
matrix (rows truth, columns rubric). Deterministic: no timing, so the machine's load does not matter.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, confusion_matrix

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_io import command_line, git_commit, utc_now, write_json  # noqa: E402

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env()

from jude.config import SyntheticConfig  # noqa: E402
from jude.data.synthetic import generate_marketplace, truth_grades  # noqa: E402
from jude.labels.rubric import rubric_grade  # noqa: E402

RELEVANT = 2


def agreement(truth: np.ndarray, rubric: np.ndarray) -> dict:
    t_rel, r_rel = truth >= RELEVANT, rubric >= RELEVANT
    return {
        "pairs": int(len(truth)),
        "truth_relevant": int(t_rel.sum()),
        "rubric_relevant": int(r_rel.sum()),
        "kappa_relevance": float(cohen_kappa_score(t_rel, r_rel)),
        "kappa_grade": float(cohen_kappa_score(truth, rubric, labels=[0, 1, 2, 3])),
        "kappa_grade_linear": float(cohen_kappa_score(truth, rubric, labels=[0, 1, 2, 3], weights="linear")),
        "truth_relevant_also_rubric_relevant": float(r_rel[t_rel].mean()) if t_rel.any() else None,
        "rubric_relevant_also_truth_relevant": float(t_rel[r_rel].mean()) if r_rel.any() else None,
        "confusion_truth_rows_rubric_cols": confusion_matrix(truth, rubric, labels=[0, 1, 2, 3]).tolist(),
    }


def rubric_grades(pairs: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame) -> np.ndarray:
    job_rows = {j: r for j, r in zip(jobs["job_id"], jobs.to_dict("records"))}
    member_rows = {m: r for m, r in zip(members["member_id"], members.to_dict("records"))}
    return np.array(
        [rubric_grade(member_rows[m], job_rows[j]).grade for m, j in zip(pairs["member_id"], pairs["job_id"])]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="data seeds (configs/train.yaml: 0)")
    ap.add_argument("--pairs", type=int, default=72_000, help="uniform pairs per seed")
    ap.add_argument("--n-jobs", type=int, default=600)
    ap.add_argument("--n-members", type=int, default=400)
    ap.add_argument("--out", help="JSON to write (bench/results/truth_rubric/)")
    args = ap.parse_args()

    record: dict = {
        "command": command_line(),
        "date_utc": utc_now(),
        "commit": git_commit()[0],
        "relevant_grade": RELEVANT,
        "seeds": {},
    }
    for seed in args.seeds:
        mp = generate_marketplace(SyntheticConfig(n_jobs=args.n_jobs, n_members=args.n_members, seed=seed))
        acts = mp.interactions
        viewed = acts[acts["action"] == "view"][["member_id", "job_id"]].drop_duplicates().reset_index(drop=True)
        rng = np.random.default_rng(seed)
        uniform = pd.DataFrame(
            {
                "member_id": mp.members["member_id"].to_numpy()[rng.integers(0, len(mp.members), args.pairs)],
                "job_id": mp.jobs["job_id"].to_numpy()[rng.integers(0, len(mp.jobs), args.pairs)],
            }
        )
        per_seed = {}
        for name, pairs in (("viewed", viewed), ("uniform", uniform)):
            truth = truth_grades(mp.jobs, mp.members, pairs)
            per_seed[name] = agreement(truth, rubric_grades(pairs, mp.jobs, mp.members))
            a = per_seed[name]
            print(
                f"seed {seed} {name:8s} pairs {a['pairs']:>6}: kappa relevance {a['kappa_relevance']:.3f}, "
                f"grade {a['kappa_grade']:.3f} (linear {a['kappa_grade_linear']:.3f}); truth-relevant also "
                f"rubric-relevant {a['truth_relevant_also_rubric_relevant']:.3f}, rubric-relevant also "
                f"truth-relevant {a['rubric_relevant_also_truth_relevant']:.3f}",
                flush=True,
            )
        record["seeds"][str(seed)] = per_seed
    if args.out:
        print(f"wrote {write_json(args.out, record)}")


if __name__ == "__main__":
    main()
