"""The training pipeline: data -> labels -> pairs -> fine-tune -> evaluate -> register."""

from typing import Optional

from zenml import Model, pipeline

from steps.evaluate_retrieval import evaluate_retrieval
from steps.finetune_embedder import finetune_embedder
from steps.generate_labels import generate_labels
from steps.load_marketplace import load_marketplace
from steps.register_embedder import register_embedder
from steps.retrieve_candidates import retrieve_candidates
from steps.split_pairs import split_pairs


@pipeline(model=Model(name="jude-embedder", description="Two-tower job/member embedder (JUDE)",
                      license="Apache-2.0", tags=["embeddings", "jude"]))
def train_pipeline(data: Optional[dict] = None, labels: Optional[dict] = None, model: Optional[dict] = None,
                   lora: Optional[dict] = None, train: Optional[dict] = None, loss: Optional[dict] = None,
                   scale: Optional[dict] = None,
                   eval: Optional[dict] = None,
                   registry: Optional[dict] = None) -> None:
    jobs, members, interactions = load_marketplace(data)
    candidates = retrieve_candidates(jobs, members, model, labels)
    label_table, _ = generate_labels(jobs, members, interactions, candidates, labels)
    pairs, val_set, test_set = split_pairs(jobs, members, interactions, label_table, data, train, eval)
    embedder = finetune_embedder(pairs, jobs, members, val_set, model, lora, train, loss, scale)
    metrics, _ = evaluate_retrieval(embedder, test_set, model, eval)
    register_embedder(embedder, metrics, test_set, registry)
