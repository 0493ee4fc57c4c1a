"""engagement_labels: the last decisive action per pair decides."""

from __future__ import annotations

import pandas as pd
import pytest

from jude.config import LabelConfig
from jude.data.schema import LABELS, DataValidationError
from jude.labels.engagement import engagement_labels


def interactions(rows):
    return pd.DataFrame(rows, columns=["member_id", "job_id", "ts", "action"])


ROWS = [
    ("m1", "j1", "2024-03-01 10:00", "impression"),
    ("m1", "j1", "2024-03-01 10:05", "view"),
    ("m1", "j1", "2024-03-02 09:00", "apply"),
    ("m1", "j2", "2024-03-01 11:00", "apply"),
    ("m1", "j2", "2024-03-05 11:00", "dismiss"),  # later dismiss wins
    ("m2", "j1", "2024-03-03 08:00", "dismiss"),
    ("m2", "j2", "2024-03-03 08:00", "view"),  # not decisive: no label
    ("m3", "j3", "2024-03-04 12:00", "dismiss"),
    ("m3", "j3", "2024-03-04 12:00", "apply"),  # same instant: the positive wins
]


def by_pair(labels):
    return {
        (m, j): (lab, g, r)
        for m, j, lab, g, r in labels[["member_id", "job_id", "label", "grade", "rationale"]].itertuples(index=False)
    }


def test_last_decisive_action_per_pair():
    labels = engagement_labels(interactions(ROWS), LabelConfig())
    assert list(labels.columns) == LABELS.column_names
    assert set(labels["source"]) == {"engagement"}
    assert by_pair(labels) == {
        ("m1", "j1"): (1, 3, "applied on 2024-03-02"),
        ("m1", "j2"): (0, 0, "dismissed on 2024-03-05 (last of 2 decisive actions)"),
        ("m2", "j1"): (0, 0, "dismissed on 2024-03-03"),
        ("m3", "j3"): (1, 3, "applied on 2024-03-04 (last of 2 decisive actions)"),
    }


def test_actions_are_configurable():
    cfg = LabelConfig(positive_actions=["apply", "view"], negative_actions=["dismiss"])
    labels = by_pair(engagement_labels(interactions(ROWS), cfg))
    assert labels[("m2", "j2")] == (1, 3, "viewed on 2024-03-03")
    assert len(labels) == 5


def test_no_decisive_action_gives_an_empty_table():
    labels = engagement_labels(interactions(ROWS[:2]), LabelConfig())
    assert labels.empty and list(labels.columns) == LABELS.column_names


def test_bad_action_is_named():
    with pytest.raises(DataValidationError, match=r"column 'action', row 1: expected one of .*'click'"):
        engagement_labels(interactions([ROWS[0], ("m1", "j1", "2024-03-01 12:00", "click")]), LabelConfig())


def test_any_index_is_fine():
    shuffled = interactions(ROWS).sample(frac=1.0, random_state=0)  # index not 0..n-1, rows out of order
    assert by_pair(engagement_labels(shuffled, LabelConfig())) == by_pair(
        engagement_labels(interactions(ROWS), LabelConfig())
    )
