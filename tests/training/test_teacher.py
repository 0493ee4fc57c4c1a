"""Training the cross-encoder teacher on a tiny random BERT: groups, losses, and a run that learns."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from jude.config import TeacherConfig
from jude.modeling.cross_encoder import TEACHER_META_FILE, TeacherDataError
from jude.training.teacher import build_groups, group_loss, train_cross_encoder


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
