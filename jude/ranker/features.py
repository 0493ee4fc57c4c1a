"""Impression rows with their outcomes, split as the training pipeline splits members, and the standard features.

**Rows.** One per impression (member, job, time). Its outcome is what the member did with that job
afterwards (a view, an apply, a dismiss): each such event belongs to the pair's latest impression at or
before it (``pd.merge_asof``), so a repeated impression owns only what followed it.

**Split.** The training pipeline's cut points and held-out test members
(:func:`jude.training.pairs.split_from_config` with the same configs: ``data`` fractions,
``eval.max_queries``, ``train.seed``), so the embedder never trained on a label of a test member:

- *train*: impressions before ``t_test`` of every other member, whose outcome was known before ``t_test``;
- *test*: impressions from ``t_test`` on of the test members (members with an apply in the test period,
  as the retrieval evaluation's queries: their apply rate is higher than the training rows').

**Standard features** (:data:`jude.config.RANKER_STANDARD_FEATURES`): what a ranking team has without
embeddings. Entity attributes come from the tables, which hold each entity as it was created (the change
stream starts from them and edits later; ``jude.data.changes``), so none of them sees a later edit; the
popularity counts use only events strictly before the impression (:func:`events_before`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jude.config import RANKER_STANDARD_FEATURES, DataConfig, EvalConfig, TrainConfig
from jude.data.vocab import SENIORITIES, seniority_for_years

OUTCOMES = ("viewed", "applied", "dismissed")
_OUTCOME_OF = {"view": "viewed", "apply": "applied", "dismiss": "dismissed"}
ROW_COLUMNS = ["member_id", "job_id", "ts", "split", *OUTCOMES, "truth_grade"]
DAY = pd.Timedelta(days=1)
_TOKEN = re.compile(r"[a-z0-9+#]+")


class RankerError(ValueError):
    """Input the ranker refuses; the message names the feature, embedding version, period or value."""


@dataclass(frozen=True)
class MemberSplit:
    """The training pipeline's time cut and held-out test members."""

    t_val: pd.Timestamp
    t_test: pd.Timestamp
    test_members: frozenset[str]


def member_split(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    data: DataConfig,
    eval: EvalConfig,
    train: TrainConfig,
) -> MemberSplit:
    """The cut points and test members the train pipeline's split gives for these configs
    (:func:`jude.training.pairs.split_from_config`, the one mapping from config to split).

    The test members depend only on the interactions, ``eval.max_queries`` and ``train.seed`` (never on the
    labels), so the split runs here without labels and picks the same members as the training run did.
    """
    from jude.evaluation.retrieval import EvaluationError
    from jude.training.pairs import PAIR_COLUMNS, cut_points, split_from_config

    t_val, t_test = cut_points(interactions, data.val_fraction, data.test_fraction)
    applies = interactions[interactions["action"] == "apply"]
    if not (applies["ts"] >= t_test).any():
        raise RankerError(
            f"the test period (from {t_test}, the last data.test_fraction={data.test_fraction} of the interactions) "
            f"has no applies: nothing to predict ({len(applies)} applies in all)"
        )
    no_labels = pd.DataFrame({c: pd.Series(dtype=object) for c in PAIR_COLUMNS})
    try:
        split = split_from_config(jobs, members, interactions, no_labels, data, eval, train, use_engagement=False)
    except EvaluationError as e:
        raise RankerError(f"cannot split the members as the training pipeline does: {e}") from None
    return MemberSplit(split.t_val, split.t_test, frozenset(split.test.queries))


def impression_rows(interactions: pd.DataFrame, split: MemberSplit) -> pd.DataFrame:
    """Train and test rows (module docstring): member_id, job_id, ts, split, viewed, applied, dismissed.

    Raises :class:`RankerError` when the training or the test rows hold no apply.
    """
    imp = interactions.loc[interactions["action"] == "impression", ["member_id", "job_id", "ts"]]
    imp = imp.reset_index(drop=True)
    imp["_row"] = np.arange(len(imp))
    events = interactions.loc[interactions["action"].isin(list(_OUTCOME_OF)), ["member_id", "job_id", "ts", "action"]]
    owner = pd.merge_asof(
        events.sort_values("ts", kind="stable"),
        imp.rename(columns={"ts": "_imp_ts"}).sort_values("_imp_ts", kind="stable"),
        left_on="ts",
        right_on="_imp_ts",
        by=["member_id", "job_id"],
        direction="backward",
    ).dropna(subset=["_row"])
    owner["_row"] = owner["_row"].astype(np.int64)
    for action, column in _OUTCOME_OF.items():
        done = owner.loc[owner["action"] == action, "_row"].unique()
        imp[column] = np.isin(imp["_row"].to_numpy(), done)
    decided = owner.groupby("_row")["ts"].max().reindex(imp["_row"]).to_numpy()
    decided = np.where(pd.isna(decided), imp["ts"].to_numpy(), decided).astype("datetime64[ns]")

    in_test = imp["member_id"].isin(split.test_members).to_numpy()
    before = (imp["ts"] < split.t_test).to_numpy() & (decided < np.datetime64(split.t_test))
    train = ~in_test & before
    test = in_test & (imp["ts"] >= split.t_test).to_numpy()
    imp["split"] = np.where(train, "train", "test")
    rows = imp[train | test].drop(columns="_row").reset_index(drop=True)
    for part, what in (("train", f"before {split.t_test}"), ("test", f"from {split.t_test} on")):
        subset = rows[rows["split"] == part]
        if not subset["applied"].any():
            raise RankerError(
                f"the {part} rows (impressions {what}; {len(subset)} rows of "
                f"{subset['member_id'].nunique()} members) have no applies: nothing to learn or predict"
            )
    return rows


