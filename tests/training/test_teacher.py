"""Training the cross-encoder teacher on a tiny random BERT: groups, losses, and a run that learns."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from jude.config import TeacherConfig
from jude.modeling.cross_encoder import TEACHER_META_FILE, TeacherDataError
from jude.training.teacher import (
    build_groups,
    finetuned_top_k,
    group_loss,
    negative_origins,
    train_cross_encoder,
)


def _cfg(base, **kw):
    kw = {
        "max_length": 96,
        "batch_size": 4,
        "negatives_per_positive": 2,
        "learning_rate": 1e-3,
        "warmup_ratio": 0.0,
        "member_views": ["profile"],
        **kw,
    }
    return TeacherConfig(base_model=str(base), **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir, small_market, split):
    """A tiny teacher trained for 16 steps."""
    out = tmp_path_factory.mktemp("teacher") / "t"
    return train_cross_encoder(
        split.pairs,
        small_market.jobs,
        small_market.members,
        _cfg(tiny_bert_dir, max_steps=16),
        out,
        show_progress=False,
    )


def test_teacher_training_lowers_the_loss(trained):
    losses = [h["teacher/loss"] for h in trained.history]
    assert len(losses) == 16
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_listwise_loss_runs_and_is_recorded(tmp_path, tiny_bert_dir, small_market, split):
    res = train_cross_encoder(
        split.pairs,
        small_market.jobs,
        small_market.members,
        _cfg(tiny_bert_dir, max_steps=2, loss="listwise"),
        tmp_path / "t",
        show_progress=False,
    )
    losses = [h["teacher/loss"] for h in res.history]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert losses[0] == pytest.approx(np.log(3), abs=0.05)  # 3 near-equal logits at the start: ln(1 + K)
    assert json.loads((res.model_dir / TEACHER_META_FILE).read_text())["train"]["loss"] == "listwise"


def test_group_targets_are_graded_and_negatives_never_positive():
    pairs = pd.DataFrame(
        {
            "member_id": ["m1", "m1", "m1", "m2"],
            "job_id": ["j1", "j2", "j3", "j1"],
            "label": [1, 0, 0, 1],
            "grade": [3, 1, 0, 2],
            "source": ["relevance"] * 4,
        }
    )
    groups = build_groups(pairs, ["j1", "j2", "j3", "j4"], TeacherConfig(negatives_per_positive=2))
    g1 = groups[0]
    assert g1.job_ids[0] == "j1" and sorted(g1.job_ids[1:]) == ["j2", "j3"]
    assert dict(zip(g1.job_ids, g1.targets)) == {"j1": 1.0, "j2": pytest.approx(1 / 3), "j3": 0.0}
    g2 = groups[1]
    assert g2.targets[0] == pytest.approx(2 / 3) and "j1" not in g2.job_ids[1:] and g2.targets[1:] == [0.0, 0.0]


def test_groups_refuse_bad_grades_and_no_positives():
    pairs = pd.DataFrame({"member_id": ["m1"], "job_id": ["j1"], "label": [1], "grade": [7], "source": ["relevance"]})
    with pytest.raises(TeacherDataError, match="grade must be in 0..3, got 7"):
        build_groups(pairs, ["j1", "j2"], TeacherConfig())
    with pytest.raises(TeacherDataError, match="no positive"):
        build_groups(pairs.assign(label=0, grade=0), ["j1", "j2"], TeacherConfig())


def test_group_loss_prefers_the_positive_on_top():
    targets = torch.tensor([[1.0, 0.0, 0.0]])
    good, bad = torch.tensor([[3.0, -3.0, -3.0]]), torch.tensor([[-3.0, 3.0, 3.0]])
    for loss in ("bce", "listwise"):
        assert group_loss(good, targets, loss) < group_loss(bad, targets, loss)


def test_the_saved_teacher_records_its_training(trained):
    meta = json.loads((trained.model_dir / TEACHER_META_FILE).read_text())
    assert meta["max_length"] == 96 and meta["templates_version"] == "v1" and meta["train"]["steps"] == 16


# ---- a teacher that is a teacher: the fine-tuned model's hard negatives, a check on validation members ----------
def test_negatives_come_from_the_finetuned_top_k_judged_first():
    pairs = pd.DataFrame(
        {
            "member_id": ["m1"] * 5,
            "job_id": ["j1", "j2", "j3", "j4", "j5"],
            "label": [1, 0, 0, 0, 1],
            "grade": [3, 1, 0, 0, 2],
            "source": ["relevance"] * 5,
        }
    )
    jobs = [f"j{i}" for i in range(1, 10)]
    # the fine-tuned model's top-k of m1: its positives j1/j5 (never negatives), judged j2, unjudged j6 and j7
    mined = {"m1": ["j1", "j6", "j2", "j5", "j7"]}
    cfg = TeacherConfig(negatives_per_positive=4)
    groups = build_groups(pairs, jobs, cfg, mined=mined)
    assert len(groups) == 2
    for g in groups:
        negs = dict(zip(g.job_ids[1:], g.origins))
        assert negs["j2"] == "finetuned_judged"  # judged and in the top-k: always first
        assert g.origins[0] == "finetuned_judged"
        assert {"j1", "j5"}.isdisjoint(negs)  # a positive of the member is never its negative
        assert [negs[j] for j in ("j3", "j4")] == ["judged", "judged"]  # then the other judged negatives
        assert sum(o == "finetuned_unjudged" for o in g.origins) == 1  # then the top-k's unjudged jobs
        assert set(negs) - {"j2", "j3", "j4"} <= {"j6", "j7"}
        assert dict(zip(g.job_ids, g.targets))["j2"] == pytest.approx(1 / 3)
    stats = negative_origins(groups)
    assert stats["negatives_finetuned_judged"] == 2 and stats["negatives_random"] == 0
    assert stats["negatives_from_finetuned_top_k"] == pytest.approx(4 / 8)
    # without the top-k the same groups fall back to judged, then random negatives
    plain = build_groups(pairs, jobs, cfg)
    assert {o for g in plain for o in g.origins} == {"judged", "random"}


def test_the_teacher_trains_on_the_finetuned_models_hard_negatives(tmp_path, tiny_bert_dir, small_market, split):
    from jude.config import ModelConfig
    from jude.modeling.embedder import Embedder

    finetuned = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir), max_length_job=32, max_length_profile=32))
    mined = finetuned_top_k(finetuned, split.pairs, small_market.jobs, small_market.members, k=20)
    train_members = set(split.pairs.loc[split.pairs["label"] == 1, "member_id"])
    assert set(mined) == train_members  # training members only: no held-out member reaches the teacher
    assert all(len(js) == 20 for js in mined.values())
    res = train_cross_encoder(
        split.pairs,
        small_market.jobs,
        small_market.members,
        _cfg(tiny_bert_dir, max_steps=2, hard_negatives_k=20),
        tmp_path / "t",
        show_progress=False,
        mined=mined,
    )
    s = res.stats
    assert s["hard_negatives_k"] == 20
    # mostly the fine-tuned model's own top-20, not random jobs
    assert s["negatives_from_finetuned_top_k"] > 0.5, s
    assert s["negatives_random"] < 0.1 * s["groups"] * 2, s


def test_the_teacher_check_compares_on_validation_members(tmp_path, tiny_bert_dir, minilm, split):
    from jude.config import EvalConfig
    from jude.labels.rubric import RubricJudge
    from jude.modeling.cross_encoder import CrossEncoderTeacher
    from jude.training.teacher import check_teacher

    # an untrained tiny cross-encoder shuffles MiniLM's top 20: a teacher that is no teacher
    teacher = CrossEncoderTeacher.from_base(_cfg(tiny_bert_dir))
    check = check_teacher(minilm, teacher, split.val, RubricJudge(), EvalConfig(pool_depth=20), 2, rerank_k=20)
    assert check.queries == len(split.val.queries) and check.pooled
    assert 0 < check.finetuned_ndcg <= 1 and 0 <= check.teacher_ndcg <= 1
    assert check.teacher_ndcg < check.finetuned_ndcg
    assert not check.meaningful and "NOT" in check.summary()
    assert check.metrics()["distillation_meaningful"] == 0.0
