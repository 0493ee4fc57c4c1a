"""The promotion gate of the deploy pipeline."""

from typing import Annotated

from zenml import log_metadata, step

from jude.config import PromotionConfig, RegistryConfig
from jude.registry.mlflow_registry import configure
from jude.registry.promotion import promote_challenger as gate


@step
def promote_challenger(
    registry: dict | None = None, promotion: dict | None = None
) -> Annotated[dict, "promotion_decision"]:
    """Compare the challenger with the champion (or, without one, the last champion or the base model) on its
    held-out set; promote only a model shown to be better (``jude.registry.promotion``)."""
    reg_cfg = RegistryConfig.model_validate(registry or {})
    cfg = PromotionConfig.model_validate(promotion or {})
    configure(reg_cfg.tracking_uri, reg_cfg.experiment)
    decision = gate(reg_cfg.model_name, cfg).to_dict()
    log_metadata({"promotion": decision})
    return decision
