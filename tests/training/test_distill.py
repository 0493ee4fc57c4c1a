"""Distillation on a tiny random BERT: the student's margins move toward the teacher's; the controls train on the
student's batches from the same LoRA; bad input is refused."""

import numpy as np
import pandas as pd
import pytest
import torch

from jude.config import DistillConfig, LoRAConfig, ModelConfig, TeacherConfig, TrainConfig
from jude.evaluation.retrieval import top_k_candidates
from jude.modeling.cross_encoder import CrossEncoderTeacher
from jude.modeling.embedder import Embedder
from jude.training.distill import (
    RUNS,
    ControlMismatchError,
    DistillInputs,
    batch_schedule,
    candidate_lists,
    check_controls,
    distill_embedder,
    distill_from_teacher,
    distill_loss,
    distillation_metrics,
    schedule_digest,
)
from jude.training.trainer import TrainingDataError


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory, tiny_bert_dir):
    """A 'fine-tuned' student: the tiny BERT saved as a jude model (what train_embedder writes)."""
    model = ModelConfig(base_model=str(tiny_bert_dir), max_length_job=48, max_length_profile=32, max_length_resume=48)
    return Embedder.from_base(model).save(tmp_path_factory.mktemp("student") / "s")


@pytest.fixture(scope="module")
def toy_scores(small_market):
    """6 members x 6 candidates with fixed, arbitrary teacher logits (unit spread)."""
    rng = np.random.default_rng(0)
    members = small_market.members["member_id"].tolist()[:6]
    jobs = small_market.jobs["job_id"].tolist()
    rows = []
    for m in members:
        for j in rng.choice(jobs, size=6, replace=False):
            rows.append((m, j, float(rng.normal(0, 1))))
    return pd.DataFrame(rows, columns=["member_id", "job_id", "teacher_score"])


def _cfgs(**distill):
    lora = LoRAConfig(r=8, alpha=16, dropout=0.0)
    train = TrainConfig(member_views=["profile"], warmup_ratio=0.0)
    kw = {"candidates_k": 6, "group_size": 6, "batch_size": 3, "learning_rate": 2e-2, "infonce_weight": 0.0, **distill}
    return lora, train, DistillConfig(**kw)


def test_distillation_moves_student_margins_toward_the_teacher(tmp_path, student_dir, toy_scores, small_market):
    lora, train, cfg = _cfgs(loss="margin_mse", max_steps=30)
    res = distill_embedder(
        student_dir,
        toy_scores,
        small_market.jobs,
        small_market.members,
        None,
        lora,
        train,
        cfg,
        tmp_path / "d",
        show_progress=False,
    )
    s = res.stats
    assert s["steps"] == 30 and len(res.history) == 30
    assert s["after/margin_mse"] < 0.6 * s["before/margin_mse"]
    assert s["after/spearman"] > s["before/spearman"]
    # the saved model is what was measured, and it records its lineage
    saved = Embedder.load(res.model_dir)
    again = distillation_metrics(saved, toy_scores, small_market.jobs, small_market.members, cfg)
    assert again["margin_mse"] == pytest.approx(s["after/margin_mse"], rel=1e-3)
    assert saved.meta.extra["distill"]["student_dir"] == str(student_dir)
    assert (res.model_dir / "adapter").is_dir()


def test_kl_distillation_with_infonce_anchor(tmp_path, student_dir, toy_scores, small_market):
    # every toy member's first candidate is its labelled positive
    firsts = toy_scores.groupby("member_id").head(1)
    pairs = firsts.assign(label=1, grade=3, source="relevance")[["member_id", "job_id", "label", "grade", "source"]]
    lora, train, cfg = _cfgs(loss="both", max_steps=20, infonce_weight=0.5)
    res = distill_embedder(
        student_dir,
        toy_scores,
        small_market.jobs,
        small_market.members,
        None,
        lora,
        train,
        cfg,
        tmp_path / "d",
        pairs=pairs,
        show_progress=False,
    )
    assert all({"distill/kl", "distill/margin_mse", "distill/infonce"} <= set(h) for h in res.history)
    assert res.stats["after/kl"] < res.stats["before/kl"]


def test_distill_loss_is_zero_when_student_matches_teacher():
    teacher = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    cfg = DistillConfig(
        loss="both", margin_scale=20.0, student_temperature=0.05, teacher_temperature=1.0, group_size=3, candidates_k=3
    )
    parts = distill_loss(teacher / 20.0, teacher, cfg)  # student cosines x 20 == teacher logits
    assert parts["margin_mse"] == pytest.approx(0.0, abs=1e-10)
    assert parts["kl"] == pytest.approx(0.0, abs=1e-6)
    worse = distill_loss(-teacher / 20.0, teacher, cfg)
    assert worse["margin_mse"] > 1.0 and worse["kl"] > 0.1


