"""Judges against the truth: the rubric and local LLMs (llama.cpp) on one fixed, seeded sample of pairs.

    .venv/bin/python bench/llm_judge_bench.py                                  # 500 pairs: rubric, SmolLM2, Qwen 0.5B
    .venv/bin/python bench/llm_judge_bench.py --pairs 60 --judges rubric smollm2-135m   # a quick check
    .venv/bin/python bench/llm_judge_bench.py --judges rubric qwen2.5-1.5b --max-minutes 90   # the 1.5B, if it finishes

The sample is drawn once, before any judge runs, from the pairs members *viewed* in a seeded synthetic
marketplace (:func:`jude.data.synthetic.generate_marketplace`), stratified by kind with fixed shares:

- ``match``: same role family, the location fits (remote or the member's city), the member has the years;
- ``other_city``: same role family, on site in another city (hard: right role, wrong place);
- ``under_qualified``: same role family, the location fits, fewer years than the posting's minimum (hard);
- ``look_alike``: a confusable family (Sales Engineer for Software Engineer: similar words, other job; hard);
- ``adjacent``: an adjacent family; ``other``: any other pair viewed.

The three hard kinds are those of the foreign evaluation set (:mod:`jude.evaluation.foreign`). Every pair
carries the generator's truth grade (:func:`jude.data.synthetic.truth_grades`, from latent variables no judge
reads), the exact rubric's grade and whether the member applied. Judges:

- ``rubric``: the rubric judge, exact (reads the structured fields); ``rubric-errors``: the pipeline's default
  judge, the rubric with its seeded 15 % mistakes (``labels.judge_errors``);
- an LLM name of ``scripts/get_llm.py`` (``smollm2-135m``, ``qwen2.5-0.5b``, ``qwen2.5-1.5b``): the GGUF in
  ``.jude/models/`` served by ``python -m llama_cpp.server`` (``jude.labels.llm_server``) on ``--threads``
  threads, judged through the pipeline's client (``jude.labels.llm_judge.LLMJudge``, one request at a time)
  with the strict prompt and its JSON-schema grammar (``jude.labels.judge_prompt``). Each LLM judge also gets a
  ``<name>/facts`` row: the grade its own three facts give by the rubric's combination (no extra requests),
  and a ``<name>/questions`` row: the three-question prompt (``labels.llm.prompt: questions``, three short
  requests a pair, the grade from the answers by the rubric's combination). ``--prompts`` picks either.

Per judge: Cohen's kappa against the truth and against the exact rubric (unweighted, and linearly weighted),
agreement with applies (relevant = grade >= 2 vs applied, share and kappa), the confusion matrix against the
truth, accuracy on each kind (relevant-or-not against the truth's, and the exact grade), malformed and failed
answers, pairs/s (judging only; the server's start is timed apart) and the server's peak resident memory
(``VmHWM``). One line per judge ``kappa vs truth <judge>: <x>``; the JSON goes to ``bench/results/llm_judge/``.

The judge cache is a fresh temporary folder unless ``--cache-dir`` is given (then a rerun asks nothing twice,
and pairs/s measures the cache). Timings are wall clock on this machine: run on a quiet one.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, confusion_matrix

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_io import run_info, write_json  # noqa: E402

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env()

from jude.config import JudgeErrorConfig, LLMJudgeConfig, SyntheticConfig  # noqa: E402
from jude.data.synthetic import generate_marketplace, pair_features, truth_grades  # noqa: E402
from jude.labels.judge_prompt import PROMPT_VERSION, QUESTIONS_VERSION, grade_from_facts, parse_facts  # noqa: E402
from jude.labels.llm_judge import LLMJudge  # noqa: E402
from jude.labels.llm_server import LLMServer, LLMServerError  # noqa: E402
from jude.labels.rubric import RubricJudge, rubric_grade  # noqa: E402

_spec = importlib.util.spec_from_file_location("get_llm", ROOT / "scripts" / "get_llm.py")
get_llm = importlib.util.module_from_spec(_spec)
sys.modules["get_llm"] = get_llm  # its dataclasses look their module up
_spec.loader.exec_module(get_llm)

KIND_SHARES = {  # of the sample; the three hard kinds of the foreign set get 15 % each
    "match": 0.25,
    "other_city": 0.15,
    "under_qualified": 0.15,
    "look_alike": 0.15,
    "adjacent": 0.10,
    "other": 0.20,
}
HARD_KINDS = ("other_city", "under_qualified", "look_alike")
RELEVANT = 2  # grade >= 2 is relevant, for the truth (TRUTH_RELEVANT_GRADE) and the labels (relevant_grade)
RUBRIC_JUDGES = ("rubric", "rubric-errors")
OUT_DIR = ROOT / "bench" / "results" / "llm_judge"


def pair_kind(f: pd.DataFrame) -> np.ndarray:
    """The kind of each pair from :func:`pair_features` (role, confusable, location, years_gap)."""
    same, loc = f["role"].to_numpy() == 1.0, f["location"].to_numpy() == 1.0
    gap = f["years_gap"].to_numpy()
    kind = np.full(len(f), "other", dtype=object)
    kind[f["role"].to_numpy() == 0.5] = "adjacent"
    kind[f["confusable"].to_numpy(bool) & (f["role"].to_numpy() == 0.0)] = "look_alike"
    kind[same & ~loc] = "other_city"
    kind[same & loc & (gap < 0)] = "under_qualified"
    kind[same & loc & (gap >= 0)] = "match"
    return kind


def draw_sample(n_pairs: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(sample, jobs, members): ``n_pairs`` viewed pairs by :data:`KIND_SHARES`, with truth, rubric, applied."""
    cfg = SyntheticConfig(n_jobs=1500, n_members=800, impressions_per_member=30, seed=seed)
    mp = generate_marketplace(cfg)
    acts = mp.interactions
    viewed = acts[acts["action"] == "view"][["member_id", "job_id"]].drop_duplicates().reset_index(drop=True)
    applied = set(zip(*acts[acts["action"] == "apply"][["member_id", "job_id"]].to_numpy().T))
    viewed["kind"] = pair_kind(pair_features(mp.jobs, mp.members, viewed))
    rng = np.random.default_rng(seed)
    parts = []
    for kind, share in KIND_SHARES.items():
        pool = viewed[viewed["kind"] == kind]
        want = int(round(share * n_pairs))
        if len(pool) < want:
            print(f"note: only {len(pool)} viewed pairs of kind {kind}, wanted {want}")
        parts.append(pool.iloc[rng.permutation(len(pool))[:want]])
    sample = pd.concat(parts, ignore_index=True)
    sample = sample.iloc[rng.permutation(len(sample))].reset_index(drop=True)  # kinds interleaved
    sample["truth"] = truth_grades(mp.jobs, mp.members, sample)
    jobs, members = mp.jobs.set_index("job_id", drop=False), mp.members.set_index("member_id", drop=False)
    sample["rubric"] = [
        rubric_grade(members.loc[m].to_dict(), jobs.loc[j].to_dict()).grade
        for m, j in zip(sample["member_id"], sample["job_id"])
    ]
    sample["applied"] = [(m, j) in applied for m, j in zip(sample["member_id"], sample["job_id"])]
    return sample, jobs, members


