"""The apply-prediction ranker pipeline: what the embeddings are worth to a ranker, and what time travel does.

load -> rows (impressions, outcomes, standard features) -> resolve base + champion -> fill the offline
history (the bootstrap's backfill over the change stream) -> point-in-time embedding features -> one apply
model per feature set, test-period metrics with member bootstrap intervals -> MLflow + report.
"""

from zenml import pipeline
from zenml.enums import ExecutionMode

from steps.build_ranker_rows import build_ranker_rows
from steps.evaluate_ranker import evaluate_ranker
from steps.fill_ranker_history import fill_ranker_history
from steps.join_embedding_features import join_embedding_features
from steps.load_marketplace import load_marketplace
from steps.resolve_ranker_models import resolve_ranker_models
from zenml_glue.stop import before_each_step


@pipeline(execution_mode=ExecutionMode.FAIL_FAST, on_start=before_each_step)
def ranker_pipeline(
    ranker: dict | None = None,
    data: dict | None = None,
    model: dict | None = None,
    train: dict | None = None,
    eval: dict | None = None,
    registry: dict | None = None,
) -> None:
    jobs, members, interactions = load_marketplace(data)
    rows = build_ranker_rows(jobs, members, interactions, ranker, data, train, eval)
    models = resolve_ranker_models(ranker, model, registry)
    history = fill_ranker_history(jobs, members, interactions, models, ranker, model, eval)
    features, stats = join_embedding_features(rows, models, history, ranker, eval)
    evaluate_ranker(rows, features, stats, history, models, ranker)