def test_candidate_lists_sort_by_teacher_and_drop_short_lists(small_market):
    ts = pd.DataFrame(
        {
            "member_id": ["M00001"] * 3 + ["M00002"],
            "job_id": ["J00001", "J00002", "J00003", "J00001"],
            "teacher_score": [0.1, 2.0, -1.0, 5.0],
        }
    )
    lists, stats = candidate_lists(ts, small_market.jobs, small_market.members, min_candidates=2)
    assert lists.member_ids == ["M00001"] and lists.job_ids[0] == ["J00002", "J00001", "J00003"]
    assert stats["distill_members_dropped"] == 1


@pytest.mark.parametrize(
    "bad, match",
    [
        (pd.DataFrame({"member_id": ["M00001"], "job_id": ["J00001"]}), r"missing column\(s\) \['teacher_score'\]"),
        (
            pd.DataFrame(
                {
                    "member_id": ["M00001", "M00001"],
                    "job_id": ["J00001", "J00002"],
                    "teacher_score": [1.0, float("nan")],
                }
            ),
            "row 1: teacher_score must be a finite number",
        ),
        (
            pd.DataFrame(
                {"member_id": ["M00001", "M00001"], "job_id": ["J00001", "J99999"], "teacher_score": [1.0, 2.0]}
            ),
            "unknown job.*J99999",
        ),
        (
            pd.DataFrame(
                {"member_id": ["M00001", "M00001"], "job_id": ["J00001", "J00001"], "teacher_score": [1.0, 2.0]}
            ),
            "row 1: duplicate pair",
        ),
    ],
)
def test_bad_teacher_scores_are_named(bad, match, small_market):
    with pytest.raises(TrainingDataError, match=match):
        candidate_lists(bad, small_market.jobs, small_market.members)


def test_infonce_anchor_needs_pairs(tmp_path, student_dir, toy_scores, small_market):
    lora, train, cfg = _cfgs(infonce_weight=0.1, max_steps=1)
    with pytest.raises(ValueError, match="infonce_weight=0.1 needs the training pairs"):
        distill_embedder(
            student_dir,
            toy_scores,
            small_market.jobs,
            small_market.members,
            None,
            lora,
            train,
            cfg,
            tmp_path / "d",
            show_progress=False,
        )
    assert not (tmp_path / "d").exists()


def test_distill_from_teacher_scores_the_training_members_candidates_then_distils(
    tmp_path, tiny_bert_dir, student_dir, small_market
):
    # an untrained tiny teacher is enough: what is checked is which pairs it scores and what is distilled
    teacher_dir = CrossEncoderTeacher.from_base(TeacherConfig(base_model=str(tiny_bert_dir), max_length=96)).save(
        tmp_path / "teacher"
    )
    jobs, members = small_market.jobs, small_market.members
    train_members = members["member_id"].tolist()[:6]
    pairs = pd.DataFrame(
        {
            "member_id": train_members,
            "job_id": jobs["job_id"].tolist()[:6],
            "label": 1,
            "grade": 3,
            "source": "relevance",
        }
    )
    lora, train, cfg = _cfgs(loss="margin_mse", max_steps=4)
    logged = []
    res = distill_from_teacher(
        DistillInputs(student_dir, pairs, jobs, members, None, lora, train, cfg),
        teacher_dir,
        tmp_path / "d",
        log=lambda metrics, step: logged.append(step),
        show_progress=False,
    )
    # the student's top candidates_k of each training member (and only those), each scored by the teacher
    expected = top_k_candidates(Embedder.load(student_dir), jobs, members[members["member_id"].isin(train_members)], 6)
    scores = res.teacher_scores
    assert scores.groupby("member_id")["job_id"].apply(list).to_dict() == expected
    assert np.isfinite(scores["teacher_score"]).all()
    assert res.result.stats["distill_pairs"] == len(scores) == 6 * 6 and res.result.stats["steps"] == 4
    assert len(logged) == 4
    assert Embedder.load(res.result.model_dir).meta.extra["distill"]["student_dir"] == str(student_dir)


def test_distill_config_validation():
    with pytest.raises(ValueError, match=r"loss\n  Input should be 'margin_mse', 'kl' or 'both'.*input_value='mse'"):
        DistillConfig(loss="mse")
    with pytest.raises(ValueError, match=r"group_size \(30\) must be <= distill.candidates_k \(20\)"):
        DistillConfig(group_size=30, candidates_k=20)
    with pytest.raises(ValueError, match="student_temperature"):
        DistillConfig(student_temperature=0)


# ---- controls: the same batches, seed and fresh LoRA as the student ------------------------------------------
def _anchor_pairs(toy_scores):
    """Each toy member's first candidate is a labelled positive, its last a judged negative."""
    firsts = toy_scores.groupby("member_id").head(1).assign(label=1, grade=3)
    lasts = toy_scores.groupby("member_id").tail(1).assign(label=0, grade=0)
    return pd.concat([firsts, lasts]).assign(source="relevance")[["member_id", "job_id", "label", "grade", "source"]]


