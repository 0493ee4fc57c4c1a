"""The gate never promotes a worse model, promotes a first one, and pools judgements from both models."""

import mlflow
import pytest

from jude.config import ModelConfig, PromotionConfig
from jude.modeling.embedder import Embedder
from jude.registry import mlflow_registry as reg
from jude.registry.promotion import PromotionError, decide, promote_challenger

CFG = PromotionConfig(min_ndcg_gain=0.01, max_recall_drop=0.0, pool_depth=0)
JOBS = [f"j{i}" for i in range(1, 10)]
EVAL_SET = {"queries": {"q1": {"member_id": "q1"}}, "corpus": {j: {"job_id": j} for j in JOBS},
            "relevant": {"q1": {"j1": 2}}}  # j1 judged relevant; j2 relevant too, but nobody judged it


def test_rule():
    champ = {"ndcg_at_10": 0.30, "recall_at_100": 0.80}
    assert decide({"ndcg_at_10": 0.32, "recall_at_100": 0.80}, champ, CFG)[0] is True
    ok, why = decide({"ndcg_at_10": 0.305, "recall_at_100": 0.90}, champ, CFG)
    assert not ok and "below the required" in why
    ok, why = decide({"ndcg_at_10": 0.40, "recall_at_100": 0.79}, champ, CFG)
    assert not ok and "recall@100 falls" in why


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "model"
    Embedder.from_base(ModelConfig()).save(path)
    return path


def _register(path):
    reg.configure(experiment="jude-test")
    with mlflow.start_run():
        return reg.log_model_version(path, "jude-embedder", eval_set=EVAL_SET)


def _fake_rank(tops):
    """version -> its ranking of q1, best first: a run with descending scores."""
    return lambda version, eval_set, cfg: {"q1": {j: 1.0 - 0.01 * i for i, j in enumerate(tops[version.version])}}


class _TruthJudge:
    """Grades j1 2, j2 3, every other job 0; counts what it was asked."""

    def __init__(self):
        self.asked = []

    def grade_pairs(self, pairs):
        from jude.labels.judges import Judgement

        self.asked += [job["job_id"] for _, job in pairs]
        return [Judgement(grade={"j1": 2, "j2": 3}.get(job["job_id"], 0)) for _, job in pairs]


def test_no_challenger_is_a_clear_error(mlflow_uri):
    with pytest.raises(PromotionError, match="no 'challenger'"):
        promote_challenger("jude-embedder", CFG)


def test_first_model_is_promoted(mlflow_uri, saved_model):
    v1 = _register(saved_model)
    # log_model_version already made it champion; the gate confirms and does not move anything
    d = promote_challenger("jude-embedder", CFG)
    assert d.champion_version == v1.version and not d.promoted
    assert reg.get_version("jude-embedder", "champion").version == v1.version


def test_first_model_without_champion_alias_is_promoted(mlflow_uri, saved_model):
    v1 = _register(saved_model)
    mlflow.tracking.MlflowClient().delete_registered_model_alias("jude-embedder", "champion")
    d = promote_challenger("jude-embedder", CFG)
    assert d.promoted and reg.get_version("jude-embedder", "champion").version == v1.version


def test_worse_model_is_never_promoted_better_one_is(mlflow_uri, saved_model):
    _register(saved_model)  # v1 champion
    _register(saved_model)  # v2 challenger, worse
    tops = {"1": ["j5", "j1", "j6"], "2": ["j5", "j6", "j1"]}  # champion ranks j1 second, challenger third
    d = promote_challenger("jude-embedder", CFG, rank=_fake_rank(tops))
    assert not d.promoted and reg.get_version("jude-embedder", "champion").version == "1"
    assert reg.get_version("jude-embedder", "previous") is None

    _register(saved_model)  # v3 challenger, better
    tops["3"] = ["j1", "j5", "j6"]
    d = promote_challenger("jude-embedder", CFG, rank=_fake_rank(tops))
    assert d.promoted and d.previous_version == "1"
    assert reg.get_version("jude-embedder", "champion").version == "3"
    assert reg.get_version("jude-embedder", "previous").version == "1"
    tags = mlflow.tracking.MlflowClient().get_model_version("jude-embedder", "3").tags
    assert tags["promotion"].startswith("promoted")


def test_the_gate_judges_the_champions_top_results_too(mlflow_uri, saved_model):
    _register(saved_model)  # v1 champion: finds the unjudged j2 first, then j1
    _register(saved_model)  # v2 challenger: j1 first, never j2
    tops = {"1": ["j2", "j1", "j5"], "2": ["j1", "j5", "j6"]}
    # on the logged judgements alone the challenger looks better: the champion's j2 counts as irrelevant
    d = promote_challenger("jude-embedder", CFG, rank=_fake_rank(tops))
    assert d.promoted and d.pool == {}
    reg.set_alias("jude-embedder", "champion", "1")
    reg.set_alias("jude-embedder", "challenger", "2")

    judge = _TruthJudge()
    d = promote_challenger("jude-embedder", CFG.model_copy(update={"pool_depth": 2}), rank=_fake_rank(tops),
                           judge=judge)
    assert sorted(judge.asked) == ["j2", "j5"]  # both top-2s, minus the already-judged j1
    assert d.pool["judged_pairs"] == 2 and d.pool["relevant_added"] == 1
    assert not d.promoted and d.champion_metrics["ndcg_at_10"] > d.challenger_metrics["ndcg_at_10"]
    assert reg.get_version("jude-embedder", "champion").version == "1"


def test_real_evaluation_same_model_is_not_promoted(mlflow_uri, saved_model, small_market):
    from jude.evaluation.retrieval import build_eval_set

    m = small_market
    eval_set = build_eval_set(m.jobs, m.members, {m.members["member_id"][0]: {m.jobs["job_id"][0]: 2}})
    reg.configure(experiment="jude-test")
    for _ in range(2):
        with mlflow.start_run():
            reg.log_model_version(saved_model, "jude-embedder", eval_set=eval_set.to_dict())
    d = promote_challenger("jude-embedder", CFG.model_copy(update={"pool_depth": 20}))  # the rubric judge pools
    assert not d.promoted and "below the required" in d.reason
    assert d.challenger_metrics == pytest.approx(d.champion_metrics)
    assert d.pool["pool_depth"] == 20 and d.pool["judged_pairs"] > 0
