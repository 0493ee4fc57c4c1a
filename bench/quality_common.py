"""Shared by the quality benchmarks: data and labels exactly as the train pipeline makes them, and the three
relevance judgements every model is scored on (labelled, pooled, exhaustive)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jude.config import TrainPipelineConfig, read_parameters  # noqa: E402
from jude.data.io import marketplace_from_config  # noqa: E402
from jude.evaluation.pooling import pooled_relevance  # noqa: E402
from jude.evaluation.retrieval import EvalSet, ranking_metrics, top_k_candidates  # noqa: E402
from jude.labels.engagement import engagement_labels  # noqa: E402
from jude.labels.judges import make_judge, rubric_grade  # noqa: E402
from jude.labels.sampling import judge_pairs, sample_pairs  # noqa: E402
from jude.modeling.embedder import Embedder  # noqa: E402
from jude.training.pairs import SplitData, split_and_pair  # noqa: E402


def load_config(path: str | Path) -> TrainPipelineConfig:
    return TrainPipelineConfig.model_validate(read_parameters(path))


@dataclass
class BenchRun:
    args: argparse.Namespace
    cfg: TrainPipelineConfig
    out: Path  # created
    t0: float

    def lap(self, msg: str) -> None:
        """Print ``msg`` with the seconds since the start."""
        print(f"[{time.time() - self.t0:7.1f}s] {msg}", flush=True)


def start(doc: str, default_config: str, default_out: str,
          add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> BenchRun:
    """The command line every quality bench shares (``--config``, ``--out``, plus its own), the config, a timer."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / default_config), help="a train YAML (its parameters: section)")
    ap.add_argument("--out", default=default_out, help="where models and results.json go")
    if add_arguments:
        add_arguments(ap)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return BenchRun(args=args, cfg=load_config(args.config), out=out, t0=time.time())


def prepare(cfg: TrainPipelineConfig) -> tuple[object, SplitData, Embedder]:
    """Marketplace, judged + engagement labels and the time split, as the pipeline's first five steps."""
    m = marketplace_from_config(cfg.data)
    base = Embedder.from_base(cfg.model)
    cands = top_k_candidates(base, m.jobs, m.members, k=cfg.labels.retrieve_k)
    sampled = sample_pairs(m.jobs, m.members, m.interactions, cfg.labels, candidates=cands, rng_seed=cfg.labels.seed)
    relevance, _ = judge_pairs(make_judge(cfg.labels), sampled, m.jobs, m.members, cfg.labels.relevant_grade)
    labels = pd.concat([relevance, engagement_labels(m.interactions, cfg.labels)], ignore_index=True)
    split = split_and_pair(m.jobs, m.members, m.interactions, labels, cfg.data.val_fraction, cfg.data.test_fraction,
                           max_queries=cfg.eval.max_queries, query_entity=cfg.eval.member_view,
                           use_engagement=cfg.train.use_engagement, seed=cfg.train.seed)
    return m, split, base


def judgements(test: EvalSet, runs: Mapping[str, Mapping[str, Mapping[str, float]]],
               cfg: TrainPipelineConfig) -> dict[str, dict[str, dict[str, int]]]:
    """labelled (the budget's), pooled (what the pipeline logs) and, with the free rubric judge, exhaustive."""
    out = {"labelled": test.relevant,
           "pooled": pooled_relevance(test, runs, make_judge(cfg.labels), cfg.eval.pool_depth,
                                      cfg.labels.relevant_grade).relevant}
    if cfg.labels.judge == "rubric":
        exhaustive = {q: dict(r) for q, r in test.relevant.items()}
        for q, rec in test.queries.items():
            for j, job in test.corpus.items():
                g = rubric_grade(rec, job).grade
                if g >= cfg.labels.relevant_grade:
                    exhaustive[q][j] = max(g, exhaustive[q].get(j, 0))
        out["exhaustive"] = exhaustive
    return out


def score_all(runs, qrels) -> dict[str, dict[str, dict[str, float]]]:
    """judgement name -> variant -> metrics."""
    return {name: {v: ranking_metrics(run, rel) for v, run in runs.items()} for name, rel in qrels.items()}
