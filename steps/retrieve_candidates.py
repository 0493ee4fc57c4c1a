"""Top-k jobs per member from the base model: the 'retrieved' share of the pairs to judge."""

from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import LabelConfig, ModelConfig
from jude.evaluation.retrieval import top_k_candidates
from jude.modeling.embedder import Embedder


@step
def retrieve_candidates(
    jobs: pd.DataFrame, members: pd.DataFrame, model: dict | None = None, labels: dict | None = None
) -> Annotated[dict, "base_candidates"]:
    """Embed every job and member with the base model; keep each member's top retrieve_k jobs."""
    model_cfg = ModelConfig.model_validate(model or {})
    label_cfg = LabelConfig.model_validate(labels or {})
    base = Embedder.from_base(model_cfg)
    candidates = top_k_candidates(base, jobs, members, k=label_cfg.retrieve_k, show_progress=True)
    log_metadata({"candidates": {"members": len(candidates), "k": label_cfg.retrieve_k}})
    return candidates
