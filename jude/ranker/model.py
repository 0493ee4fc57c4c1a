"""The apply model: one gradient-boosted classifier per feature set, the same rows, seed and budget for each.

scikit-learn's ``HistGradientBoostingClassifier``: missing values (an entity not yet embedded at the
impression) are a branch of their own, not an imputed number. No early stopping and no tuning, so no
feature set gets more rounds than another and nothing is chosen on the test members.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from jude.config import RankerGBMConfig
from jude.ranker.embeddings import VIEWS
from jude.ranker.features import RankerError

FEATURE_SETS = ("standard", "base", "champion", "champion_latest")  # the MLflow names (ranker/<set>/...)
SERVED = "champion_latest_served"  # champion_latest's model scored on as-of test features (no own model)
SET_NOTES = {
    "standard": "standard features only (no embeddings)",
    "base": "+ base model embeddings, as of each impression",
    "champion": "+ champion embeddings, as of each impression",
    "champion_latest": "+ champion embeddings as they are at the end (time travel), trained and scored so",
    SERVED: "the champion_latest model served as production would: fed the embeddings as of each impression",
}


def feature_columns(feature_set: str, standard: Sequence[str], embedding_columns: Sequence[str]) -> list[str]:
    """The columns of ``feature_set``: the standard features, then its view's embedding columns."""
    if feature_set == "standard":
        return list(standard)
    if feature_set not in VIEWS:
        raise RankerError(f"unknown feature set {feature_set!r}; expected one of {[*FEATURE_SETS, SERVED]}")
    own = [c for c in embedding_columns if c.split(".", 1)[0] == feature_set]
    if not own:
        raise RankerError(f"feature set {feature_set!r} has no embedding columns (got {list(embedding_columns)})")
    return [*standard, *own]


def fit_ranker(X: pd.DataFrame, y: np.ndarray, gbm: RankerGBMConfig, seed: int = 0):
    """A fitted ``HistGradientBoostingClassifier`` for P(apply | impression)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = np.asarray(y, dtype=int)
    if len(np.unique(y)) < 2:
        raise RankerError(f"the training rows hold one outcome only ({int(y.sum())} applies in {len(y)} rows)")
    model = HistGradientBoostingClassifier(
        max_iter=gbm.max_iter,
        learning_rate=gbm.learning_rate,
        max_leaf_nodes=gbm.max_leaf_nodes,
        min_samples_leaf=gbm.min_samples_leaf,
        l2_regularization=gbm.l2_regularization,
        early_stopping=False,
        random_state=seed,
    )
    with threadpool_limits(limits=gbm.threads, user_api="openmp"):  # scikit-learn's own dependency
        return model.fit(X.to_numpy(dtype=float), y)


def predict(model, X: pd.DataFrame, threads: int = 1) -> np.ndarray:
    """P(apply) per row."""
    with threadpool_limits(limits=threads, user_api="openmp"):
        return model.predict_proba(X.to_numpy(dtype=float))[:, 1]


def served_columns(X: pd.DataFrame, source: str, target: str) -> pd.DataFrame:
    """``X`` with ``source``'s embedding columns renamed to ``target``'s (to score one view's model on another)."""
    return X.rename(columns={c: f"{target}.{c.split('.', 1)[1]}" for c in X.columns if c.startswith(f"{source}.")})
