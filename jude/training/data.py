"""From a train config to training data: marketplace -> labels -> time split -> training pairs.

:func:`build_training_data` is the recipe the ZenML pipeline's first steps run
(load_marketplace, retrieve_candidates, generate_labels, split_pairs), as one
call for the paths that run without ZenML: ``jude train-hf`` and the quality
benchmarks. :func:`cached_training_data` shares its result between the
processes of one node under torchrun or the deepspeed launcher.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from jude.config import TrainPipelineConfig
from jude.data.io import marketplace_from_config
from jude.data.schema import Marketplace
from jude.evaluation.retrieval import top_k_candidates
from jude.fsutils import atomic_directory
from jude.labels.build import LabelSet, build_labels
from jude.training.pairs import SplitData, split_from_config

CACHE_TABLES = ("jobs", "members", "pairs")
CACHE_DONE = "pairs.parquet"  # the directory is renamed into place whole: this file there means it is complete
TEST_SET_FILE = "test_set.json"

if TYPE_CHECKING:
    from jude.modeling.embedder import Embedder


@dataclass(frozen=True)
class TrainingData:
    """What :func:`build_training_data` made: the marketplace, its labels and the time split."""

    market: Marketplace
    labels: LabelSet
    split: SplitData


def build_training_data(
    cfg: TrainPipelineConfig, base: Embedder | None = None, show_progress: bool = False
) -> TrainingData:
    """Marketplace (``cfg.data``), labels (``cfg.labels``), then the time split and training pairs.

    When ``cfg.labels.retrieved_fraction > 0`` the base model's top
    ``cfg.labels.retrieve_k`` jobs per member are the retrieved candidates; ``base``
    is that model, loaded from ``cfg.model`` when not given. With
    ``retrieved_fraction == 0`` no model is loaded and no candidates are passed
    (the pipeline's ``retrieve_candidates`` step runs whatever the fraction, and
    supplied candidates take a draw from the sampling generator even at a share of
    0, so the two sample alike only for ``retrieved_fraction > 0``, as in every
    shipped config).
    """
    market = marketplace_from_config(cfg.data)
    candidates = None
    if cfg.labels.retrieved_fraction > 0:
        from jude.modeling.embedder import Embedder  # here: with no retrieval, torch is never imported

        model = base if base is not None else Embedder.from_base(cfg.model)
        candidates = top_k_candidates(
            model, market.jobs, market.members, k=cfg.labels.retrieve_k, show_progress=show_progress
        )
        del model
    labels = build_labels(market.jobs, market.members, market.interactions, cfg.labels, candidates=candidates)
    split = split_from_config(
        market.jobs, market.members, market.interactions, labels.table, cfg.data, cfg.eval, cfg.train
    )
    return TrainingData(market=market, labels=labels, split=split)


def cached_training_data(
    cfg: TrainPipelineConfig, cache_dir: str | os.PathLike, timeout_s: float = 4 * 3600
) -> dict[str, pd.DataFrame]:
    """:func:`build_training_data` once per node, kept in ``cache_dir``: the jobs, members and pairs tables.

    Under torchrun every process calls this; the node's local rank 0
    (``$LOCAL_RANK``) builds the data (the judge is called once) and renames the
    finished directory into place, with the test set as ``test_set.json``; the
    other local ranks wait up to ``timeout_s`` for it and read it. A directory
    that is already complete is read, not rebuilt.
    """
    cache_dir = Path(cache_dir)
    if int(os.environ.get("LOCAL_RANK", "0")) != 0:
        deadline = time.monotonic() + timeout_s
        while not (cache_dir / CACHE_DONE).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"local rank 0 did not write the training data to {cache_dir} in {timeout_s:.0f}s")
            time.sleep(2)
        return _read_cache(cache_dir)
    if (cache_dir / CACHE_DONE).exists():
        return _read_cache(cache_dir)

    data = build_training_data(cfg, show_progress=True)
    # training sees only the jobs posted before t_val (the strict time cut, jude.training.pairs)
    tables = {"jobs": data.split.train_jobs, "members": data.market.members, "pairs": data.split.pairs}
    # another node on a shared disk may finish first: its copy (the same data) is kept
    with atomic_directory(cache_dir, keep_if=CACHE_DONE) as tmp:
        for name, df in tables.items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / TEST_SET_FILE).write_text(json.dumps(data.split.test.to_dict()))
    return tables


def _read_cache(cache_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(cache_dir / f"{name}.parquet") for name in CACHE_TABLES}
