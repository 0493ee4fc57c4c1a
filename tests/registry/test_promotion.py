"""The gate fails closed: it never promotes a worse model, and never promotes on too little or broken evidence.

A first version becomes champion only when it beats the base model; a missing champion alias is not a first
model; judge failures neither count against a model nor decide the comparison; too few queries and NaN never
promote. Rankings are injected (``_fake_rank``) so each rule is tested on known orders.
"""

import math

import mlflow
import pytest

from jude.config import ModelConfig, PromotionConfig
from jude.labels.judges import Judgement
from jude.registry import mlflow_registry as reg
from jude.registry.promotion import PromotionError, decide, first_version_verdict, promote_challenger

NAME = "jude-embedder"
CFG = PromotionConfig(min_ndcg_gain=0.01, max_recall_drop=0.0, pool_depth=0, min_queries=1)
JOBS = [f"j{i}" for i in range(1, 10)]
EVAL_SET = {
    "queries": {"q1": {"member_id": "q1"}},
    "corpus": {j: {"job_id": j} for j in JOBS},
    "relevant": {"q1": {"j1": 2}},
}  # j1 judged relevant; j2 relevant too, but nobody judged it
BEATS_BASE = (True, "nDCG@10 0.47 vs base model 0.41 on 1 held-out queries (test)")


def test_rule():
    champ = {"ndcg_at_10": 0.30, "recall_at_100": 0.80}
    assert decide({"ndcg_at_10": 0.32, "recall_at_100": 0.80}, champ, CFG, queries=1)[0] is True
    ok, why = decide({"ndcg_at_10": 0.305, "recall_at_100": 0.90}, champ, CFG, queries=1)
    assert not ok and "below the required" in why
    ok, why = decide({"ndcg_at_10": 0.40, "recall_at_100": 0.79}, champ, CFG, queries=1)
    assert not ok and "recall@100 falls" in why


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("side", ["challenger", "champion"])
def test_nan_or_inf_never_promotes(bad, side):
    good, broken = {"ndcg_at_10": 0.30, "recall_at_100": 0.80}, {"ndcg_at_10": bad, "recall_at_100": 0.80}
    ch, cp = (broken, good) if side == "challenger" else ({"ndcg_at_10": 0.90, "recall_at_100": 0.90}, broken)
    ok, why = decide(ch, cp, CFG, queries=1)
    assert not ok and "not a finite number" in why and "ndcg_at_10" in why


def _register(path, first_champion=None, eval_set=EVAL_SET):
    """Log and register a version; ``first_champion`` is the registration's verdict against the base model."""
    reg.configure(experiment="jude-test")
    with mlflow.start_run():
        kwargs = {} if first_champion is None else {"first_champion": first_champion}
        return reg.log_model_version(path, NAME, eval_set=eval_set, **kwargs)


def _fake_rank(tops):
    """version (or 'base' for the base model) -> its ranking of q1, best first: a run with descending scores."""

    def rank(model, eval_set, cfg):
        key = "base" if isinstance(model, ModelConfig) else model.version
        return {"q1": {j: 1.0 - 0.01 * i for i, j in enumerate(tops[key])}}

    return rank


def _tag(version):
    return mlflow.tracking.MlflowClient().get_model_version(NAME, version).tags.get("promotion", "")


class _TruthJudge:
    """Grades j2 and j3 3, j1 2, every other job 0; fails on the jobs in ``fails``; counts what it was asked."""

    def __init__(self, fails=()):
        self.asked, self.fails = [], set(fails)

    def grade_pairs(self, pairs):
        self.asked += [job["job_id"] for _, job in pairs]
        return [
            Judgement(grade=None, error="malformed answer")
            if job["job_id"] in self.fails
            else Judgement(grade={"j1": 2, "j2": 3, "j3": 3}.get(job["job_id"], 0))
            for _, job in pairs
        ]


def test_no_challenger_is_a_clear_error(mlflow_uri):
    with pytest.raises(PromotionError, match="no 'challenger'"):
        promote_challenger(NAME, CFG)


