"""Point-in-time embedding features: never a later embedding than the row, missing until embedded."""

import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jude.ranker.embeddings import LATEST, VIEWS, check_versions, read_model, read_vectors, to_ms, view_features
from jude.ranker.features import RankerError
from jude.stores.offline import DeltaHistory
from tests.ranker.conftest import VERSIONS


def _oracle(history_rows: pd.DataFrame, entity_id: str, ts: int) -> pd.Series | None:
    """The latest history row of the entity at or before ts (delete above upsert, then the larger hash), or None."""
    rows = history_rows[(history_rows["entity_id"] == entity_id) & (history_rows["event_time"] <= ts)]
    if rows.empty:
        return None
    rows = rows.assign(_del=rows["op"] == "delete").sort_values(
        ["event_time", "_del", "content_hash"], na_position="first"
    )
    last = rows.iloc[-1]
    return None if last["op"] == "delete" else last


# ---- the property: a random history, random query times ---------------------------------------------------
_event = st.tuples(
    st.sampled_from(["a", "b", "c"]),  # entity
    st.integers(0, 50),  # event time
    st.sampled_from(["upsert", "upsert", "delete"]),
    st.integers(0, 3),  # which content
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(_event, min_size=1, max_size=25),
    queries=st.lists(st.tuples(st.sampled_from("abcd"), st.integers(-5, 60)), min_size=1, max_size=30),
)
def test_a_point_in_time_read_never_returns_a_later_embedding(events, queries):
    rows = [
        {
            "entity_type": "job",
            "entity_id": e,
            "event_time": t,
            "embedding_version": "v1",
            "content_hash": f"h{c}" if op == "upsert" else None,
            "op": op,
            "vector": [float(c + 1), float(t)] if op == "upsert" else None,
        }
        for e, t, op, c in events
    ]
    with tempfile.TemporaryDirectory() as tmp:
        history = DeltaHistory(tmp)
        history.append(rows)
        ids, ts = [q[0] for q in queries], np.array([q[1] for q in queries], dtype=np.int64)
        got = read_vectors(history, "job", "v1", ids, ts)
        stored = history.read(entity_type="job", version="v1")
    assert (got["event_time"][got["found"]].to_numpy() <= ts[got["found"].to_numpy()]).all()
    for (entity, t), (_, found) in zip(queries, got.iterrows()):
        expected = _oracle(stored, entity, t)
        assert found["found"] == (expected is not None)
        if expected is not None:
            assert found["event_time"] == expected["event_time"] and found["content_hash"] == expected["content_hash"]
            assert found["vector"].tolist() == list(expected["vector"])


# ---- the ranker's own rows over the history the pipeline builds ------------------------------------------
def test_every_row_reads_the_embedding_of_its_impression_time(filled, ranker_rows):
    """Over every row of the small marketplace (train and test): the as-of read is the history's latest row at or
    before the impression, never later; before the entity's first embedding it is missing."""
    cfg, _ = filled
    history = DeltaHistory(cfg.history_path)
    reads = read_model(history, VERSIONS["champion"], ranker_rows)
    ts = to_ms(ranker_rows["ts"])
    for side, etype, ids in (("member", "profile", ranker_rows["member_id"]), ("job", "job", ranker_rows["job_id"])):
        got = getattr(reads, side)["as_of"]
        stored = history.read(entity_type=etype, version=VERSIONS["champion"])
        assert (got["event_time"][got["found"]].to_numpy() <= ts[got["found"].to_numpy()]).all()
        rng = np.random.default_rng(7)
        for i in rng.choice(len(ranker_rows), size=150, replace=False):
            expected = _oracle(stored, ids.iloc[i], int(ts[i]))
            row = got.iloc[i]
            assert row["found"] == (expected is not None)
            if expected is not None:
                assert row["content_hash"] == expected["content_hash"]
                np.testing.assert_array_equal(row["vector"], expected["vector"])
        first = stored.groupby("entity_id")["event_time"].min()
        early = ts < first.reindex(ids.to_numpy()).fillna(np.iinfo(np.int64).max).to_numpy()
        assert not got["found"].to_numpy()[early].any()


