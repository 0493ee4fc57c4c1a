"""Engagement labels: what members did with the jobs they were shown.

Plentiful and noisy (JUDE's second label kind): a member applies to a job that
does not fit, or dismisses one that does. Per (member, job) pair the *last
decisive* action decides, so a member who dismissed a job and later applied
counts as a positive. Decisive actions are ``cfg.positive_actions`` (default
apply) and ``cfg.negative_actions`` (default dismiss); others (impressions, and
views unless configured) say nothing and make no label.

Grades sit at the ends of the relevance scale so the two kinds can be compared:
a positive action is ``label=1, grade=3``, a negative one ``label=0, grade=0``.
Only ``label`` is meant for training; ``grade`` is the engagement label
expressed on the rubric's scale.

Pass only the interactions of the training period: labels built from later
interactions leak the test period into training.
"""

from __future__ import annotations

import logging

import pandas as pd

from jude.config import LabelConfig
from jude.data.schema import INTERACTIONS, LABELS

log = logging.getLogger(__name__)

POSITIVE_GRADE = 3
NEGATIVE_GRADE = 0
_PAST = {"apply": "applied", "dismiss": "dismissed", "view": "viewed", "impression": "was shown the job"}


def engagement_labels(interactions: pd.DataFrame, cfg: LabelConfig) -> pd.DataFrame:
    """One label per (member, job) pair with a decisive action, from its last one.

    Ties (a positive and a negative action at the same timestamp) go to the
    positive action: applying costs the member more than dismissing. The rationale
    names the action and its date ("applied on 2024-03-01"), and how many decisive
    actions the pair had when there were several.

    Returns a table with the LABELS columns and ``source="engagement"`` (empty, with
    those columns, when no interaction is decisive). Bad interactions raise
    :class:`jude.data.schema.DataValidationError` naming the column, row and value.
    """
    if isinstance(interactions, pd.DataFrame):
        interactions = interactions.reset_index(drop=True)  # validate() aligns on a default index
    df = INTERACTIONS.validate(interactions, where="table 'interactions'")
    positive, negative = set(cfg.positive_actions), set(cfg.negative_actions)
    decisive = df[df["action"].isin(positive | negative)].copy()
    if decisive.empty:
        log.warning("engagement_labels: no %s interactions; no engagement labels", sorted(positive | negative))
        return pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in zip(LABELS.column_names, ("object", "object", "int64", "int64", "object", "object"))
            }
        )

    decisive["positive"] = decisive["action"].isin(positive)
    # Sort so the decisive action of each pair comes last: by time, then negative before positive.
    decisive = decisive.sort_values(["member_id", "job_id", "ts", "positive"], kind="mergesort")
    n_actions = decisive.groupby(["member_id", "job_id"], sort=False)["action"].transform("size")
    decisive["n_actions"] = n_actions
    last = decisive.groupby(["member_id", "job_id"], sort=False).tail(1)

    def rationale(action: str, ts: pd.Timestamp, n: int) -> str:
        text = f"{_PAST.get(action, action)} on {ts.date().isoformat()}"
        return text if n == 1 else f"{text} (last of {n} decisive actions)"

    labels = pd.DataFrame(
        {
            "member_id": last["member_id"].to_numpy(),
            "job_id": last["job_id"].to_numpy(),
            "label": last["positive"].astype("int64").to_numpy(),
            "grade": last["positive"].map({True: POSITIVE_GRADE, False: NEGATIVE_GRADE}).to_numpy(),
            "source": "engagement",
            "rationale": [rationale(a, t, int(n)) for a, t, n in zip(last["action"], last["ts"], last["n_actions"])],
        }
    )
    return LABELS.validate(labels, where="engagement labels")
