"""The promotion gate of the deploy pipeline."""

from typing import Annotated

from zenml import log_metadata, step

from jude.config import PromotionConfig, RegistryConfig
from jude.registry.mlflow_registry import configure
from jude.registry.promotion import promote_challenger as gate
from zenml_glue.model_stages import sync_model_stages


@step
def promote_challenger(
    registry: dict | None = None, promotion: dict | None = None
) -> Annotated[dict, "promotion_decision"]:
    """Compare the challenger with the champion (or, without one, the last champion or the base model) on its
    held-out set; promote only a model shown to be better (``jude.registry.promotion``). The ZenML Model
    versions' stages then follow the aliases (champion: production, challenger: staging)."""
    reg_cfg = RegistryConfig.model_validate(registry or {})
    cfg = PromotionConfig.model_validate(promotion or {})
    uri = configure(reg_cfg.tracking_uri, reg_cfg.experiment)
    decision = gate(reg_cfg.model_name, cfg).to_dict()
    changes = sync_model_stages(reg_cfg.model_name, uri)
    for change in changes:
        print(f"promote_challenger: {change}")
    log_metadata({"promotion": decision, "zenml_stages": [str(c) for c in changes]})
    return decision