def test_the_controls_train_on_the_students_batches_from_the_same_lora(tmp_path, student_dir, toy_scores, small_market):
    pairs = _anchor_pairs(toy_scores)
    lora, train, cfg = _cfgs(loss="both", max_steps=4, infonce_weight=0.5, group_size=4)
    seen: dict[str, list] = {}
    results = {}
    for run in RUNS:
        seen[run] = []
        results[run] = distill_embedder(
            student_dir,
            toy_scores,
            small_market.jobs,
            small_market.members,
            None,
            lora,
            train.model_copy(update={"hard_negatives": 1}),
            cfg,
            tmp_path / run,
            pairs=pairs,
            measure=False,
            show_progress=False,
            run=run,
            on_batch=lambda b, run=run: seen[run].append(b.ids()),
        )
    # every run saw the same four batches: members, candidates, positives and negatives, in order
    assert len(seen["distilled"]) == 4
    assert seen["control_anchor"] == seen["distilled"] == seen["control_steps"]
    digests = {r: (res.stats["batch_schedule_sha256"], res.stats["lora_init_sha256"]) for r, res in results.items()}
    assert len(set(digests.values())) == 1, digests
    # ... and only the loss differs: the student reads the teacher, the controls do not
    parts = {r: set().union(*(h.keys() for h in res.history)) for r, res in results.items()}
    assert {"distill/kl", "distill/margin_mse", "distill/infonce"} <= parts["distilled"]
    assert not any("kl" in k or "margin_mse" in k for k in parts["control_anchor"] | parts["control_steps"])
    assert "control_anchor/infonce" in parts["control_anchor"] and "control_steps/infonce" in parts["control_steps"]
    # three different models came out (the controls are not copies of the student)
    rows = small_market.members.head(4)
    emb = {r: Embedder.load(res.model_dir).encode_entities("profile", rows) for r, res in results.items()}
    assert not np.allclose(emb["distilled"], emb["control_anchor"], atol=1e-5)
    assert not np.allclose(emb["control_anchor"], emb["control_steps"], atol=1e-5)
    assert Embedder.load(results["control_steps"].model_dir).meta.extra["distill"]["run"] == "control_steps"
    # the step's check: the student's recorded digests against each control's
    student = Embedder.load(results["distilled"].model_dir).meta.extra["distill"]
    controls = {r: res for r, res in results.items() if r != "distilled"}
    assert check_controls(student, controls) == student["batch_schedule_sha256"]
    with pytest.raises(ControlMismatchError, match="control_anchor started from LoRA .* not the same fresh LoRA"):
        check_controls({**student, "lora_init_sha256": "0" * 64}, controls)
    with pytest.raises(ControlMismatchError, match="not the same batches"):
        check_controls({**student, "batch_schedule_sha256": "0" * 64}, controls)
    with pytest.raises(ControlMismatchError, match="records no lora_init_sha256"):
        check_controls({k: v for k, v in student.items() if k != "lora_init_sha256"}, controls)


def test_the_batch_schedule_is_a_function_of_the_seed(small_market, toy_scores):
    lists, _ = candidate_lists(toy_scores, small_market.jobs, small_market.members, min_candidates=4)
    positives = {m: [js[0]] for m, js in zip(lists.member_ids, lists.job_ids)}
    negatives = {m: [js[-1]] for m, js in zip(lists.member_ids, lists.job_ids)}
    jobs = small_market.jobs["job_id"].tolist()

    def digest(seed):
        cfg = DistillConfig(candidates_k=6, group_size=4, batch_size=3, max_steps=5, seed=seed)
        return schedule_digest(batch_schedule(lists, positives, negatives, ["profile"], cfg, 1, jobs))

    assert digest(0) == digest(0)
    assert digest(0) != digest(1)


def test_control_anchor_needs_an_anchor_and_the_pairs(tmp_path, student_dir, toy_scores, small_market):
    lora, train, cfg = _cfgs(max_steps=1, infonce_weight=0.0)
    with pytest.raises(ValueError, match="needs the training pairs"):
        distill_embedder(
            student_dir, toy_scores, small_market.jobs, small_market.members, None, lora, train, cfg,
            tmp_path / "a", run="control_steps", show_progress=False,
        )  # fmt: skip
    with pytest.raises(ValueError, match="infonce_weight=0.0: there is no anchor"):
        distill_embedder(
            student_dir, toy_scores, small_market.jobs, small_market.members, None, lora, train, cfg,
            tmp_path / "b", pairs=_anchor_pairs(toy_scores), run="control_anchor", show_progress=False,
        )  # fmt: skip


def test_ablation_controls_and_selection_need_distillation():
    from jude.config import AblationConfig

    with pytest.raises(ValueError, match="ablation.controls=true needs ablation.distill=true"):
        AblationConfig(controls=True)
    with pytest.raises(ValueError, match="ablation.register_model='selected' needs ablation.distill=true"):
        AblationConfig(register_model="selected")
    assert AblationConfig(distill=True, controls=True, register_model="selected").controls
