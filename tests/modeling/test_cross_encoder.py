"""The cross-encoder teacher model on a tiny random BERT: it round-trips, scores candidates, reranks.

Its training is tested in tests/training/test_teacher.py.
"""

import json

import numpy as np
import pytest
import torch

from jude.config import TeacherConfig
from jude.evaluation.retrieval import EvalSet
from jude.modeling.cross_encoder import (
    TEACHER_META_FILE,
    CrossEncoderTeacher,
    TeacherDataError,
    rerank,
    score_candidates,
)
from jude.modeling.model_dir import ModelLoadError


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory, tiny_bert_dir):
    """A tiny teacher (random BERT, fresh seeded head), saved: what the scoring tests load."""
    torch.manual_seed(0)
    cfg = TeacherConfig(base_model=str(tiny_bert_dir), max_length=96, member_views=["profile"])
    return CrossEncoderTeacher.from_base(cfg).save(tmp_path_factory.mktemp("teacher") / "t")


def test_save_load_round_trip_gives_identical_scores(teacher_dir, small_market):
    a = CrossEncoderTeacher.load(teacher_dir)
    b = CrossEncoderTeacher.load(teacher_dir)
    jobs, members = small_market.jobs.head(5), small_market.members.head(5)
    m_texts, j_texts = a.render("profile", members), a.render("job", jobs)
    s1 = a.score(m_texts, j_texts, batch_size=2)
    s2 = b.score(m_texts, j_texts, batch_size=5)
    assert s1.shape == (5,) and s1.dtype == np.float32
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    meta = json.loads((teacher_dir / TEACHER_META_FILE).read_text())
    assert meta["max_length"] == 96 and meta["templates_version"] == "v1" and meta["member_views"] == ["profile"]


def test_score_is_order_independent(teacher_dir, small_market):
    t = CrossEncoderTeacher.load(teacher_dir)
    m = t.render("profile", small_market.members.head(4))
    j = t.render("job", small_market.jobs.head(4))
    fwd = t.score(m, j)
    rev = t.score(m[::-1], j[::-1])
    np.testing.assert_allclose(fwd, rev[::-1], atol=1e-5)


def test_score_rejects_misaligned_pairs(teacher_dir):
    t = CrossEncoderTeacher.load(teacher_dir)
    with pytest.raises(ValueError, match="2 member texts but 1 job texts"):
        t.score(["a", "b"], ["c"])


def test_load_refuses_other_templates_version(teacher_dir, tmp_path):
    import shutil

    path = tmp_path / "old"
    shutil.copytree(teacher_dir, path)
    meta = json.loads((path / TEACHER_META_FILE).read_text())
    (path / TEACHER_META_FILE).write_text(json.dumps({**meta, "templates_version": "v0"}))
    with pytest.raises(ModelLoadError, match="templates 'v0'"):
        CrossEncoderTeacher.load(path)


def test_load_refuses_a_directory_without_teacher_meta(tiny_bert_dir):
    with pytest.raises(ModelLoadError, match=TEACHER_META_FILE):
        CrossEncoderTeacher.load(tiny_bert_dir)


def test_score_candidates_shape_and_ids(teacher_dir, small_market):
    t = CrossEncoderTeacher.load(teacher_dir)
    jobs, members = small_market.jobs, small_market.members
    cands = {"M00001": ["J00003", "J00007", "J00011"], "M00002": ["J00004", "J00003"]}
    df = score_candidates(t, cands, jobs, members, member_view="profile", show_progress=False)
    assert list(df.columns) == ["member_id", "job_id", "teacher_score"]
    assert len(df) == 5
    assert list(zip(df["member_id"], df["job_id"])) == [(m, j) for m, js in cands.items() for j in js]
    # same pair, same score as scoring it directly
    direct = t.score(
        t.render("profile", members[members.member_id == "M00002"]), t.render("job", jobs[jobs.job_id == "J00003"])
    )
    assert df.iloc[4]["teacher_score"] == pytest.approx(float(direct[0]), abs=1e-5)


def test_score_candidates_names_unknown_ids(teacher_dir, small_market):
    t = CrossEncoderTeacher.load(teacher_dir)
    with pytest.raises(TeacherDataError, match="unknown job.*J99999"):
        score_candidates(t, {"M00001": ["J99999"]}, small_market.jobs, small_market.members, show_progress=False)
    with pytest.raises(TeacherDataError, match="unknown member.*M99999"):
        score_candidates(t, {"M99999": ["J00001"]}, small_market.jobs, small_market.members, show_progress=False)


def test_rerank_orders_by_teacher_score(teacher_dir, small_market):
    t = CrossEncoderTeacher.load(teacher_dir)
    jobs, members = small_market.jobs.head(12), small_market.members.head(2)
    es = EvalSet(
        queries={r["member_id"]: r for r in members.to_dict("records")},
        corpus={r["job_id"]: r for r in jobs.to_dict("records")},
        relevant={m: {"J00000": 2} for m in members["member_id"]},
    )
    job_ids = jobs["job_id"].tolist()
    run = {q: {j: 1.0 - 0.01 * i for i, j in enumerate(job_ids)} for q in es.queries}
    out = rerank(t, run, es, k=8, show_progress=False)
    for q in es.queries:
        expected = t.score(
            t.render("profile", [es.queries[q]] * 8), t.render("job", [es.corpus[j] for j in job_ids[:8]])
        )
        ranked = sorted(out[q], key=lambda d: -out[q][d])
        assert ranked[:8] == [job_ids[i] for i in np.argsort(-expected, kind="stable")]
        assert ranked[8:] == job_ids[8:]  # below k: the bi-encoder's order, under every reranked job
        assert set(out[q]) == set(run[q])


def test_teacher_config_validation():
    with pytest.raises(ValueError, match=r"loss\n  Input should be 'bce' or 'listwise'.*input_value='hinge'"):
        TeacherConfig(loss="hinge")
    with pytest.raises(ValueError, match="max_length"):
        TeacherConfig(max_length=4)
    with pytest.raises(ValueError, match="learning_rate"):
        TeacherConfig(learning_rate=0)
