"""Join each row with its embeddings read from the offline history as of the impression (and latest)."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import EvalConfig, RankerConfig
from jude.ranker.run import EmbeddingModel, embedding_features


@step
def join_embedding_features(
    ranker_rows: pd.DataFrame,
    ranker_models: dict,
    ranker_history: dict,
    ranker: dict | None = None,
    eval: dict | None = None,
) -> tuple[Annotated[pd.DataFrame, "embedding_features"], Annotated[dict, "embedding_feature_stats"]]:
    """Per view (base, champion, champion_latest, champion_latest_served): cosine (and projections) of each
    row's member and job embeddings, point-in-time; missing shares and how much time travel there is."""
    features, stats = embedding_features(
        ranker_rows,
        RankerConfig.model_validate(ranker or {}),
        {role: EmbeddingModel(**m) for role, m in ranker_models.items()},
        EvalConfig.model_validate(eval or {}).member_view,
    )
    log_metadata({"embedding_features": stats, "history_path": ranker_history["history_path"]})
    return features, stats