def test_first_version_that_beats_base_is_champion_at_registration(mlflow_uri, saved_model):
    v1 = _register(saved_model, first_champion=BEATS_BASE)
    assert set(v1.aliases) == {"challenger", "champion"}
    assert _tag("1").startswith("promoted to champion") and "base model" in _tag("1")
    # the gate confirms and does not move anything
    d = promote_challenger(NAME, CFG)
    assert d.champion_version == v1.version and not d.promoted
    assert d.reason.startswith("nothing to compare: version 1 is both challenger and champion")
    assert _tag("1").startswith("promoted to champion")  # still says why it is champion
    assert reg.get_version(NAME, "champion").version == v1.version


def test_first_version_that_does_not_beat_base_stays_challenger(mlflow_uri, saved_model):
    metrics = {
        "base/ndcg_at_10": 0.41,
        "base/recall_at_100": 0.9,
        "finetuned/ndcg_at_10": 0.412,
        "finetuned/recall_at_100": 0.9,
    }
    verdict = first_version_verdict(metrics, EVAL_SET, "finetuned", CFG)
    assert verdict[0] is False and "below the required" in verdict[1]
    v1 = _register(saved_model, first_champion=verdict)
    assert v1.aliases == ["challenger"] and reg.get_version(NAME, "champion") is None
    tag = _tag("1")
    assert tag.startswith("kept as challenger") and "0.4120 vs base model 0.4100 on 1 held-out queries" in tag


def test_first_version_is_compared_with_the_base_model_by_the_gate(mlflow_uri, saved_model):
    """Registered without a verdict (or after failing it): the gate compares it with the base model."""
    v1 = _register(saved_model)
    assert reg.get_version(NAME, "champion") is None
    tops = {"base": ["j1", "j5", "j6"], "1": ["j5", "j1", "j6"]}  # the base model ranks j1 first
    d = promote_challenger(NAME, CFG, rank=_fake_rank(tops))
    assert not d.promoted and d.champion_version is None and reg.get_version(NAME, "champion") is None
    assert "base model 'minilm'" in d.reason and d.reference_metrics["ndcg_at_10"] == pytest.approx(1.0)
    assert _tag(v1.version).startswith("kept as challenger")

    tops["1"] = ["j1", "j5", "j6"]
    tops["base"] = ["j5", "j6", "j1"]
    d = promote_challenger(NAME, CFG, rank=_fake_rank(tops))
    assert d.promoted and reg.get_version(NAME, "champion").version == "1"
    assert reg.get_version(NAME, "previous") is None  # the base model is no version to fall back to
    assert _tag("1").startswith("promoted to champion")


def test_a_deleted_champion_alias_compares_with_the_last_champion(mlflow_uri, saved_model):
    _register(saved_model, first_champion=BEATS_BASE)  # v1 champion
    _register(saved_model)  # v2
    tops = {"1": ["j5", "j1", "j6"], "2": ["j1", "j5", "j6"], "3": ["j5", "j6", "j1"]}
    assert promote_challenger(NAME, CFG, rank=_fake_rank(tops)).promoted  # v2 champion, v1 previous
    _register(saved_model)  # v3: worse than v2, better than nothing
    mlflow.tracking.MlflowClient().delete_registered_model_alias(NAME, "champion")

    d = promote_challenger(NAME, CFG, rank=_fake_rank(tops))
    assert not d.promoted and reg.get_version(NAME, "champion") is None
    assert "no 'champion' alias" in d.reason and "v2" in d.reason and d.compared_with.startswith("v2")
    assert _tag("3").startswith("kept as challenger")


def test_too_few_queries_never_promote(mlflow_uri, saved_model):
    _register(saved_model, first_champion=BEATS_BASE)  # v1 champion
    _register(saved_model)  # v2: much better, on one query
    tops = {"1": ["j5", "j6", "j1"], "2": ["j1", "j5", "j6"]}
    d = promote_challenger(NAME, CFG.model_copy(update={"min_queries": 50}), rank=_fake_rank(tops))
    assert not d.promoted and reg.get_version(NAME, "champion").version == "1"
    assert "only 1 held-out queries" in d.reason and "promotion.min_queries=50" in d.reason
    assert d.queries == 1


