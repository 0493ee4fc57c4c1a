"""What the registry says about a version: headline tags and a description a reader can act on."""

import mlflow
from mlflow.tracking import MlflowClient

from jude.config import DataConfig
from jude.registry import mlflow_registry as reg
from jude.registry.descriptions import data_summary, headline_sentence, headline_tags

METRICS = {
    "base/ndcg_at_10": 0.3246,
    "base/recall_at_100": 0.93251,
    "finetuned/ndcg_at_10": 0.51012345,
    "finetuned/recall_at_100": 0.9617,
    "labelled/base/ndcg_at_10": 0.4353,  # logged beside the pooled figures: these are pooled
    "labelled/finetuned/ndcg_at_10": 0.5134,
}
EVAL_SET = {"queries": {f"q{i}": {} for i in range(104)}, "corpus": {}, "relevant": {}}


def test_headline_tags_carry_the_figures_their_truth_and_the_ratio():
    assert headline_tags(METRICS, "finetuned", EVAL_SET) == {
        "variant": "finetuned",
        "judgements": "pooled judge judgements",
        "ndcg_at_10": "0.5101",
        "base_ndcg_at_10": "0.3246",
        "recall_at_100": "0.9617",
        "base_recall_at_100": "0.9325",
        "ndcg_at_10_vs_base": "1.57x",
        "test_members": "104",
    }
    labelled_only = {k: v for k, v in METRICS.items() if not k.startswith("labelled/")}
    assert headline_tags(labelled_only, "finetuned", None)["judgements"] == "labelled judgements"
    assert headline_tags({}, "finetuned", EVAL_SET) == {}  # registered without an evaluation: no tags
    assert headline_sentence(METRICS, "finetuned", EVAL_SET) == (
        "nDCG@10 0.510 vs the base model's 0.325, 1.57x on pooled judge judgements (104 held-out test members); "
        "recall@100 0.962 (base 0.933)."
    )


def test_data_summary_names_the_marketplace_or_the_files():
    assert data_summary({"synthetic": {"n_jobs": 600, "n_members": 400, "seed": 0}}) == (
        "the synthetic marketplace (600 jobs, 400 members, 90 days, seed 0)"
    )
    assert data_summary(DataConfig(source="files", path="/data/market")) == "the tables under /data/market"


def test_a_registered_version_explains_itself(mlflow_uri, saved_model):
    reg.configure(experiment="jude-test")
    with mlflow.start_run():
        v1 = reg.log_model_version(
            saved_model,
            "jude-embedder",
            metrics=METRICS,
            eval_set=EVAL_SET,
            first_champion=(True, "nDCG@10 0.5101 vs base model 0.3246 on 104 held-out queries"),
            data="the synthetic marketplace (600 jobs, 400 members, 90 days, seed 0)",
        )
        v2 = reg.log_model_version(saved_model, "jude-embedder", metrics=METRICS, eval_set=EVAL_SET)
    client = MlflowClient()
    model = client.get_registered_model("jude-embedder")
    assert "`champion` is the version served" in model.description
    assert "jude serve --model models:/jude-embedder@champion" in model.description
    mv = client.get_model_version("jude-embedder", v1.version)
    assert mv.tags["ndcg_at_10"] == "0.5101" and mv.tags["ndcg_at_10_vs_base"] == "1.57x"
    assert mv.tags["judgements"] == "pooled judge judgements"
    assert mv.tags["promotion"].startswith("promoted to champion — the first version: nDCG@10 0.5101")
    assert "base model `minilm`" in mv.description and "600 jobs, 400 members" in mv.description
    assert "1.57x on pooled judge judgements (104 held-out test members)" in mv.description
    assert "`jude serve --model models:/jude-embedder/1`" in mv.description
    # the second waits for the gate and says against what
    assert client.get_model_version("jude-embedder", v2.version).tags["promotion"] == (
        "waiting for the promotion gate — registered as challenger; `python run.py --pipeline deploy` "
        "compares it with champion v1"
    )
    # the logged model is named after the registered model, not "model"
    assert {m.name for m in mlflow.search_logged_models(output_format="list")} == {"jude-embedder"}
