"""Shared by the quality benchmarks: data and labels exactly as the train pipeline makes them, and the three
relevance judgements every model is scored on (labelled, pooled, exhaustive)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jude.config import TrainPipelineConfig, read_parameters  # noqa: E402
from jude.evaluation.assemble import score_runs  # noqa: E402
from jude.evaluation.retrieval import EvalSet, ranking_metrics  # noqa: E402
from jude.labels.judges import make_judge  # noqa: E402
from jude.labels.rubric import rubric_grade  # noqa: E402
from jude.modeling.embedder import Embedder  # noqa: E402
from jude.training.data import build_training_data  # noqa: E402
from jude.training.pairs import SplitData  # noqa: E402


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


def start(
    doc: str,
    default_config: str,
    default_out: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> BenchRun:
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
    base = Embedder.from_base(cfg.model)
    data = build_training_data(cfg, base=base)
    return data.market, data.split, base


def exhaustive_judgements(test: EvalSet, relevant_grade: int) -> dict[str, dict[str, int]]:
    """The labelled judgements plus the rubric grade of every (test member, job) pair at or above
    ``relevant_grade`` (the higher grade where both judged a pair): the complete truth of the synthetic
    marketplace, affordable only because the rubric judge is free."""
    exhaustive = {q: dict(r) for q, r in test.relevant.items()}
    for q, rec in test.queries.items():
        for j, job in test.corpus.items():
            g = rubric_grade(rec, job).grade
            if g >= relevant_grade:
                exhaustive[q][j] = max(g, exhaustive[q].get(j, 0))
    return exhaustive


def score_variants(
    test: EvalSet, runs: Mapping[str, Mapping[str, Mapping[str, float]]], cfg: TrainPipelineConfig
) -> dict[str, dict[str, dict[str, float]]]:
    """judgement name -> variant -> metrics, for three judgements of the same test members.

    ``labelled`` (the budget's) and ``pooled`` (what the pipeline logs) come from the pipeline's own scoring
    (``jude.evaluation.assemble.score_runs``), pooled whatever ``eval.qrels`` says; with the rubric judge,
    ``exhaustive`` too.
    """
    table = score_runs(runs, test, cfg.eval, cfg.labels.relevant_grade, make_judge(cfg.labels), qrels="pooled")
    out = {"labelled": table.labelled, "pooled": table.results}
    if cfg.labels.judge == "rubric":
        exhaustive = exhaustive_judgements(test, cfg.labels.relevant_grade)
        out["exhaustive"] = {v: ranking_metrics(run, exhaustive) for v, run in runs.items()}
    return out
