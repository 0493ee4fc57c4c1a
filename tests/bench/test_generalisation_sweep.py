"""bench/generalisation_sweep.py: each teacher's reach learns from the top K of the one scoring of the top max(K)."""

import pandas as pd
import pytest
from support import bench_module

sweep = bench_module("generalisation_sweep")


def test_each_reach_keeps_every_members_first_k_candidates_in_their_order():
    # score_candidates' rows: each member's candidates best first; members interleave nowhere
    rows = [("m1", f"j{i}", float(10 - i)) for i in range(6)] + [("m2", f"k{i}", float(i)) for i in range(4)]
    scores = pd.DataFrame(rows, columns=["member_id", "job_id", "teacher_score"])
    subsets = sweep.reach_subsets(scores, [2, 5])
    assert set(subsets) == {2, 5}
    two = subsets[2]
    assert two["job_id"].tolist() == ["j0", "j1", "k0", "k1"]  # the order, not the teacher's score, decides
    five = subsets[5]
    assert five.groupby("member_id").size().to_dict() == {"m1": 5, "m2": 4}  # a member with fewer keeps all
    assert list(five.columns) == ["member_id", "job_id", "teacher_score"]
    assert len(scores) == 10  # the scoring itself is untouched


def test_a_reach_below_two_candidates_is_refused_by_name():
    scores = pd.DataFrame({"member_id": ["m"], "job_id": ["j"], "teacher_score": [1.0]})
    with pytest.raises(SystemExit, match="--candidates-ks.*at least 2.*got 1"):
        sweep.reach_subsets(scores, [1, 10])
