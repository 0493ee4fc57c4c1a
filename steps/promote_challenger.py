"""The promotion gate of the deploy pipeline."""

from typing import Annotated, Optional

from zenml import log_metadata, step

from jude.config import PromotionConfig, RegistryConfig
from jude.registry.mlflow_registry import configure
from jude.registry.promotion import promote_challenger as gate


@step
def promote_challenger(registry: Optional[dict] = None,
                       promotion: Optional[dict] = None) -> Annotated[dict, "promotion_decision"]:
    """Evaluate challenger and champion on the same held-out set; promote only a better model."""
    reg_cfg = RegistryConfig.model_validate(registry or {})
    cfg = PromotionConfig.model_validate(promotion or {})
    configure(reg_cfg.tracking_uri, reg_cfg.experiment)
    decision = gate(reg_cfg.model_name, cfg).to_dict()
    log_metadata({"promotion": decision})
    return decision
