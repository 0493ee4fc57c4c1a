"""General text mixed into fine-tuning (``train.general_mix``): keep matching real text the generator never wrote.

A model fine-tuned only on the generator's marketplace can learn the generator. Mixing in a second, general
task is the usual guard against that forgetting: beside each training step, one batch of general
(query, passage) pairs, an InfoNCE term over them with the batch's other passages as negatives, weighted by
``train.general_mix`` and added to the step's gradients (a second backward, so it works with GradCache too).

The packaged pairs (:data:`GENERAL_PAIRS`, built by ``scripts/build_general_pairs.py``) are O*NET occupations'
titles and descriptions outside every jude world and evaluation set (the grounded world's occupations and
titles, the foreign set's occupations and taxonomy groups, the small world's titles). Texts go in raw, without
the entity templates: it is general text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from jude.modeling.embedder import Embedder
from jude.modeling.losses import info_nce

GENERAL_PAIRS = Path(__file__).resolve().parents[1] / "data" / "general" / "occupation_pairs.csv"
COLUMNS = ("query", "passage")


class GeneralPairsError(ValueError):
    """The general pairs file is missing, lacks a column, or has an empty text."""


def load_general_pairs(path: str | Path | None = None) -> pd.DataFrame:
    """The ``query, passage`` pairs of ``path`` (default :data:`GENERAL_PAIRS`), checked: every text non-empty."""
    path = Path(path) if path is not None else GENERAL_PAIRS
    if not path.is_file():
        raise GeneralPairsError(f"train.general_pairs: no file {path}")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise GeneralPairsError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    for col in COLUMNS:
        empty = df.index[df[col].str.strip() == ""]
        if len(empty):
            row = int(empty[0])
            raise GeneralPairsError(f"{path}: row {row + 2} (the header is row 1), column {col!r}: empty text")
    if len(df) < 2:
        raise GeneralPairsError(f"{path}: {len(df)} pair(s); at least 2 are needed (the others are the negatives)")
    return df.reset_index(drop=True)


@dataclass
class GeneralBatches:
    """The general pairs tokenised once; batch ``n`` is drawn from a seeded permutation per pass."""

    queries: list[list[int]]
    passages: list[list[int]]
    batch_size: int
    seed: int
    _order: tuple[int, np.ndarray] | None = field(default=None, init=False, repr=False)  # (pass, permutation)

    @classmethod
    def build(cls, embedder: Embedder, pairs: pd.DataFrame, batch_size: int, max_length: int, seed: int):
        return cls(
            queries=embedder.token_ids(pairs["query"].tolist(), max_length),
            passages=embedder.token_ids(pairs["passage"].tolist(), max_length),
            batch_size=min(batch_size, len(pairs)),
            seed=seed,
        )

    def batch(self, n: int) -> tuple[list[list[int]], list[list[int]]]:
        per_pass = len(self.queries) // self.batch_size
        pass_no, b = divmod(n, per_pass)
        if self._order is None or self._order[0] != pass_no:  # one permutation per pass, drawn when it starts
            self._order = (pass_no, np.random.default_rng(self.seed + pass_no).permutation(len(self.queries)))
        idx = self._order[1][b * self.batch_size : (b + 1) * self.batch_size]
        return [self.queries[i] for i in idx], [self.passages[i] for i in idx]


def general_loss(embedder: Embedder, queries, passages, temperature: float) -> torch.Tensor:
    """InfoNCE of each query against its passage, the batch's other passages as negatives (in fp32)."""
    emb = embedder.embed_token_ids([*queries, *passages]).float()
    q, p = F.normalize(emb[: len(queries)], dim=-1), F.normalize(emb[len(queries) :], dim=-1)
    return info_nce(q, p, temperature)


def general_step(
    embedder: Embedder, batches: GeneralBatches, n: int, weight: float, temperature: float, grad_accum: int, bf16=False
) -> float:
    """Forward and backward of general batch ``n`` (gradients add to the step's); returns the unweighted loss."""
    q, p = batches.batch(n)
    with embedder.autocast(enabled=bf16):
        loss = general_loss(embedder, q, p, temperature)
    (weight * loss / grad_accum).backward()
    return float(loss.detach())
