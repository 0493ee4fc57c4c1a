"""The ``eval:`` and ``promotion:`` sections: the held-out evaluation (``EvalConfig``) and the promotion gate
(``PromotionConfig``, which holds the judge's ``LabelConfig`` for its pooling)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jude.config.base import MemberView, _Section
from jude.config.labels import LabelConfig


class EvalConfig(_Section):
    max_queries: int = Field(300, gt=0, description="Held-out members (test period) used as queries.")
    member_view: MemberView = Field("profile", description="Which member text is the query.")
    ks: list[int] = Field(default_factory=lambda: [10, 100])
    batch_size: int = Field(64, gt=0)
    qrels: Literal["labels", "pooled"] = Field(
        "pooled",
        description=(
            "Relevant set of a test member: 'labels' = what the label budget judged (half of it sampled from the base "
            "model's top-k, which favours the base model) plus test applies; 'pooled' = that plus the judge's grades "
            "of the top pool_depth jobs of every evaluated model (TREC pooling, jude/evaluation/pooling.py)."
        ),
    )
    pool_depth: int = Field(
        20,
        gt=0,
        description=(
            "Top-k of each evaluated model the judge grades when qrels='pooled' (>= 10 makes every @10 metric "
            "fully judged). With an LLM judge this is the evaluation's API bill: queries x models x depth at most."
        ),
    )
    unseen: bool = Field(
        True,
        description=(
            "Also rank an unseen world (synthetic data only): members and jobs from role families, titles and "
            "cities that never occur in training, judged by the generator's truth (keys unseen/<variant>/...)."
        ),
    )
    unseen_jobs: int = Field(300, gt=0, description="Jobs of the unseen world (its whole corpus).")
    unseen_members: int = Field(150, gt=0, description="Members of the unseen world (queries: those with a fit).")


class PromotionConfig(_Section):
    """The promotion gate: when does the challenger replace the champion (or, for a first model, the base model)?

    The deploy pipeline's gate uses every field. The train pipeline uses the rule's thresholds
    (``min_ndcg_gain``, ``max_recall_drop``, ``min_queries``) to decide whether a model's first version
    beats the base model on the evaluation it has just run, and so becomes champion at registration.
    """

    min_ndcg_gain: float = Field(
        0.005,
        ge=0,
        description=("nDCG@10 must improve by at least this much (absolute) on the challenger's held-out set."),
    )
    max_recall_drop: float = Field(
        0.0, ge=0, description="recall@100 may fall by at most this much (0 = no regression)."
    )
    min_queries: int = Field(
        50,
        ge=1,
        description=(
            "Never promote on fewer held-out queries with judgements than this: a handful of queries cannot tell "
            "two models apart (the smoke configs, with about 13, set it lower)."
        ),
    )
    max_judge_failure_rate: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "Never promote when the judge failed on more than this share of the pooled pairs. Below it, a failed "
            "pair is left out of both models' rankings (condensed lists), never counted as irrelevant."
        ),
    )
    batch_size: int = Field(64, gt=0)
    pool_depth: int = Field(
        20,
        ge=0,
        description=(
            "The judge grades the unjudged pairs in both models' top-k before they are compared, so the champion is "
            "not "
            "scored on a pool built from the challenger's rankings only (TREC pooling); 0 = the logged judgements only."
        ),
    )
    labels: LabelConfig = Field(
        default_factory=LabelConfig,
        description=(
            "The judge for that pooling (judge, llm, relevant_grade); use the one the models were trained with."
        ),
    )
