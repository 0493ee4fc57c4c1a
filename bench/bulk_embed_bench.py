"""The bulk path against `SentenceTransformer.encode`: same model, texts, max length and device.

    python bench/bulk_embed_bench.py [--texts 2400] [--rounds 3] [--max-length 256] [--token-budget 2048] [--quick]
                                     [--out FILE]

The texts are unique jobs, profiles and resumes of the synthetic marketplace rendered by
jude's templates (10-200+ words). Each measurement runs in its own subprocess (model
loaded, one warm-up batch, then every text timed once); jude's bulk path
(`jude.bootstrap.bulk.BulkEncoder`: token-budget batches, tokenising ahead, inference
mode) and `SentenceTransformer.encode` (batch_size 32, its own length sort) alternate for
`--rounds` rounds and the medians are compared. The approximate options (int8 Linear
layers, float16 output) are measured once each, with their mean cosine agreement to the
float32 vectors, and (not with --quick) their nDCG@10 change against the synthetic truth with a
paired bootstrap interval over members. The last line is `bulk ratio: <jude texts/s / sentence-transformers texts/s>`.
`--out FILE` writes every measurement and summary line as JSON (`bench/results_io.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_io import BenchResults  # noqa: E402

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env()


def make_texts(n: int) -> list[str]:
    """``n`` unique templated texts of the synthetic marketplace (jobs, profiles, resumes)."""
    from jude.config import SyntheticConfig
    from jude.data.synthetic import generate_marketplace
    from jude.modeling.templates import render_many

    m = generate_marketplace(SyntheticConfig(n_jobs=max(60, n // 2), n_members=max(40, n // 3), seed=7))
    texts = render_many("job", m.jobs) + render_many("profile", m.members) + render_many("resume", m.members)
    unique = list(dict.fromkeys(texts))
    if len(unique) < n:
        raise SystemExit(f"only {len(unique)} unique texts for --texts {n}")
    rng = random.Random(0)  # a mix of the three entity types, in no length order
    return rng.sample(unique, n)


def worker(kind: str, texts_file: str, out_file: str, max_length: int, token_budget: int) -> None:
    """One measurement: load the model, warm up, embed every text once; writes texts/s and the vectors."""
    import numpy as np
    import torch

    from jude.modeling.model_dir import packaged_minilm_path

    texts = json.loads(Path(texts_file).read_text())
    if kind == "st":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(packaged_minilm_path()), device="cpu")
        model.max_seq_length = max_length
        model.encode(texts[:32], batch_size=32)
        start = time.perf_counter()
        vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    else:
        from jude.bootstrap.bulk import BulkEncoder, BulkOptions
        from jude.modeling.embedder import Embedder

        opts = BulkOptions(
            max_length=max_length,
            token_budget=max(token_budget, max_length),
            quantize_int8=kind == "jude-int8",
            float16_output=kind == "jude-fp16",
        )
        encoder = BulkEncoder(Embedder.load("minilm"), opts)
        encoder.encode(texts[:32])
        start = time.perf_counter()
        vectors = encoder.encode(texts)
    seconds = time.perf_counter() - start
    np.save(out_file + ".npy", np.asarray(vectors, dtype=np.float32))
    Path(out_file).write_text(json.dumps({"texts_per_s": len(texts) / seconds, "threads": torch.get_num_threads()}))


def quality(max_length: int, results: BenchResults, n_members: int = 400, resamples: int = 1000) -> None:
    """nDCG@10 of the base model's float32 vectors and of each approximate option, against the synthetic truth.

    Every job of a 600-job marketplace (seed 0, the train config's) ranked for each of ``n_members`` member
    profiles by cosine; relevant = truth grade >= 2 (``jude.data.synthetic.truth_relevance``: the generator's
    latent fit, not a judge). Prints each option's nDCG@10 change with a paired bootstrap 95 % interval over
    members (``resamples`` resamples, seed 0); every line goes into ``results`` too.
    """
    import numpy as np

    from jude.bootstrap.bulk import BulkEncoder, BulkOptions
    from jude.config import SyntheticConfig
    from jude.data.synthetic import generate_marketplace, truth_relevance
    from jude.evaluation.paired import paired_bootstrap, per_query_scores
    from jude.modeling.embedder import Embedder
    from jude.modeling.templates import render_many

    m = generate_marketplace(SyntheticConfig(n_jobs=600, n_members=n_members, seed=0))
    jobs, members = m.jobs, m.members
    relevant = truth_relevance(jobs, members, members["member_id"])
    job_ids = jobs["job_id"].astype(str).tolist()
    member_ids = [q for q in members["member_id"].astype(str) if relevant.get(q)]
    keep = members["member_id"].astype(str).isin(member_ids).to_numpy()
    embedder = Embedder.load("minilm")
    per_query: dict[str, dict[str, float]] = {}
    for kind in ("float32", "int8", "fp16"):
        opts = BulkOptions(max_length=max_length, quantize_int8=kind == "int8", float16_output=kind == "fp16")
        enc = BulkEncoder(embedder, opts)
        jv = enc.encode(render_many("job", jobs), "job")  # (J, D)
        mv = enc.encode(render_many("profile", members[keep]), "profile")  # (M, D)
        jv /= np.linalg.norm(jv, axis=1, keepdims=True)
        mv /= np.linalg.norm(mv, axis=1, keepdims=True)
        scores = mv @ jv.T  # (M, J)
        top = np.argsort(-scores, axis=1)[:, :100]
        run = {q: {job_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(member_ids)}
        per_query[kind] = per_query_scores(run, relevant)
        mean = float(np.mean(list(per_query[kind].values())))
        results.say(f"nDCG@10 vs truth, {kind}: {mean:.4f} ({len(member_ids)} members)", **{f"ndcg_at_10_{kind}": mean})
    for kind in ("int8", "fp16"):
        d = paired_bootstrap(per_query[kind], per_query["float32"], resamples=resamples, seed=0)
        results.say(
            f"nDCG@10 change, {kind} - float32: {d.delta:+.4f} (95% CI {d.ci_low:+.4f} .. {d.ci_high:+.4f})",
            **{f"ndcg_at_10_change_{kind}": [d.delta, d.ci_low, d.ci_high]},
        )


def measure(kind: str, texts_file: str, max_length: int, token_budget: int, tmp: str) -> tuple[float, str]:
    out = os.path.join(tmp, f"{kind}-{time.monotonic_ns()}.json")
    cmd = [sys.executable, __file__, "--worker", kind, "--texts-file", texts_file, "--worker-out", out]
    cmd += ["--max-length", str(max_length), "--token-budget", str(token_budget)]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(Path(out).read_text())["texts_per_s"], out + ".npy"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=2400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--token-budget", type=int, default=2048, help="jude's padded tokens per batch")
    p.add_argument("--quick", action="store_true", help="a smoke run: 150 texts, 1 round")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the results as JSON (bench/results_io.py)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--texts-file", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", help=argparse.SUPPRESS)  # where a worker writes its measurement
    a = p.parse_args()
    if a.worker:
        worker(a.worker, a.texts_file, a.worker_out, a.max_length, a.token_budget)
        return
    results = BenchResults(
        "bulk_embed_bench", {k: v for k, v in vars(a).items() if not k.startswith(("worker", "texts_"))}
    )
    import numpy as np

    n, rounds = (150, 1) if a.quick else (a.texts, a.rounds)
    texts = make_texts(n)
    words = [len(t.split()) for t in texts]
    print(f"machine: {os.cpu_count()} CPUs, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"texts: {len(texts)} unique, {min(words)}-{max(words)} words (median {statistics.median(words):.0f})")
    results.extra["texts"] = {"n": len(texts), "words_min": min(words), "words_max": max(words)}
    results.extra["texts"]["words_median"] = statistics.median(words)
    with tempfile.TemporaryDirectory() as tmp:
        texts_file = os.path.join(tmp, "texts.json")
        Path(texts_file).write_text(json.dumps(texts))
        speeds: dict[str, list[float]] = {"jude": [], "st": []}
        vectors: dict[str, str] = {}
        for r in range(rounds):
            for kind in ("st", "jude") if r % 2 == 0 else ("jude", "st"):
                tps, vec = measure(kind, texts_file, a.max_length, a.token_budget, tmp)
                speeds[kind].append(tps)
                vectors[kind] = vec
                load = os.getloadavg()[0]
                print(f"round {r + 1}: {kind:5s} {tps:8.1f} texts/s (load average {load:.2f})")
                results.row(round=r + 1, kind=kind, texts_per_s=tps, load_avg_1min=load)
        exact = np.load(vectors["jude"])
        st = np.load(vectors["st"])
        agreement = float(np.mean(np.sum(exact * st, axis=1)))
        results.say(f"cosine(jude, sentence-transformers): mean {agreement:.6f}", cosine_jude_vs_st=agreement)
        for kind in ("jude-int8", "jude-fp16"):
            tps, vec = measure(kind, texts_file, a.max_length, a.token_budget, tmp)
            cos = np.sum(np.load(vec) * exact, axis=1)
            print(f"{kind}: {tps:8.1f} texts/s, cosine to float32: mean {cos.mean():.6f}, min {cos.min():.6f}")
            results.row(kind=kind, texts_per_s=tps, cosine_to_float32_mean=cos.mean(), cosine_to_float32_min=cos.min())
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not a.quick:
        quality(a.max_length, results)  # after the timed rounds: it shares nothing with them
    jude, st = statistics.median(speeds["jude"]), statistics.median(speeds["st"])
    results.say(
        f"median texts/s: jude {jude:.1f}, sentence-transformers {st:.1f}",
        median_texts_per_s={"jude": jude, "st": st},
    )
    results.say(f"bulk ratio: {jude / st:.2f}", bulk_ratio=jude / st)
    results.write(a.out)


if __name__ == "__main__":
    main()