def with_truth(rows: pd.DataFrame, jobs: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """``rows`` plus ``truth_grade``: the synthetic generator's grade 0-3 of each pair (``truth_grades``)."""
    from jude.data.synthetic import truth_grades

    out = rows.copy()
    out["truth_grade"] = np.asarray(truth_grades(jobs, members, rows[["member_id", "job_id"]]), dtype=np.int64)
    return out[ROW_COLUMNS]


# ----------------------------------------------------------------------------- standard features


def standard_features(
    rows: pd.DataFrame,
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame,
    names: list[str] | tuple[str, ...] = RANKER_STANDARD_FEATURES,
) -> pd.DataFrame:
    """The standard features ``names`` of each row (member_id, job_id, ts), as floats aligned with ``rows``.

    Entity attributes from the tables; ``job_age_days`` and the popularity counts from the impression
    time and the events strictly before it. An unknown name, or an id missing from its table, raises
    :class:`RankerError` naming it.
    """
    unknown = [n for n in names if n not in RANKER_STANDARD_FEATURES]
    if unknown:
        raise RankerError(f"unknown standard feature(s) {unknown}; known: {list(RANKER_STANDARD_FEATURES)}")
    j = _lookup(jobs, "job_id", rows["job_id"], "jobs")
    m = _lookup(members, "member_id", rows["member_id"], "members")
    level = {s: i for i, s in enumerate(SENIORITIES)}
    years = m["years_experience"].to_numpy(float)
    member_level = np.array([level[seniority_for_years(max(y, 0.0))] for y in years], dtype=float)
    job_level = j["seniority"].map(level).to_numpy(float)  # an unknown seniority is missing (NaN)
    ts = pd.to_datetime(rows["ts"]).reset_index(drop=True)
    features = {
        "same_city_or_remote": (
            j["remote"].to_numpy(bool) | (m["location"].str.lower().to_numpy() == j["location"].str.lower().to_numpy())
        ).astype(float),
        "years_minus_min": years - j["min_years"].to_numpy(float),
        "seniority_gap": member_level - job_level,
        "skill_overlap": np.array(
            [len(_lower_set(a) & _lower_set(b)) for a, b in zip(j["skills"], m["skills"])], dtype=float
        ),
        "title_overlap": np.array([_jaccard(a, b) for a, b in zip(j["title"], m["title"])], dtype=float),
        "job_age_days": ((ts - pd.to_datetime(j["posted_at"]).reset_index(drop=True)) / DAY).to_numpy(float),
        "job_views_before": events_before(interactions, "view", rows["job_id"], ts),
        "job_applies_before": events_before(interactions, "apply", rows["job_id"], ts),
    }
    return pd.DataFrame({n: features[n] for n in names}, index=rows.index)


def events_before(interactions: pd.DataFrame, action: str, job_ids: pd.Series, ts: pd.Series) -> np.ndarray:
    """How many ``action`` events each job had strictly before each time (by anyone): popularity so far."""
    events = interactions.loc[interactions["action"] == action, ["job_id", "ts"]]
    times = {job: np.sort(g.to_numpy("datetime64[ns]")) for job, g in events.groupby("job_id")["ts"]}
    at = pd.to_datetime(pd.Series(ts)).to_numpy("datetime64[ns]")
    ids = np.asarray(job_ids)
    out = np.zeros(len(ids), dtype=float)
    for job in np.unique(ids):
        where = np.flatnonzero(ids == job)
        past = times.get(job)
        if past is not None:
            out[where] = np.searchsorted(past, at[where], side="left")  # side=left: an event at t is not before t
    return out


def _lookup(table: pd.DataFrame, key: str, ids: pd.Series, name: str) -> pd.DataFrame:
    indexed = table.set_index(key)
    missing = ~pd.Series(ids).isin(indexed.index).to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise RankerError(f"rows: column {key!r}, row {row}: not in {name} (value: {pd.Series(ids).iloc[row]!r})")
    return indexed.loc[np.asarray(ids)].reset_index()


def _lower_set(values) -> set[str]:
    return {str(v).strip().lower() for v in values if str(v).strip()}


def _jaccard(a: str, b: str) -> float:
    ta, tb = set(_TOKEN.findall(str(a).lower())), set(_TOKEN.findall(str(b).lower()))
    return len(ta & tb) / len(ta | tb) if ta | tb else 0.0
