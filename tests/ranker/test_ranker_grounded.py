"""The ranker on a grounded marketplace (``data.synthetic.world: grounded``): its offline history is built from
the grounded change stream (with apply-prompted edits), every view reads it, and the recipe runs end to end."""

from __future__ import annotations

import numpy as np

from jude.config import DataConfig, EvalConfig, ModelConfig, SyntheticConfig, TrainConfig
from jude.data.grounded.taxonomy import grounded_occupation_of
from jude.data.synthetic import generate_marketplace
from jude.ranker.embeddings import change_rows
from jude.ranker.run import build_rows, embedding_features, evaluate_ranker, fill

GROUNDED = dict(
    world="grounded", occupations=30, areas=10, n_jobs=120, n_members=90, days=30, impressions_per_member=20
)


def test_the_ranker_builds_history_and_features_from_a_grounded_stream(
    ranker_cfg, tiny_models, tiny_bert_dir, tmp_path
):
    data = DataConfig(synthetic=SyntheticConfig(seed=1, **GROUNDED))
    m = generate_marketplace(data.synthetic)
    rows, info = build_rows(
        m.jobs, m.members, m.interactions, data, TrainConfig(), EvalConfig(max_queries=30), ranker_cfg
    )
    assert info["train_rows"] > 0 and info["test_rows"] > 0

    cfg = ranker_cfg.model_copy(update={"history_path": str(tmp_path / "history"), "apply_edit_share": 0.3})
    stream = change_rows(m, ["profile", "job"], cfg.stream_events, cfg.stream_seed, cfg.apply_edit_share)
    titles = [f["title"] for f in stream["fields"] if "title" in f]
    assert titles and all(grounded_occupation_of(t) is not None for t in titles)

    model_cfg = ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=64)
    summary = fill(cfg, tiny_models, m, model_cfg)
    assert summary["change_rows"] == len(stream)
    features, stats = embedding_features(rows, cfg, tiny_models)
    assert len(features) == len(rows) and stats["time_travel"]
    result = evaluate_ranker(rows, features, cfg)
    assert all(np.isfinite(s).all() for s in result.scores.values())
