"""The gate never promotes a worse model, and promotes a first one."""

import mlflow
import pytest

from jude.config import ModelConfig, PromotionConfig
from jude.modeling.embedder import Embedder
from jude.registry import mlflow_registry as reg
from jude.registry.promotion import PromotionError, decide, promote_challenger

CFG = PromotionConfig(min_ndcg_gain=0.01, max_recall_drop=0.0)


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
        return reg.log_model_version(path, "jude-embedder", eval_set={"queries": {}, "corpus": {}, "relevant": {}})


def _fake_eval(scores):
    return lambda version, eval_set, cfg: scores[version.version]


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
    scores = {"1": {"ndcg_at_10": 0.5, "recall_at_100": 0.9}, "2": {"ndcg_at_10": 0.4, "recall_at_100": 0.95}}
    d = promote_challenger("jude-embedder", CFG, evaluate=_fake_eval(scores))
    assert not d.promoted and reg.get_version("jude-embedder", "champion").version == "1"
    assert reg.get_version("jude-embedder", "previous") is None

    _register(saved_model)  # v3 challenger, better
    scores["3"] = {"ndcg_at_10": 0.6, "recall_at_100": 0.9}
    d = promote_challenger("jude-embedder", CFG, evaluate=_fake_eval(scores))
    assert d.promoted and d.previous_version == "1"
    assert reg.get_version("jude-embedder", "champion").version == "3"
    assert reg.get_version("jude-embedder", "previous").version == "1"
    tags = mlflow.tracking.MlflowClient().get_model_version("jude-embedder", "3").tags
    assert tags["promotion"].startswith("promoted")


def test_real_evaluation_same_model_is_not_promoted(mlflow_uri, saved_model, small_market):
    from jude.evaluation.retrieval import build_eval_set

    m = small_market
    eval_set = build_eval_set(m.jobs, m.members, {m.members["member_id"][0]: {m.jobs["job_id"][0]: 2}})
    reg.configure(experiment="jude-test")
    for _ in range(2):
        with mlflow.start_run():
            reg.log_model_version(saved_model, "jude-embedder", eval_set=eval_set.to_dict())
    d = promote_challenger("jude-embedder", CFG)
    assert not d.promoted and "below the required" in d.reason
    assert d.challenger_metrics == pytest.approx(d.champion_metrics)
