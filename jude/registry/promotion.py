"""The promotion gate: the challenger replaces the champion only when it is better, and it fails closed.

What the challenger is compared with:

- the ``champion``;
- with no ``champion`` alias although other versions exist (the alias was
  deleted), the highest version that ever was champion (tagged ``was_champion``,
  or holding ``previous``), never "nothing": a missing alias lets no challenger
  through;
- with no such version (a first model), the base model it was fine-tuned from
  (``model.base_model`` and the pooling, templates and token budgets its
  ``jude.json`` records): a first champion must beat the un-fine-tuned model.
  The train pipeline already decides this at registration from its own
  evaluation (:func:`first_version_verdict`); the gate does it for a first
  version registered without that verdict, or one that failed it and was
  followed by others.

Both sides are evaluated on the *same* held-out set (the one logged with the
challenger's training run), so the comparison does not depend on what each run
happened to report. That set's relevance judgements were pooled from the
challenger's side of the train pipeline only, so the other side's own top
results may never have been judged, which would favour the challenger. The gate
therefore pools again (``promotion.pool_depth``, default 20; see
``jude.evaluation.pooling``): the judge of ``promotion.labels`` (use the one the
models were trained with) grades the unjudged pairs in both top ``pool_depth``,
and both are scored on those judgements.

A pair the judge fails on (an LLM's malformed answer, a timeout) is *unjudged*,
not irrelevant: counting it as irrelevant penalises whichever model ranked it,
which is how a champion whose relevant top results the judge failed on lost to a
worse challenger. The gate does two things about it:

- below ``promotion.max_judge_failure_rate`` (default 10% of the pooled pairs),
  the failed pairs are removed from *both* rankings before scoring, and the
  documents below move up: nDCG and recall are computed on condensed lists, the
  "judged-only" evaluation of trec_eval (``-J``) studied by Sakai ("Alternatives
  to bpref", SIGIR 2007), which he found more robust to incomplete judgements
  than treating unjudged documents as irrelevant;
- above it, nothing is promoted. Condensing is unbiased only when the failures
  fall on both models alike; when they fall on one model's results (say, its
  irrelevant ones), dropping them lifts that model, so the gate bounds how much of
  the comparison may rest on them. A judge that fails on every pair aborts the
  gate (:class:`jude.evaluation.retrieval.EvaluationError`).

The challenger is then promoted only when all of these hold (:func:`jude.evaluation.rule.decide`, the one
rule: the train pipeline's selection applies it on the validation members against the base model, so the
registered candidate is one this gate's conditions pass):

- every compared metric is a finite number (NaN or inf never promotes);
- at least ``min_queries`` held-out queries (default 50) have judgements;
- nDCG@10 improves by at least ``min_ndcg_gain``, and recall@100 falls by at
  most ``max_recall_drop``;
- and the guard (:func:`jude.evaluation.rule.foreign_veto`): the challenger's training run did not find it
  below the base model on the foreign set beyond the paired interval (``foreign/<variant>_vs_base_delta``);
  the same veto stops a first version from becoming champion at registration.

Promotion moves ``champion`` to the challenger and ``previous`` to the version it
beat (the base model is no version: ``previous`` is left as it is). The decision
and its numbers are logged to MLflow (a run named ``promotion``), written on the
challenger as its ``promotion`` tag ("promoted to champion — ..." or "kept as
challenger — ..."; a version waiting for the gate says "waiting for the promotion
gate — ..."), on the champion it replaced ("replaced as champion by version N —
..."), and returned for ZenML metadata.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow

from jude.config import ModelConfig, PromotionConfig
from jude.evaluation.pooling import pooled_relevance
from jude.evaluation.retrieval import EvalSet, ranking_metrics, retrieve
from jude.evaluation.rule import RULE_METRICS, decide, foreign_veto, judged_queries
from jude.registry import mlflow_registry as reg
from jude.registry.lock import promotion_lock

Run = dict[str, dict[str, float]]  # query -> {job: score}
Model = reg.ModelVersionInfo | ModelConfig  # a registered version, or the base model (its config)


class PromotionError(RuntimeError):
    pass


@dataclass
class PromotionDecision:
    promoted: bool
    reason: str
    model_name: str
    challenger_version: str
    champion_version: str | None  # the champion after the decision (None: there is none)
    previous_version: str | None = None
    compared_with: str | None = None  # "champion v3", "v2, the last champion", "base model 'minilm'"
    queries: int = 0  # held-out queries with judgements the metrics average over
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    reference_metrics: dict[str, float] = field(default_factory=dict)  # of what it was compared with
    pool: dict[str, Any] = field(default_factory=dict)  # what the gate's own pooling judged (empty: none)

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@champion"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model_uri": self.model_uri}


def first_version_verdict(
    metrics: Mapping[str, float], eval_set: Mapping[str, Any], variant: str, cfg: PromotionConfig
) -> tuple[bool, str]:
    """Does a first version beat the base model? The train pipeline's answer, from its own evaluation.

    ``metrics`` are the evaluation's prefixed figures (``base/ndcg_at_10``,
    ``<variant>/ndcg_at_10``, ...), computed on ``eval_set`` (the judged held-out
    set logged with the version), so both sides were scored on the same queries
    and judgements. The same rule as the gate (:func:`decide`). Returns
    ``(beats_base, why)`` for :func:`jude.registry.mlflow_registry.log_model_version`.
    """

    def side(prefix: str) -> dict[str, float]:
        missing = [f"{prefix}/{m}" for m in RULE_METRICS if f"{prefix}/{m}" not in metrics]
        if missing:
            raise ValueError(
                f"metrics has no {missing}: a first version is compared with the base model on the "
                f"evaluation's '{variant}/...' and 'base/...' figures (got {sorted(metrics)[:8]}...)"
            )
        return {m: float(metrics[f"{prefix}/{m}"]) for m in RULE_METRICS}

    queries = judged_queries(eval_set.get("relevant", {}))
    passes, why = decide(side(variant), side("base"), cfg, queries, against="base model")
    veto = foreign_veto(metrics, variant)
    if passes and veto is not None:
        return False, f"{why}; but {veto}"
    return passes, why


def condense(run: Mapping[str, Mapping[str, float]], unjudged: Mapping[str, set[str]]) -> Run:
    """``run`` without the ``unjudged`` (query, job) pairs: the jobs below each move up (a condensed list)."""
    return {q: {d: s for d, s in docs.items() if d not in unjudged.get(q, ())} for q, docs in run.items()}


def _rank(model: Model, eval_set: EvalSet, cfg: PromotionConfig) -> Run:
    """A registered version's (or the base model's) top-100 run on the held-out set."""
    from jude.modeling.embedder import Embedder

    if isinstance(model, ModelConfig):
        embedder = Embedder.from_base(model)
    else:
        embedder = Embedder.load(reg.download_model(model.uri))
    return retrieve(embedder, eval_set, k=100, batch_size=cfg.batch_size)


def base_model_config(version: reg.ModelVersionInfo) -> ModelConfig:
    """The un-fine-tuned model ``version`` was trained from, embedding as it does (its ``jude.json``)."""
    from jude.modeling.model_dir import ModelDir

    meta = ModelDir(str(reg.download_model(version.uri))).meta
    return ModelConfig(
        base_model=meta.base_model,
        pooling=meta.pooling,
        normalize=meta.normalize,
        template_style=meta.template_style,
        **{f"max_length_{e}": n for e, n in meta.max_lengths.items() if e in ("job", "profile", "resume")},
    )


def last_champion(model_name: str, exclude: str) -> reg.ModelVersionInfo | None:
    """The highest version but ``exclude`` that ever was champion (tagged ``was_champion``, or holding ``previous``)."""
    client = mlflow.tracking.MlflowClient()
    versions = {
        str(mv.version)
        for mv in client.search_model_versions(f"name='{model_name}'")
        if (mv.tags or {}).get(reg.WAS_CHAMPION_TAG) == "true"
    }
    previous = reg.get_version(model_name, "previous")
    if previous is not None:
        versions.add(previous.version)
    versions.discard(exclude)
    return reg.version_info(model_name, max(versions, key=int)) if versions else None


def _reference(model_name: str, challenger: reg.ModelVersionInfo) -> tuple[Model, str, str]:
    """What a challenger is compared with when there is no champion alias: (model, its label, why it was chosen)."""
    former = last_champion(model_name, exclude=challenger.version)
    if former is not None:
        label = f"v{former.version}, the last champion"
        return former, label, f"no 'champion' alias although other versions exist: compared with {label}"
    base = base_model_config(challenger)
    label = f"base model {base.base_model!r}"
    others = [
        mv
        for mv in mlflow.tracking.MlflowClient().search_model_versions(f"name='{model_name}'")
        if str(mv.version) != challenger.version
    ]
    if others:
        why = f"no 'champion' alias, and none of the {len(others)} other versions ever was champion"
    else:
        why = "the first version"
    return base, label, f"{why}, so compared with the base model, which a first champion must beat"


def _foreign_veto(model_name: str, version: reg.ModelVersionInfo) -> str | None:
    """The foreign-set guard on the challenger, from its training run's ``foreign/<variant>_vs_base_*`` figures
    (the version's ``variant`` tag names the row): see :func:`jude.evaluation.rule.foreign_veto`."""
    tags = mlflow.tracking.MlflowClient().get_model_version(model_name, version.version).tags or {}
    return foreign_veto(version.metrics, tags.get("variant", "finetuned"))


def promote_challenger(
    model_name: str,
    cfg: PromotionConfig,
    rank: Callable[[Model, EvalSet, PromotionConfig], Run] = _rank,
    judge: Any = None,
    lock: Callable[[str], AbstractContextManager] = promotion_lock,
) -> PromotionDecision:
    """Gate the ``challenger`` against the ``champion`` (or what stands in for it); move the aliases when it wins.

    ``rank`` (a version's, or the base model's, top-100 run on the held-out set)
    and ``judge`` (default: ``make_judge(cfg.labels)``, used when
    ``cfg.pool_depth > 0``) are injectable so the rule can be tested with known
    rankings. The whole gate, from reading the aliases to moving them, holds ``lock``
    (:func:`jude.registry.lock.promotion_lock`: one promotion of the model at a time, across machines in team
    mode), so two gates never both compare with the same champion and the later one overwrite the earlier.
    """
    with lock(model_name):
        return _promote_challenger(model_name, cfg, rank, judge)


def _promote_challenger(
    model_name: str, cfg: PromotionConfig, rank: Callable[[Model, EvalSet, PromotionConfig], Run], judge: Any
) -> PromotionDecision:
    challenger = reg.get_version(model_name, "challenger")
    if challenger is None:
        raise PromotionError(
            f"registered model {model_name!r} has no 'challenger' version at "
            f"{reg.resolve_tracking_uri()}: run `python run.py --pipeline train` first"
        )
    champion = reg.get_version(model_name, "champion")
    if champion is not None and champion.version == challenger.version:
        decision = PromotionDecision(
            False,
            f"nothing to compare: version {challenger.version} is both challenger and champion (no version has "
            "been trained since it became champion); its `promotion` tag still says why it is champion",
            model_name,
            challenger.version,
            champion.version,
        )
        _log(decision, tag_version=False)  # its tag still says why it became champion
        return decision
    if champion is not None:
        reference, label, why = champion, f"champion v{champion.version}", ""
    else:
        reference, label, why = _reference(model_name, challenger)

    eval_set = EvalSet.from_dict(reg.load_eval_set(challenger))
    runs = {"challenger": rank(challenger, eval_set, cfg), "reference": rank(reference, eval_set, cfg)}
    relevant, pool_stats, refusal = eval_set.relevant, {}, None
    evidence = "the logged judgements only"
    if cfg.pool_depth > 0:
        if judge is None:
            from jude.labels.judges import make_judge

            judge = make_judge(cfg.labels)
        pool = pooled_relevance(eval_set, runs, judge, cfg.pool_depth, cfg.labels.relevant_grade)
        relevant, pool_stats = pool.relevant, pool.counts
        runs = {name: condense(run, pool.unjudged) for name, run in runs.items()}
        failed, judged = int(pool.stats["failed"]), int(pool.stats["judged_pairs"])
        evidence = f"pooled judge, both top {cfg.pool_depth}"
        if judged and failed / judged > cfg.max_judge_failure_rate:
            refusal = (
                f"the judge failed on {failed} of {judged} pooled pairs ({failed / judged:.0%}), more than "
                f"promotion.max_judge_failure_rate={cfg.max_judge_failure_rate:.0%} allows: the comparison would "
                "rest on too few judgements"
            )
        elif failed:
            evidence += f"; {failed} pair{'s' if failed != 1 else ''} the judge failed on left out of both rankings"
    queries = judged_queries(relevant)
    ch_metrics = ranking_metrics(runs["challenger"], relevant)
    ref_metrics = ranking_metrics(runs["reference"], relevant)
    veto = _foreign_veto(model_name, challenger)
    if refusal is not None:
        promoted, verdict = False, refusal
    else:
        promoted, verdict = decide(ch_metrics, ref_metrics, cfg, queries, against=label)
        if promoted and veto is not None:
            promoted, verdict = False, f"{verdict}; but {veto}"
    reason = f"{why}; {verdict} ({evidence})" if why else f"{verdict} ({evidence})"

    previous = reference.version if promoted and isinstance(reference, reg.ModelVersionInfo) else None
    if promoted:
        if previous is not None:
            reg.set_alias(model_name, "previous", previous)
        reg.set_alias(model_name, "champion", challenger.version)
    decision = PromotionDecision(
        promoted,
        reason,
        model_name,
        challenger.version,
        challenger.version if promoted else (champion.version if champion else None),
        previous_version=previous,
        compared_with=label,
        queries=queries,
        challenger_metrics=ch_metrics,
        reference_metrics=ref_metrics,
        pool=pool_stats,
    )
    _log(decision)
    return decision


def _log(decision: PromotionDecision, tag_version: bool = True) -> None:
    """The decision as an MLflow run named ``promotion``, and on the challenger as its ``promotion`` tag."""

    def finite(prefix: str, values: Mapping[str, float]) -> dict[str, float]:
        return {f"{prefix}/{k}": float(v) for k, v in values.items() if math.isfinite(float(v))}

    with mlflow.start_run(run_name="promotion", nested=mlflow.active_run() is not None):
        mlflow.log_params(
            {
                "challenger_version": decision.challenger_version,
                "champion_version": decision.champion_version,
                "compared_with": decision.compared_with,
                "promoted": decision.promoted,
                "queries": decision.queries,
            }
        )
        mlflow.log_metrics(finite("challenger", decision.challenger_metrics))
        mlflow.log_metrics(finite("reference", decision.reference_metrics))
        mlflow.log_metrics(finite("pool", decision.pool))
        mlflow.set_tag("decision", decision.reason)
    if not tag_version:
        return
    client = mlflow.tracking.MlflowClient()
    outcome = "promoted to champion" if decision.promoted else "kept as challenger"
    name, version = decision.model_name, decision.challenger_version
    client.set_model_version_tag(name, version, reg.PROMOTION_TAG, f"{outcome} — {decision.reason}")
    if decision.promoted:
        client.set_model_version_tag(name, version, reg.WAS_CHAMPION_TAG, "true")
    if decision.promoted and decision.previous_version is not None:  # the champion it beat: now 'previous'
        client.set_model_version_tag(
            name,
            decision.previous_version,
            reg.PROMOTION_TAG,
            f"replaced as champion by version {version} (now alias 'previous', the fallback) — {decision.reason}",
        )
