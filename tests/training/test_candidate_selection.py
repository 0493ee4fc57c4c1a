"""The registered candidate is chosen on the validation members: never on the test members."""

import pandas as pd
import pytest

from jude.config import EvalConfig, ModelConfig, PromotionConfig
from jude.labels.rubric import RubricJudge
from jude.modeling.embedder import Embedder
from jude.training.pairs import split_and_pair
from jude.training.selection import apply_rule, choose, select_candidate


def test_choose_takes_the_highest_and_keeps_the_first_on_a_tie():
    assert choose({"finetuned": 0.4, "distilled": 0.5})[0] == "distilled"
    assert choose({"finetuned": 0.5, "distilled": 0.4})[0] == "finetuned"
    variant, reason = choose({"distilled": 0.5, "finetuned": 0.5})
    assert variant == "finetuned" and "tie" in reason
    assert "finetuned 0.5000" in reason and "distilled 0.5000" in reason
    with pytest.raises(ValueError, match="no candidates"):
        choose({})


RULE = PromotionConfig(min_ndcg_gain=0.005, max_recall_drop=0.0, min_queries=5)


def _m(ndcg: float, recall: float) -> dict[str, float]:
    return {"ndcg_at_10": ndcg, "recall_at_100": recall}


def test_the_rule_refuses_a_candidate_that_wins_the_head_but_loses_the_tail():
    # the fresh clone's case: distilled far ahead on nDCG@10, behind the base model on recall@100
    results = {"base": _m(0.32, 0.93), "finetuned": _m(0.41, 0.98), "distilled": _m(0.66, 0.85)}
    variant, reason, verdicts = apply_rule(results, queries=74, promotion=RULE)
    assert variant == "finetuned"
    assert verdicts["distilled"][0] is False and "recall@100 falls by 0.0800" in verdicts["distilled"][1]
    assert verdicts["finetuned"][0] is True
    assert "refused by the promotion rule: distilled" in reason


def test_the_best_passing_candidate_wins_and_none_passing_chooses_none():
    both = {"base": _m(0.30, 0.90), "finetuned": _m(0.40, 0.95), "distilled": _m(0.50, 0.92)}
    assert apply_rule(both, 74, RULE)[0] == "distilled"
    neither = {"base": _m(0.30, 0.90), "finetuned": _m(0.302, 0.95), "distilled": _m(0.50, 0.80)}
    variant, reason, verdicts = apply_rule(neither, 74, RULE)
    assert variant is None and not any(ok for ok, _ in verdicts.values())
    assert reason.startswith("no candidate passes the promotion rule against the base model on validation")
    assert "finetuned: nDCG@10 0.3020 vs base model 0.3000 on 74 validation queries" in reason
    # too few validation queries: nothing passes, whatever the figures
    assert apply_rule(both, 4, RULE)[0] is None
    with pytest.raises(ValueError, match="no 'base' row"):
        apply_rule({"finetuned": _m(0.4, 0.9)}, 74, RULE)


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
    # the base model: the random tiny BERT again, so MiniLM passes the rule against it and the tiny one does not
    base = candidates["finetuned"]
    rule = PromotionConfig(min_queries=1)
    clean = select_candidate(candidates, split.val, judge, cfg, 2, rule, base=base)
    assert clean.variant == "distilled" and clean.scores["distilled"] > clean.scores["finetuned"]
    assert clean.verdicts["distilled"][0] and not clean.verdicts["finetuned"][0]  # no gain over itself
    assert set(clean.recall) == {"base", "finetuned", "distilled"}
    assert 0 < clean.queries <= len(split.val.queries)

    test_members = set(split.test.queries)
    poisoned_labels = _poison_test_members(small_labels, test_members)
    assert (poisoned_labels["label"] != small_labels["label"]).sum() > 0  # the poison reached some labels
    poisoned = split_and_pair(m.jobs, m.members, m.interactions, poisoned_labels, 0.15, 0.2, max_queries=30)
    assert poisoned.test.relevant != split.test.relevant  # the test members' judgements did change ...
    assert set(poisoned.test.queries) <= test_members  # ... on the same test members
    assert poisoned.val.relevant == split.val.relevant  # the validation members' judgements did not
    again = select_candidate(candidates, poisoned.val, judge, cfg, 2, rule, base=base)
    assert (again.variant, again.scores, again.recall, again.queries) == (
        clean.variant,
        clean.scores,
        clean.recall,
        clean.queries,
    )
