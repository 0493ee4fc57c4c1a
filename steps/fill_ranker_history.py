"""Fill the offline history the ranker reads: every content of every job and member, per embedding version."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import EvalConfig, ModelConfig, RankerConfig
from jude.data.schema import Marketplace
from jude.ranker.run import EmbeddingModel, fill


@step(enable_cache=False)  # writes to the history: never skipped from a cache
def fill_ranker_history(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    ranker_models: dict,
    ranker: dict | None = None,
    model: dict | None = None,
    eval: dict | None = None,
) -> Annotated[dict, "ranker_history"]:
    """The bootstrap's backfill over the change stream (ranker.build_history), or a check that the history
    holds both versions; what each version embedded and reused."""
    cfg = RankerConfig.model_validate(ranker or {})
    summary = fill(
        cfg,
        {role: EmbeddingModel(**m) for role, m in ranker_models.items()},
        Marketplace(jobs=jobs, members=members, interactions=interactions),
        ModelConfig.model_validate(model or {}),
        EvalConfig.model_validate(eval or {}).member_view,
    )
    log_metadata({"history": summary})
    for role, s in summary["models"].items():
        print(
            f"jude ranker: {role} {s['embedding_version']}: {s['distinct_texts']} distinct texts, "
            f"{s['inferences']} inferences, {s['reused_from_history']} reused, {s['seconds']:.1f}s"
        )
    return summary
