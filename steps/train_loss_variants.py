"""The loss-suite rows of the evaluation table: the same data and schedule, other loss weights."""

import tempfile
from typing import Annotated

import pandas as pd
from zenml import log_metadata, step

from jude.config import LOSS_VARIANTS, AblationConfig, LoRAConfig, LossConfig, ModelConfig, ScaleConfig, TrainConfig
from jude.evaluation.assemble import UNSEEN_PREFIX
from jude.evaluation.retrieval import EvalSet, retrieve
from jude.modeling.embedder import Embedder
from jude.training.fit import fit
from zenml_glue.stack import EXPERIMENT_TRACKER


@step(experiment_tracker=EXPERIMENT_TRACKER)
def train_loss_variants(
    training_pairs: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    test_set: dict,
    model: dict | None = None,
    lora: dict | None = None,
    train: dict | None = None,
    loss: dict | None = None,
    scale: dict | None = None,
    ablation: dict | None = None,
) -> Annotated[dict, "variant_runs"]:
    """Train one model per ``ablation.loss_variants`` entry; return its top-100 run on the held-out queries.

    The metrics are computed by ``evaluate_retrieval``, on the same (pooled) relevance judgements as every
    other row of the table.
    """
    model_cfg = ModelConfig.model_validate(model or {})
    lora_cfg = LoRAConfig.model_validate(lora or {})
    train_cfg = TrainConfig.model_validate(train or {})
    base_loss = LossConfig.model_validate(loss or {})
    scale_cfg = ScaleConfig.model_validate(scale or {})
    abl = AblationConfig.model_validate(ablation or {})
    eval_set = EvalSet.from_dict(test_set)
    runs: dict[str, dict[str, dict[str, float]]] = {}
    stats: dict[str, dict] = {}
    for variant in abl.loss_variants:
        loss_cfg = base_loss.model_copy(update={"weights": LOSS_VARIANTS[variant]})
        out = tempfile.mkdtemp(prefix=f"jude-{variant}-") + "/model"
        res = fit(  # the same trainer as finetune_embedder, so the rows differ by their loss weights only
            training_pairs, jobs, members, model_cfg, lora_cfg, train_cfg, out, loss_cfg=loss_cfg, scale=scale_cfg
        )
        embedder = Embedder.load(res.model_dir)
        runs[variant] = retrieve(embedder, eval_set, k=100)
        if eval_set.unseen is not None:  # evaluate_retrieval scores it under unseen/<variant>
            runs[f"{UNSEEN_PREFIX}{variant}"] = retrieve(embedder, eval_set.unseen, k=100)
        stats[variant] = res.stats
    log_metadata({"variants": stats})
    return runs