def records(sample: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame) -> list[tuple[dict, dict]]:
    return [(members.loc[m].to_dict(), jobs.loc[j].to_dict()) for m, j in zip(sample["member_id"], sample["job_id"])]


def _kappa(a: np.ndarray, b: np.ndarray, weights: str | None = None) -> float | None:
    if len(a) < 2 or (len(set(a)) == 1 and len(set(b)) == 1):
        return None
    return float(cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights=weights))


def score(grades: list[int | None], sample: pd.DataFrame) -> dict:
    """The figures of one judge's grades (None: no grade) on the sample."""
    ok = np.array([g is not None for g in grades])
    g = np.array([x if x is not None else -1 for x in grades])[ok]
    s = sample[ok]
    truth, rub = s["truth"].to_numpy(), s["rubric"].to_numpy()
    rel, truth_rel, applied = g >= RELEVANT, truth >= RELEVANT, s["applied"].to_numpy(bool)
    kinds = {}
    for kind in KIND_SHARES:
        k = (s["kind"] == kind).to_numpy()
        if k.any():
            kinds[kind] = {
                "n": int(k.sum()),
                "accuracy": float((rel[k] == truth_rel[k]).mean()),  # relevant or not, as the truth says
                "exact": float((g[k] == truth[k]).mean()),
                "mean_grade": float(g[k].mean()),
                "truth_mean_grade": float(truth[k].mean()),
            }
    return {
        "graded": int(ok.sum()),
        "coverage": float(ok.mean()) if len(ok) else 0.0,
        "kappa_vs_truth": _kappa(truth, g),
        "kappa_vs_truth_linear": _kappa(truth, g, "linear"),
        "kappa_vs_rubric": _kappa(rub, g),
        "kappa_vs_rubric_linear": _kappa(rub, g, "linear"),
        "exact_vs_truth": float((g == truth).mean()) if len(g) else None,
        "relevant_accuracy_vs_truth": float((rel == truth_rel).mean()) if len(g) else None,
        "applies_agreement": float((rel == applied).mean()) if len(g) else None,
        "applies_kappa": float(cohen_kappa_score(applied, rel)) if len(set(applied)) > 1 else None,
        "hard_kinds_accuracy": {k: kinds[k]["accuracy"] for k in HARD_KINDS if k in kinds},
        "kinds": kinds,
        "grade_counts": {str(x): int((g == x).sum()) for x in range(4)},
        "confusion_vs_truth": confusion_matrix(truth, g, labels=[0, 1, 2, 3]).tolist(),  # rows truth, cols judge
    }


