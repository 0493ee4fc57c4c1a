"""The training pipeline: JUDE's chain.

data -> labels -> pairs -> fine-tune -> teacher (on the fine-tuned hard negatives, checked on the validation
members) -> distil -> [controls] -> evaluate -> select (validation members) -> register.

The ``ablation`` section decides the DAG: ``distill`` adds the teacher and the distilled model,
``controls`` distillation's two control rows, ``loss_variants`` the loss-suite rows, ``register_model``
which model is registered ('selected': the best candidate that passes the promotion rule against the base model
on the validation members, or none).
"""

from zenml import Model, pipeline
from zenml.enums import ExecutionMode

from jude.config import AblationConfig
from steps.distill_embedder import distill_embedder
from steps.evaluate_retrieval import evaluate_retrieval
from steps.finetune_embedder import finetune_embedder
from steps.generate_labels import generate_labels
from steps.load_marketplace import load_marketplace
from steps.register_embedder import register_embedder
from steps.retrieve_candidates import retrieve_candidates
from steps.select_candidate import select_candidate
from steps.split_pairs import split_pairs
from steps.train_distill_controls import train_distill_controls
from steps.train_loss_variants import train_loss_variants
from steps.train_teacher import train_teacher
from zenml_glue.stop import before_each_step


@pipeline(
    model=Model(
        name="jude-embedder",
        description="Two-tower job/member embedder (JUDE)",
        license="Apache-2.0",
        tags=["embeddings", "jude"],
    ),
    execution_mode=ExecutionMode.FAIL_FAST,  # a failed step ends the run: every branch feeds register_embedder
    on_start=before_each_step,  # no step starts after SIGTERM/SIGINT (zenml_glue/stop.py)
)
def train_pipeline(
    data: dict | None = None,
    labels: dict | None = None,
    model: dict | None = None,
    lora: dict | None = None,
    train: dict | None = None,
    loss: dict | None = None,
    scale: dict | None = None,
    teacher: dict | None = None,
    distill: dict | None = None,
    ablation: dict | None = None,
    eval: dict | None = None,
    registry: dict | None = None,
    promotion: dict | None = None,
) -> None:
    abl = AblationConfig.model_validate(ablation or {})  # decides the shape of the DAG
    jobs, members, interactions = load_marketplace(data)
    candidates = retrieve_candidates(jobs, members, model, labels)
    label_table, _ = generate_labels(jobs, members, interactions, candidates, labels)
    pairs, val_set, test_set, train_jobs = split_pairs(jobs, members, interactions, label_table, data, train, eval)
    # training sees only the jobs posted before t_val (the strict time cut); evaluation ranks every job
    embedder = finetune_embedder(pairs, train_jobs, members, val_set, model, lora, train, loss, scale)
    variants = distilled = teacher_dir = teacher_check = control_anchor = control_steps = None
    if abl.loss_variants:
        variants = train_loss_variants(pairs, train_jobs, members, test_set, model, lora, train, loss, scale, ablation)
    if abl.distill:
        teacher_dir, teacher_check = train_teacher(
            pairs, train_jobs, members, embedder, val_set, teacher, model, labels, eval, ablation
        )
        teacher_scores, distilled = distill_embedder(
            embedder, teacher_dir, pairs, train_jobs, members, model, lora, train, distill
        )
        if abl.controls:
            control_anchor, control_steps = train_distill_controls(
                embedder, distilled, teacher_scores, pairs, train_jobs, members, model, lora, train, distill
            )
    metrics, judged_test_set, _ = evaluate_retrieval(
        embedder,
        test_set,
        model,
        eval,
        ablation,
        labels,
        variants,
        distilled,
        teacher_dir,
        control_anchor=control_anchor,
        control_steps=control_steps,
        teacher_check=teacher_check,
    )
    selection = None
    if abl.register_model == "selected":  # the promotion rule against the base model on the validation members
        registered, variant, selection = select_candidate(
            embedder, distilled, val_set, model, labels, eval, promotion, teacher_check
        )
    elif abl.register_model == "distilled":
        registered, variant = distilled, "distilled"
    else:
        registered, variant = embedder, "finetuned"
    # nothing is registered when no candidate passes the rule on validation; a first version becomes champion
    # only if it also passes it against the base model on the held-out test set
    register_embedder(registered, metrics, judged_test_set, registry, promotion, variant=variant, selection=selection)
