"""The truths beside the judge's: what else a test member's relevant jobs are, and the unseen world.

The pipeline's headline figures were scored on the judge's grades, and the judge is the rule the models
are trained to copy. So every variant is also scored on relevance that does not come from the judge:

- ``truth``: the generator's latent fit (:func:`jude.data.synthetic.truth_grades`), graded over *every* job
  for each test member (exhaustive, no pooling). Synthetic data only: user data has no latent fit, and the
  evaluation set says so in ``absent``.
- ``applies``: relevant = applied in the test period, nothing else (grade 1). Exists for user data too.
- ``unseen``: a second evaluation set, members and jobs of role families, titles and cities the training
  marketplace never had (:func:`jude.data.synthetic.generate_unseen_world`), relevant by the truth.

:func:`attach_truths` adds them to the test :class:`EvalSet` (``truths``, ``absent``, ``unseen``);
``jude.evaluation.variants.evaluate_variants`` scores every variant on each.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from jude.config import DataConfig, EvalConfig, SyntheticConfig
from jude.data.synthetic import generate_unseen_world, truth_relevance
from jude.evaluation.retrieval import EvalSet, EvaluationError, build_eval_set

TRUTH, APPLIES, UNSEEN = "truth", "applies", "unseen"
TRUTH_NAMES = (TRUTH, APPLIES, UNSEEN)  # the metric prefixes, in the report's column order after the judge
NO_LATENT_FIT = "user data (data.source: files) has no latent fit to grade by"


def applies_relevance(
    interactions: pd.DataFrame, member_ids: Iterable[str], since: pd.Timestamp
) -> dict[str, dict[str, int]]:
    """member_id -> {job_id: 1} for every job the member applied to at or after ``since`` (the test period)."""
    members = {str(m) for m in member_ids}
    applies = interactions[(interactions["action"] == "apply") & (interactions["ts"] >= since)]
    out: dict[str, dict[str, int]] = {m: {} for m in sorted(members)}
    for m, j in zip(applies["member_id"].astype(str), applies["job_id"].astype(str)):
        if m in out:
            out[m][j] = 1
    return out


def unseen_eval_set(cfg: SyntheticConfig, eval_cfg: EvalConfig) -> EvalSet:
    """The unseen world as an evaluation set: its members with at least one truth-relevant job as queries (at
    most ``eval.max_queries``), every one of its jobs as the corpus, relevant by the truth."""
    jobs, members = generate_unseen_world(cfg, n_jobs=eval_cfg.unseen_jobs, n_members=eval_cfg.unseen_members)
    relevant = truth_relevance(jobs, members, members["member_id"])
    try:
        return build_eval_set(
            jobs,
            members,
            relevant,
            query_entity=eval_cfg.member_view,
            max_queries=eval_cfg.max_queries,
            seed=cfg.seed,
        )
    except EvaluationError as e:
        raise EvaluationError(
            f"the unseen world has no member with a relevant job (eval.unseen_jobs={eval_cfg.unseen_jobs}, "
            f"eval.unseen_members={eval_cfg.unseen_members}): raise them"
        ) from e


def attach_truths(
    test: EvalSet,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    t_test: pd.Timestamp,
    data_cfg: DataConfig,
    eval_cfg: EvalConfig,
) -> EvalSet:
    """``test`` with its ``truths`` (``truth`` on synthetic data, ``applies`` always), ``absent`` and ``unseen``.

    The truth grades every job of ``jobs`` for each test query; the queries and the corpus stay those of
    ``test``, so every truth ranks the same runs.
    """
    queries = list(test.queries)
    truths = {APPLIES: applies_relevance(interactions, queries, t_test)}
    absent: dict[str, str] = {}
    unseen = None
    if data_cfg.source == "synthetic":
        corpus_jobs = jobs[jobs["job_id"].astype(str).isin(test.corpus.keys())]
        truths[TRUTH] = truth_relevance(corpus_jobs, members, queries)
        if eval_cfg.unseen:
            unseen = unseen_eval_set(data_cfg.synthetic, eval_cfg)
        else:
            absent[UNSEEN] = "eval.unseen is off"
    else:
        absent[TRUTH] = NO_LATENT_FIT
        absent[UNSEEN] = NO_LATENT_FIT + "; the unseen world is drawn from the synthetic generator"
    return EvalSet(
        queries=test.queries,
        corpus=test.corpus,
        relevant=test.relevant,
        query_entity=test.query_entity,
        truths={TRUTH: truths[TRUTH], APPLIES: truths[APPLIES]} if TRUTH in truths else truths,
        absent=absent,
        unseen=unseen,
    )
