"""Selection: which change rows a bootstrap embeds, and the named errors for a selection that is wrong."""

import pandas as pd
import pytest

from jude.bootstrap.selection import SelectionError, select, snapshot_rows


def test_snapshot_has_one_upsert_per_entity(snapshot, small_market):
    counts = snapshot["entity_type"].value_counts().to_dict()
    assert counts == {
        "job": len(small_market.jobs),
        "profile": len(small_market.members),
        "resume": len(small_market.members),
    }
    assert (snapshot["op"] == "upsert").all()
    assert not snapshot.duplicated(["entity_type", "entity_id"]).any()


def test_unknown_entity_type_is_named(snapshot):
    with pytest.raises(SelectionError, match="unknown entity type 'jobs'"):
        select(snapshot, entity_types=["jobs"])


def test_selection_that_matches_nothing_says_so(snapshot):
    with pytest.raises(SelectionError, match=r"matches no entity.*ids=\['nope'\]"):
        select(snapshot, entity_types=["job"], ids=["nope"])


def test_ids_and_window_narrow_the_rows(snapshot):
    jobs = snapshot[snapshot["entity_type"] == "job"]
    some = jobs["entity_id"].iloc[:3].tolist()
    assert sorted(select(snapshot, ["job"], ids=some)["entity_id"]) == sorted(some)
    cut = pd.Timestamp(int(jobs["event_time_ms"].median()), unit="ms")
    after = select(snapshot, ["job"], updated_from=cut)
    assert (after["event_time_ms"] >= jobs["event_time_ms"].median()).all()
    assert 0 < len(after) < len(jobs)


def test_table_missing_a_template_field_is_named(small_market):
    members = small_market.members.drop(columns=["summary"])
    with pytest.raises(SelectionError, match=r"'members' has no column\(s\) \['summary'\].*profile template"):
        snapshot_rows({"jobs": small_market.jobs, "members": members}, ["profile"])
