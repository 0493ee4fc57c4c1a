"""The registered candidate is chosen on the validation members: never on the test members."""

import pandas as pd
import pytest

from jude.config import EvalConfig, ModelConfig
from jude.labels.rubric import RubricJudge
from jude.modeling.embedder import Embedder
from jude.training.pairs import split_and_pair
from jude.training.selection import choose, select_candidate


def test_choose_takes_the_highest_and_keeps_the_first_on_a_tie():
    assert choose({"finetuned": 0.4, "distilled": 0.5})[0] == "distilled"
    assert choose({"finetuned": 0.5, "distilled": 0.4})[0] == "finetuned"
    variant, reason = choose({"distilled": 0.5, "finetuned": 0.5})
    assert variant == "finetuned" and "tie" in reason
    assert "finetuned 0.5000" in reason and "distilled 0.5000" in reason
    with pytest.raises(ValueError, match="no candidates"):
        choose({})


@pytest.fixture(scope="module")
def candidates(tiny_bert_dir, minilm):
    """Two candidates that rank differently: MiniLM (as 'distilled') and a random tiny BERT (as 'finetuned')."""
    tiny = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=64))
    return {"finetuned": tiny, "distilled": minilm}


def _poison_test_members(labels: pd.DataFrame, test_members: set[str]) -> pd.DataFrame:
    """Every label of a test member turned upside down: relevant <-> irrelevant, grade g -> 3 - g."""
    out = labels.copy()
    hit = out["member_id"].isin(test_members)
    out.loc[hit, "grade"] = 3 - out.loc[hit, "grade"]
    out.loc[hit, "label"] = 1 - out.loc[hit, "label"]
    return out


def test_selection_is_the_same_when_the_test_members_labels_are_poisoned(candidates, small_market, small_labels, split):
    m = small_market
    judge, cfg = RubricJudge(), EvalConfig(pool_depth=10)
    clean = select_candidate(candidates, split.val, judge, cfg, relevant_grade=2)
    assert clean.variant == "distilled" and clean.scores["distilled"] > clean.scores["finetuned"]
    assert clean.queries == len(split.val.queries) > 0

    test_members = set(split.test.queries)
    poisoned_labels = _poison_test_members(small_labels, test_members)
    assert (poisoned_labels["label"] != small_labels["label"]).sum() > 0  # the poison reached some labels
    poisoned = split_and_pair(m.jobs, m.members, m.interactions, poisoned_labels, 0.15, 0.2, max_queries=30)
    assert poisoned.test.relevant != split.test.relevant  # the test members' judgements did change ...
    assert set(poisoned.test.queries) <= test_members  # ... on the same test members
    assert poisoned.val.relevant == split.val.relevant  # the validation members' judgements did not
    again = select_candidate(candidates, poisoned.val, judge, cfg, relevant_grade=2)
    assert (again.variant, again.scores, again.queries) == (clean.variant, clean.scores, clean.queries)
