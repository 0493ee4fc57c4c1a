"""The training pipeline: data -> labels -> pairs -> fine-tune -> (ablation, teacher, distil) -> evaluate -> register."""

from typing import Optional

from zenml import Model, pipeline

from jude.config import AblationConfig
from steps.distill_embedder import distill_embedder
from steps.evaluate_retrieval import evaluate_retrieval
from steps.finetune_embedder import finetune_embedder
from steps.generate_labels import generate_labels
from steps.load_marketplace import load_marketplace
from steps.register_embedder import register_embedder
from steps.retrieve_candidates import retrieve_candidates
from steps.split_pairs import split_pairs
from steps.train_loss_variants import train_loss_variants
from steps.train_teacher import train_teacher


@pipeline(model=Model(name="jude-embedder", description="Two-tower job/member embedder (JUDE)",
                      license="Apache-2.0", tags=["embeddings", "jude"]))
def train_pipeline(data: Optional[dict] = None, labels: Optional[dict] = None, model: Optional[dict] = None,
                   lora: Optional[dict] = None, train: Optional[dict] = None, loss: Optional[dict] = None,
                   scale: Optional[dict] = None, teacher: Optional[dict] = None, distill: Optional[dict] = None,
                   ablation: Optional[dict] = None, eval: Optional[dict] = None,
                   registry: Optional[dict] = None) -> None:
    abl = AblationConfig.model_validate(ablation or {})  # decides the shape of the DAG
    jobs, members, interactions = load_marketplace(data)
    candidates = retrieve_candidates(jobs, members, model, labels)
    label_table, _ = generate_labels(jobs, members, interactions, candidates, labels)
    pairs, val_set, test_set = split_pairs(jobs, members, interactions, label_table, data, train, eval)
    embedder = finetune_embedder(pairs, jobs, members, val_set, model, lora, train, loss, scale)
    variants = distilled = teacher_dir = None
    if abl.loss_variants:
        variants = train_loss_variants(pairs, jobs, members, test_set, model, lora, train, loss, scale, ablation)
    if abl.distill:
        teacher_dir = train_teacher(pairs, jobs, members, teacher, model)
        _, distilled = distill_embedder(embedder, teacher_dir, pairs, jobs, members, model, lora, train, distill)
    metrics, judged_test_set, _ = evaluate_retrieval(embedder, test_set, model, eval, ablation, labels, variants,
                                                     distilled, teacher_dir)
    register_embedder(distilled if abl.register_model == "distilled" else embedder, metrics, judged_test_set,
                      registry)