# The case: the champion (v1) ranks the truly relevant j2 and j3 first; the challenger (v2) only finds
# the labelled j1. Pooling the top 4 sends 6 pairs to the judge, which fails on 3 of them (j2, j3, j4). Counting
# the failures as irrelevant promoted v2, which a reliable judge rejects by 0.77 nDCG@10.
FAILING_TOPS = {"1": ["j2", "j3", "j1", "j4"], "2": ["j1", "j5", "j6", "j7"]}


def test_the_reliable_judge_rejects_the_challenger_of_the_failing_judge_case(mlflow_uri, saved_model):
    _register(saved_model, first_champion=BEATS_BASE)
    _register(saved_model)
    cfg = CFG.model_copy(update={"pool_depth": 4})
    d = promote_challenger(NAME, cfg, rank=_fake_rank(FAILING_TOPS), judge=_TruthJudge())
    assert not d.promoted and d.reference_metrics["ndcg_at_10"] - d.challenger_metrics["ndcg_at_10"] > 0.6


def test_judge_failures_above_the_cap_never_promote(mlflow_uri, saved_model):
    _register(saved_model, first_champion=BEATS_BASE)
    _register(saved_model)
    cfg = CFG.model_copy(update={"pool_depth": 4})  # max_judge_failure_rate: the default 0.1
    judge = _TruthJudge(fails={"j2", "j3", "j4"})
    d = promote_challenger(NAME, cfg, rank=_fake_rank(FAILING_TOPS), judge=judge)
    assert sorted(judge.asked) == ["j2", "j3", "j4", "j5", "j6", "j7"]
    assert not d.promoted and reg.get_version(NAME, "champion").version == "1"
    assert "failed on 3 of 6 pooled pairs" in d.reason and "max_judge_failure_rate" in d.reason
    assert d.pool["failed"] == 3 and _tag("2").startswith("kept as challenger")


def test_judge_failures_are_left_out_of_both_rankings(mlflow_uri, saved_model):
    """Below the cap, a pair the judge failed on is dropped from both runs (condensed lists), not scored 0."""
    _register(saved_model, first_champion=BEATS_BASE)
    _register(saved_model)
    cfg = CFG.model_copy(update={"pool_depth": 4, "max_judge_failure_rate": 1.0})
    d = promote_challenger(NAME, cfg, rank=_fake_rank(FAILING_TOPS), judge=_TruthJudge(fails={"j2", "j3", "j4"}))
    # condensed, the champion ranks j1 first too: a tie, where "failed = irrelevant" gave the challenger +0.5
    assert d.reference_metrics["ndcg_at_10"] == pytest.approx(1.0) == d.challenger_metrics["ndcg_at_10"]
    assert not d.promoted and "below the required" in d.reason
    assert "3 pairs the judge failed on left out of both rankings" in d.reason


def test_worse_model_is_never_promoted_better_one_is(mlflow_uri, saved_model):
    _register(saved_model, first_champion=BEATS_BASE)  # v1 champion
    _register(saved_model)  # v2 challenger, worse
    tops = {"1": ["j5", "j1", "j6"], "2": ["j5", "j6", "j1"]}  # champion ranks j1 second, challenger third
    d = promote_challenger(NAME, CFG, rank=_fake_rank(tops))
    assert not d.promoted and reg.get_version(NAME, "champion").version == "1"
    assert reg.get_version(NAME, "previous") is None
    assert _tag("2").startswith("kept as challenger") and "vs champion v1" in _tag("2")

    _register(saved_model)  # v3 challenger, better
    tops["3"] = ["j1", "j5", "j6"]
    d = promote_challenger(NAME, CFG, rank=_fake_rank(tops))
    assert d.promoted and d.previous_version == "1"
    assert reg.get_version(NAME, "champion").version == "3"
    assert reg.get_version(NAME, "previous").version == "1"
    assert _tag("3").startswith("promoted")
    assert _tag("1").startswith("replaced as champion by version 3 (now alias 'previous', the fallback) — ")