def run_rubric(name: str, pairs: list) -> tuple[list[int | None], dict]:
    judge = RubricJudge(JudgeErrorConfig() if name == "rubric-errors" else None)
    t0 = time.perf_counter()
    out = judge.grade_pairs(pairs)
    dt = time.perf_counter() - t0
    return [j.grade for j in out], {"seconds": dt, "pairs_per_s": len(pairs) / dt if dt > 0 else None}


def run_llm(
    name: str, pairs: list, args: argparse.Namespace, cache_dir: Path, prompt: str = "strict"
) -> tuple[list, list, dict]:
    """Serve the model, judge the pairs with ``prompt`` (``labels.llm.prompt``) in chunks (stopping after
    ``--max-minutes``), stop the server."""
    spec = get_llm.MODELS[name]
    path = args.models_dir / spec.filename
    server = LLMServer(path, model_name=name, n_threads=args.threads, n_ctx=4096, log_path=cache_dir / f"{name}.log")
    t0 = time.perf_counter()
    try:
        server.start()
    except LLMServerError as e:
        raise SystemExit(f"llm_judge_bench: {name}: {e}") from None
    startup = time.perf_counter() - t0
    cfg = LLMJudgeConfig(
        base_url=server.base_url,  # the same client would point at vLLM, Ollama or OpenAI here
        model=name,
        concurrency=1,  # llama-cpp-python's server answers one request at a time
        timeout_s=300.0,
        max_retries=1,
        response_format="json_object_schema",
        cache_dir=str(cache_dir / "cache"),
        prompt=prompt,
    )
    judge = LLMJudge(cfg, show_progress=not args.quiet)
    grades: list[int | None] = [None] * len(pairs)
    facts: list[dict | None] = [None] * len(pairs)
    errors: list[str] = []
    judged, complete = 0, True
    t1 = time.perf_counter()
    try:
        for start in range(0, len(pairs), args.chunk):
            if args.max_minutes and time.perf_counter() - t1 > 60 * args.max_minutes:
                complete = False
                print(f"{name}: stopped after {args.max_minutes} min with {judged}/{len(pairs)} pairs judged")
                break
            chunk = pairs[start : start + args.chunk]
            for i, j in enumerate(judge.grade_pairs(chunk), start=start):
                grades[i], facts[i] = j.grade, parse_facts(j.rationale) if j.ok else None
                if j.error:
                    errors.append(j.error)
            judged += len(chunk)
        seconds = time.perf_counter() - t1
        peak = server.peak_rss_bytes()
    finally:
        server.stop()
    run = {
        "prompt": prompt,
        "prompt_version": judge.prompt_version,
        "model_file": spec.filename,
        "model_bytes": spec.size,
        "server": "python -m llama_cpp.server",
        "threads": args.threads,
        "judged": judged,
        "complete": complete,
        "startup_s": startup,
        "seconds": seconds,
        "pairs_per_s": judged / seconds if seconds > 0 else None,
        "server_peak_rss_mb": peak / 2**20 if peak else None,
        "stats": judge.stats.as_dict(),
        "malformed_share": judge.stats.malformed / max(1, judged),
        "errors_head": errors[:5],
    }
    return grades, facts, run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=500, help="sample size (drawn before any judge runs)")
    ap.add_argument(
        "--judges",
        nargs="+",
        default=["rubric", "rubric-errors", "smollm2-135m", "qwen2.5-0.5b"],
        choices=[*RUBRIC_JUDGES, *sorted(get_llm.MODELS)],
    )
    ap.add_argument(
        "--prompts",
        nargs="+",
        default=["strict", "questions"],
        choices=["strict", "questions"],
        help="the LLM judges' prompts (labels.llm.prompt): a row per LLM and prompt ('<llm>' and '<llm>/questions')",
    )
    ap.add_argument("--seed", type=int, default=0, help="marketplace and sample seed")
    ap.add_argument("--threads", type=int, default=2, help="the LLM server's CPU threads")
    ap.add_argument("--models-dir", type=Path, default=ROOT / ".jude" / "models")
    ap.add_argument("--cache-dir", type=Path, help="keep the judge cache here (default: a fresh temporary folder)")
    ap.add_argument("--max-minutes", type=float, default=0.0, help="stop an LLM judge after this long (0: never)")
    ap.add_argument("--chunk", type=int, default=25, help="pairs per judging call (the time limit is checked between)")
    ap.add_argument(
        "--out", type=Path, help="the JSON (default: bench/results/llm_judge/judges_<pairs>_seed<seed>.json)"
    )
    ap.add_argument("--note", default="", help="free text stored with the results (e.g. 'shared machine')")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.pairs < 10:
        raise SystemExit(f"--pairs must be >= 10, got {args.pairs}")
    missing = [
        f"{n} ({args.models_dir / get_llm.MODELS[n].filename})"
        for n in args.judges
        if n in get_llm.MODELS and not (args.models_dir / get_llm.MODELS[n].filename).is_file()
    ]
    if missing:
        raise SystemExit(f"llm_judge_bench: model file(s) missing: {', '.join(missing)}; run `make llm`")

    t0 = time.perf_counter()
    sample, jobs, members = draw_sample(args.pairs, args.seed)
    pairs = records(sample, jobs, members)
    kinds = sample["kind"].value_counts().to_dict()
    print(f"sample: {len(sample)} viewed pairs, {kinds} ({time.perf_counter() - t0:.0f}s)")
    print(f"truth grades {np.bincount(sample['truth'], minlength=4).tolist()}, applied {int(sample['applied'].sum())}")

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="jude-judge-bench-") as tmp:
        cache_dir = Path(args.cache_dir) if args.cache_dir else Path(tmp)
        cache_dir.mkdir(parents=True, exist_ok=True)
        for name in args.judges:
            if name in RUBRIC_JUDGES:
                grades, run = run_rubric(name, pairs)
                results[name] = {"run": run, **score(grades, sample)}
            elif "strict" in args.prompts:
                grades, facts, run = run_llm(name, pairs, args, cache_dir)
                results[name] = {"run": run, **score(grades, sample)}
                derived = [grade_from_facts(f) if f else None for f in facts]
                consistent = [a == b for a, b in zip(grades, derived) if a is not None and b is not None]
                results[name]["run"]["grade_consistent_with_own_facts"] = (
                    float(np.mean(consistent)) if consistent else None
                )
                results[f"{name}/facts"] = {"run": {"derived_from": name}, **score(derived, sample)}
            if name not in RUBRIC_JUDGES and "questions" in args.prompts:
                grades, _, run = run_llm(name, pairs, args, cache_dir, prompt="questions")
                results[f"{name}/questions"] = {"run": run, **score(grades, sample)}
            for key in [k for k in results if k == name or k.startswith(f"{name}/")]:
                print(f"kappa vs truth {key}: {_fmt(results[key]['kappa_vs_truth'])}", flush=True)

    _table(results)
    out = args.out or OUT_DIR / f"judges_{args.pairs}_seed{args.seed}.json"
    payload = {
        **run_info(__file__, argv),
        "prompt_version": PROMPT_VERSION,
        "prompt_versions": {"strict": PROMPT_VERSION, "questions": QUESTIONS_VERSION},
        "pairs": len(sample),
        "seed": args.seed,
        "kind_counts": sample["kind"].value_counts().to_dict(),
        "truth_grade_counts": np.bincount(sample["truth"], minlength=4).tolist(),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_at_end": list(os.getloadavg()),
            "python": platform.python_version(),
            "note": args.note,
        },
        "judges": results,
        "sample": sample.to_dict("records"),
    }
    write_json(out, payload)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _table(results: dict[str, dict]) -> None:
    head = (
        f"{'judge':<22} {'kappa/truth':>11} {'kappa/rubric':>12} {'exact':>6} {'applies':>8} "
        f"{'other_city':>10} {'under_q':>8} {'look_alike':>10} {'malformed':>9} {'pairs/s':>8} {'peak MB':>8}"
    )
    print(head)
    for name, r in results.items():
        run, hard = r["run"], r["hard_kinds_accuracy"]
        peak = run.get("server_peak_rss_mb")
        malformed = run.get("stats", {}).get("malformed")
        print(
            f"{name:<22} {_fmt(r['kappa_vs_truth']):>11} {_fmt(r['kappa_vs_rubric']):>12} "
            f"{_fmt(r['exact_vs_truth'], 2):>6} {_fmt(r['applies_agreement'], 2):>8} "
            f"{_fmt(hard.get('other_city'), 2):>10} {_fmt(hard.get('under_qualified'), 2):>8} "
            f"{_fmt(hard.get('look_alike'), 2):>10} {'' if malformed is None else malformed:>9} "
            f"{_fmt(run.get('pairs_per_s'), 2):>8} {'' if peak is None else f'{peak:.0f}':>8}"
        )


if __name__ == "__main__":
    main()
