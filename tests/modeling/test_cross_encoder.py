"""The cross-encoder teacher on a tiny random BERT: it learns, round-trips, scores candidates, reranks."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from jude.config import TeacherConfig
from jude.evaluation.retrieval import EvalSet
from jude.modeling.cross_encoder import (
    TEACHER_META_FILE,
    CrossEncoderTeacher,
    TeacherDataError,
    build_groups,
    group_loss,
    rerank,
    score_candidates,
    train_cross_encoder,
)
from jude.modeling.embedder import ModelLoadError
from jude.training.pairs import split_and_pair


@pytest.fixture(scope="module")
def split(small_market, small_labels):
    m = small_market
    return split_and_pair(m.jobs, m.members, m.interactions, small_labels, 0.15, 0.2, max_queries=30)


def _cfg(base, **kw):
    kw = {"max_length": 96, "batch_size": 4, "negatives_per_positive": 2, "learning_rate": 1e-3,
          "warmup_ratio": 0.0, "member_views": ["profile"], **kw}
    return TeacherConfig(base_model=str(base), **kw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert_dir, small_market, split):
    """A tiny teacher trained for 16 steps (shared by the scoring tests)."""
    out = tmp_path_factory.mktemp("teacher") / "t"
    res = train_cross_encoder(split.pairs, small_market.jobs, small_market.members, _cfg(tiny_bert_dir, max_steps=16),
                              out, show_progress=False)
    return res


def test_teacher_training_lowers_the_loss(trained):
    losses = [h["teacher/loss"] for h in trained.history]
    assert len(losses) == 16
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_listwise_loss_runs_and_is_recorded(tmp_path, tiny_bert_dir, small_market, split):
    res = train_cross_encoder(split.pairs, small_market.jobs, small_market.members,
                              _cfg(tiny_bert_dir, max_steps=2, loss="listwise"), tmp_path / "t", show_progress=False)
    losses = [h["teacher/loss"] for h in res.history]
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert losses[0] == pytest.approx(np.log(3), abs=0.05)  # 3 near-equal logits at the start: ln(1 + K)
    assert json.loads((res.model_dir / TEACHER_META_FILE).read_text())["train"]["loss"] == "listwise"


def test_save_load_round_trip_gives_identical_scores(trained, small_market):
    a = CrossEncoderTeacher.load(trained.model_dir)
    b = CrossEncoderTeacher.load(trained.model_dir)
    jobs, members = small_market.jobs.head(5), small_market.members.head(5)
    m_texts, j_texts = a.render("profile", members), a.render("job", jobs)
    s1 = a.score(m_texts, j_texts, batch_size=2)
    s2 = b.score(m_texts, j_texts, batch_size=5)
    assert s1.shape == (5,) and s1.dtype == np.float32
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    meta = json.loads((trained.model_dir / TEACHER_META_FILE).read_text())
    assert meta["max_length"] == 96 and meta["templates_version"] == "v1" and meta["train"]["steps"] == 16


def test_score_is_order_independent(trained, small_market):
    t = CrossEncoderTeacher.load(trained.model_dir)
    m = t.render("profile", small_market.members.head(4))
    j = t.render("job", small_market.jobs.head(4))
    fwd = t.score(m, j)
    rev = t.score(m[::-1], j[::-1])
    np.testing.assert_allclose(fwd, rev[::-1], atol=1e-5)


def test_score_rejects_misaligned_pairs(trained):
    t = CrossEncoderTeacher.load(trained.model_dir)
    with pytest.raises(ValueError, match="2 member texts but 1 job texts"):
        t.score(["a", "b"], ["c"])


def test_load_refuses_other_templates_version(trained, tmp_path):
    import shutil

    path = tmp_path / "old"
    shutil.copytree(trained.model_dir, path)
    meta = json.loads((path / TEACHER_META_FILE).read_text())
    (path / TEACHER_META_FILE).write_text(json.dumps({**meta, "templates_version": "v0"}))
    with pytest.raises(ModelLoadError, match="templates 'v0'"):
        CrossEncoderTeacher.load(path)


def test_load_refuses_a_directory_without_teacher_meta(tiny_bert_dir):
    with pytest.raises(ModelLoadError, match=TEACHER_META_FILE):
        CrossEncoderTeacher.load(tiny_bert_dir)


def test_score_candidates_shape_and_ids(trained, small_market):
    t = CrossEncoderTeacher.load(trained.model_dir)
    jobs, members = small_market.jobs, small_market.members
    cands = {"M00001": ["J00003", "J00007", "J00011"], "M00002": ["J00004", "J00003"]}
    df = score_candidates(t, cands, jobs, members, member_view="profile", show_progress=False)
    assert list(df.columns) == ["member_id", "job_id", "teacher_score"]
    assert len(df) == 5
    assert list(zip(df["member_id"], df["job_id"])) == [(m, j) for m, js in cands.items() for j in js]
    # same pair, same score as scoring it directly
    direct = t.score(t.render("profile", members[members.member_id == "M00002"]),
                     t.render("job", jobs[jobs.job_id == "J00003"]))
    assert df.iloc[4]["teacher_score"] == pytest.approx(float(direct[0]), abs=1e-5)


def test_score_candidates_names_unknown_ids(trained, small_market):
    t = CrossEncoderTeacher.load(trained.model_dir)
    with pytest.raises(TeacherDataError, match="unknown job.*J99999"):
        score_candidates(t, {"M00001": ["J99999"]}, small_market.jobs, small_market.members, show_progress=False)
    with pytest.raises(TeacherDataError, match="unknown member.*M99999"):
        score_candidates(t, {"M99999": ["J00001"]}, small_market.jobs, small_market.members, show_progress=False)


def test_rerank_orders_by_teacher_score(trained, small_market):
    t = CrossEncoderTeacher.load(trained.model_dir)
    jobs, members = small_market.jobs.head(12), small_market.members.head(2)
    es = EvalSet(queries={r["member_id"]: r for r in members.to_dict("records")},
                 corpus={r["job_id"]: r for r in jobs.to_dict("records")},
                 relevant={m: {"J00000": 2} for m in members["member_id"]})
    job_ids = jobs["job_id"].tolist()
    run = {q: {j: 1.0 - 0.01 * i for i, j in enumerate(job_ids)} for q in es.queries}
    out = rerank(t, run, es, k=8, show_progress=False)
    for q in es.queries:
        expected = t.score(t.render("profile", [es.queries[q]] * 8), t.render("job", [es.corpus[j] for j in job_ids[:8]]))
        ranked = sorted(out[q], key=lambda d: -out[q][d])
        assert ranked[:8] == [job_ids[i] for i in np.argsort(-expected, kind="stable")]
        assert ranked[8:] == job_ids[8:]  # below k: the bi-encoder's order, under every reranked job
        assert set(out[q]) == set(run[q])


def test_group_targets_are_graded_and_negatives_never_positive():
    pairs = pd.DataFrame({"member_id": ["m1", "m1", "m1", "m2"], "job_id": ["j1", "j2", "j3", "j1"],
                          "label": [1, 0, 0, 1], "grade": [3, 1, 0, 2], "source": ["relevance"] * 4})
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


def test_teacher_config_validation():
    with pytest.raises(ValueError, match="teacher.loss must be one of .*got 'hinge'"):
        TeacherConfig(loss="hinge")
    with pytest.raises(ValueError, match="max_length"):
        TeacherConfig(max_length=4)
    with pytest.raises(ValueError, match="learning_rate"):
        TeacherConfig(learning_rate=0)