def test_the_gate_judges_the_champions_top_results_too(mlflow_uri, saved_model):
    _register(saved_model, first_champion=BEATS_BASE)  # v1 champion: finds the unjudged j2 first, then j1
    _register(saved_model)  # v2 challenger: j1 first, never j2
    tops = {"1": ["j2", "j1", "j5"], "2": ["j1", "j5", "j6"]}
    # on the logged judgements alone the challenger looks better: the champion's j2 counts as irrelevant
    d = promote_challenger(NAME, CFG, rank=_fake_rank(tops))
    assert d.promoted and d.pool == {}
    reg.set_alias(NAME, "champion", "1")
    reg.set_alias(NAME, "challenger", "2")

    judge = _TruthJudge()
    d = promote_challenger(NAME, CFG.model_copy(update={"pool_depth": 2}), rank=_fake_rank(tops), judge=judge)
    assert sorted(judge.asked) == ["j2", "j5"]  # both top-2s, minus the already-judged j1
    assert d.pool["judged_pairs"] == 2 and d.pool["relevant_added"] == 1
    assert not d.promoted and d.reference_metrics["ndcg_at_10"] > d.challenger_metrics["ndcg_at_10"]
    assert reg.get_version(NAME, "champion").version == "1"


def test_real_evaluation_same_model_is_not_promoted(mlflow_uri, saved_model, small_market):
    from jude.evaluation.retrieval import build_eval_set

    m = small_market
    eval_set = build_eval_set(m.jobs, m.members, {m.members["member_id"][0]: {m.jobs["job_id"][0]: 2}})
    _register(saved_model, first_champion=BEATS_BASE, eval_set=eval_set.to_dict())
    _register(saved_model, eval_set=eval_set.to_dict())
    d = promote_challenger(NAME, CFG.model_copy(update={"pool_depth": 20}))  # the rubric judge pools
    assert not d.promoted and "below the required" in d.reason
    assert d.challenger_metrics == pytest.approx(d.reference_metrics)
    assert d.pool["pool_depth"] == 20 and d.pool["judged_pairs"] > 0


def test_the_foreign_set_vetoes_a_first_champion_that_loses_to_the_base_model_on_it():
    from jude.evaluation.rule import foreign_veto

    metrics = {
        "base/ndcg_at_10": 0.30,
        "base/recall_at_100": 0.90,
        "distilled/ndcg_at_10": 0.60,
        "distilled/recall_at_100": 0.95,
        "foreign/distilled_vs_base_delta": -0.08,
        "foreign/distilled_vs_base_delta_ci_low": -0.12,
        "foreign/distilled_vs_base_delta_ci_high": -0.04,
    }
    ok, why = first_version_verdict(metrics, EVAL_SET, "distilled", CFG)
    assert not ok and "loses to the base model on the foreign set: pairwise accuracy -0.0800" in why
    # inside its interval (the top end above zero) it is no veto, and a run without the figures is not vetoed
    assert foreign_veto({**metrics, "foreign/distilled_vs_base_delta_ci_high": 0.01}, "distilled") is None
    assert first_version_verdict(
        {**metrics, "foreign/distilled_vs_base_delta_ci_high": 0.01}, EVAL_SET, "distilled", CFG
    )[0]
    assert foreign_veto({k: v for k, v in metrics.items() if "foreign" not in k}, "distilled") is None


def test_the_gate_never_promotes_a_challenger_that_loses_to_the_base_model_on_the_foreign_set(mlflow_uri, saved_model):
    reg.configure(experiment="jude-test")
    with mlflow.start_run():
        mlflow.log_metrics(
            {
                "foreign/finetuned_vs_base_delta": -0.05,
                "foreign/finetuned_vs_base_delta_ci_low": -0.09,
                "foreign/finetuned_vs_base_delta_ci_high": -0.01,
            }
        )
        reg.log_model_version(saved_model, NAME, eval_set=EVAL_SET)
    tops = {"base": ["j5", "j6", "j1"], "1": ["j1", "j5", "j6"]}  # the challenger wins in-world
    d = promote_challenger(NAME, CFG, rank=_fake_rank(tops))
    assert not d.promoted and reg.get_version(NAME, "champion") is None
    assert "loses to the base model on the foreign set" in d.reason
    assert _tag("1").startswith("kept as challenger")
