"""The strict time cut: nothing that happened at or after t_val reaches training (issue: relevance labels of
training members had no time filter, so jobs posted in the validation and test periods were trained on)."""

from jude.training.pairs import past_jobs, split_and_pair


def test_no_job_posted_at_or_after_t_val_reaches_training(small_market, small_labels):
    m = small_market
    split = split_and_pair(m.jobs, m.members, m.interactions, small_labels, 0.15, 0.2, max_queries=30)
    posted = m.jobs.set_index("job_id")["posted_at"]
    held_out = set(split.val.queries) | set(split.test.queries)
    relevance = small_labels[(small_labels["source"] == "relevance") & ~small_labels["member_id"].isin(held_out)]
    # the labels do hold judged pairs of training members about jobs from the future (the old split trained on them)
    assert (posted.loc[relevance["job_id"]].to_numpy() >= split.t_val).any()
    assert split.stats["train_pairs_dropped_future_jobs"] > 0
    # now no training pair is about one, and training sees only the jobs posted before t_val
    assert (posted.loc[split.pairs["job_id"]].to_numpy() < split.t_val).all()
    assert set(split.train_jobs["job_id"]) == set(posted[posted < split.t_val].index)
    assert split.stats["train_jobs"] == len(split.train_jobs) < len(m.jobs)
    # the evaluation sets still rank every job
    assert len(split.test.corpus) == len(split.val.corpus) == len(m.jobs)


def test_the_time_cut_needs_posted_at(small_market):
    import pytest

    with pytest.raises(ValueError, match="no posted_at column"):
        past_jobs(small_market.jobs.drop(columns="posted_at"), small_market.jobs["posted_at"].max())