def test_an_entity_not_yet_embedded_is_missing_not_given_a_later_embedding(filled, ranker_rows):
    cfg, _ = filled
    history = DeltaHistory(cfg.history_path)
    row = ranker_rows.iloc[0]
    first = history.read(entity_type="profile", version=VERSIONS["base"], entity_ids=[row["member_id"]])
    t0 = int(first["event_time"].min())
    got = read_vectors(history, "profile", VERSIONS["base"], [row["member_id"]] * 3, np.array([t0 - 1, t0, LATEST]))
    assert got["found"].tolist() == [False, True, True] and got["vector"].iloc[0] is None


def test_the_latest_read_sees_the_edits_made_after_the_impression(filled, ranker_rows):
    """The change stream edits profiles after applies (apply_edit_share): time travel is there to be seen."""
    cfg, summary = filled
    reads = read_model(DeltaHistory(cfg.history_path), VERSIONS["champion"], ranker_rows)
    changed = reads.member["as_of"]["content_hash"] != reads.member["latest"]["content_hash"]
    assert changed.mean() > 0.2
    applied = ranker_rows["applied"].to_numpy()
    assert changed[applied].mean() > changed[~applied].mean()  # edits follow applies
    assert summary["models"]["champion"]["distinct_texts"] > 0

    as_of, _ = view_features(ranker_rows, reads, "champion")
    latest, _ = view_features(ranker_rows, reads, "champion_latest")
    served, _ = view_features(ranker_rows, reads, "champion_latest_served")
    a, b = as_of["champion.cosine"].to_numpy(), latest["champion_latest.cosine"].to_numpy()
    either = changed.to_numpy() | (reads.job["as_of"]["content_hash"] != reads.job["latest"]["content_hash"]).to_numpy()
    assert not np.allclose(a[either], b[either]) and np.allclose(a[~either], b[~either], equal_nan=True)
    test = (ranker_rows["split"] == "test").to_numpy()
    s = served["champion_latest_served.cosine"].to_numpy()
    np.testing.assert_array_equal(s[test], a[test])  # served: the as-of features at test time
    np.testing.assert_array_equal(s[~test], b[~test])  # trained on the latest


def test_projection_is_fitted_on_the_training_rows_and_missing_stays_missing(filled, ranker_rows):
    cfg, _ = filled
    reads = read_model(DeltaHistory(cfg.history_path), VERSIONS["base"], ranker_rows)
    feats, stats = view_features(ranker_rows, reads, "base", ["cosine", "projection"], projection_dim=3)
    assert list(feats.columns) == ["base.cosine", *(f"base.{s}_pc{i}" for s in ("member", "job") for i in range(3))]
    found = reads.member["as_of"]["found"].to_numpy() & reads.job["as_of"]["found"].to_numpy()
    assert feats.loc[found].notna().all().all() and feats.loc[~found, "base.cosine"].isna().all()
    assert set(stats) == {f"{s}_missing_{p}" for s in ("member", "job") for p in ("train", "test")}
    assert set(VIEWS) == {"base", "champion", "champion_latest", "champion_latest_served"}


def test_a_version_absent_from_the_history_is_named(filled):
    cfg, _ = filled
    history = DeltaHistory(cfg.history_path)
    with pytest.raises(
        RankerError, match="embedding version 'jude-embedder-9' \\(the champion model\\) has no job rows"
    ):
        check_versions(history, {"champion": "jude-embedder-9"}, ["job"])
    with pytest.raises(RankerError, match="versions: \\['tiny-base', 'tiny-champion'\\]"):
        check_versions(history, {"champion": "jude-embedder-9"}, ["job"])


def test_the_history_is_filled_once(filled, small_market, tiny_models, tiny_bert_dir):
    """Each distinct text of each version is embedded once; a second fill embeds nothing."""
    from jude.config import ModelConfig
    from jude.ranker.run import fill

    cfg, first = filled
    assert all(m["inferences"] == m["distinct_texts"] > 0 for m in first["models"].values())
    again = fill(cfg, tiny_models, small_market, ModelConfig(base_model=str(tiny_bert_dir)))
    assert all(m["inferences"] == 0 and m["history_rows"] == 0 for m in again["models"].values())
