"""Test-period metrics of an apply model, with bootstrap intervals over test members.

Per feature set, on the test rows (every impression of a held-out test member in the test period):

- ``apply_auc``: ROC AUC of P(apply) against the applies;
- ``log_loss``: the mean negative log-likelihood of the applies;
- ``qualified_apply_rate_at_<k>``: each member's impressed jobs ranked by the model, the top k kept;
  qualified applies (applies to jobs the truth grades relevant) per kept impression, pooled over members
  (JUDE's "qualified applications" proxy);
- ``dismiss_to_apply_at_<k>``: dismisses per apply among the same kept impressions (lower is better).

**Intervals.** A cluster bootstrap: each resample draws the test members with replacement (all of a
member's rows go together, since a member's impressions are not independent) and recomputes every
metric. One seeded draw of resamples serves every feature set, so the intervals of a *difference*
between two sets (:func:`paired_interval`) are paired. Ties in the score are broken by one seeded random
order shared by every set. Weighted AUC and log loss are computed for all resamples at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EPS = 1e-15  # probabilities are clipped to [EPS, 1 - EPS] for the log loss, as scikit-learn does
BLOCK = 256  # resamples computed together (bounds memory: BLOCK x rows floats per array)


def metric_names(top_k: Sequence[int]) -> list[str]:
    """The metric names of a feature set, in report order."""
    names = ["apply_auc", "log_loss"]
    for k in top_k:
        names += [f"qualified_apply_rate_at_{k}", f"dismiss_to_apply_at_{k}"]
    return names


LOWER_IS_BETTER = ("log_loss", "dismiss_to_apply")


@dataclass(frozen=True)
class Outcomes:
    """The outcomes of the test rows, and which member each row belongs to (0..members-1)."""

    member: np.ndarray  # (N,) int member index
    applied: np.ndarray  # (N,) bool
    dismissed: np.ndarray  # (N,) bool
    qualified: np.ndarray  # (N,) bool: applied and the truth grades the pair relevant

    @classmethod
    def build(cls, member_ids: Sequence[str], applied, dismissed, truth_grade, qualified_grade: int = 2) -> Outcomes:
        _, member = np.unique(np.asarray(member_ids, dtype=object).astype(str), return_inverse=True)
        applied = np.asarray(applied, dtype=bool)
        qualified = applied & (np.asarray(truth_grade) >= qualified_grade)
        return cls(member.astype(np.int64), applied, np.asarray(dismissed, dtype=bool), qualified)

    @property
    def n_members(self) -> int:
        return int(self.member.max()) + 1 if len(self.member) else 0


def member_resamples(n_members: int, samples: int, seed: int = 0) -> np.ndarray:
    """(samples, members) counts: how often each test member is drawn in each bootstrap resample."""
    rng = np.random.default_rng([seed, 1413])  # apart from every other draw of the run
    draws = rng.integers(0, n_members, size=(samples, n_members))
    return np.stack([np.bincount(d, minlength=n_members) for d in draws]).astype(float)


def tiebreak(n_rows: int, seed: int = 0) -> np.ndarray:
    """One seeded random order for equal scores, shared by every feature set."""
    return np.random.default_rng([seed, 1414]).random(n_rows)


def evaluate(
    scores: np.ndarray,
    rows: Outcomes,
    top_k: Sequence[int],
    resamples: np.ndarray | None = None,
    ties: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of :func:`metric_names` for the test members as they are (index 0) and for each
    resample of ``resamples`` (rows 1..): ``{name: (1 + samples,) values}``. NaN where undefined
    (no apply among the kept impressions, a resample without an apply or without a non-apply)."""
    scores = np.asarray(scores, dtype=float)
    if scores.shape != rows.applied.shape:
        raise ValueError(f"scores: expected {rows.applied.shape[0]} values, got {scores.shape}")
    members = np.ones((1, rows.n_members))
    weights = members if resamples is None else np.vstack([members, resamples])  # (S, M)
    out: dict[str, np.ndarray] = {
        "apply_auc": np.concatenate(
            [_auc(scores, rows.applied, weights[i : i + BLOCK][:, rows.member]) for i in range(0, len(weights), BLOCK)]
        ),
        "log_loss": _log_loss(scores, rows.applied, weights, rows.member),
    }
    ties = tiebreak(len(scores)) if ties is None else ties
    order = np.lexsort((ties, -scores, rows.member))  # by member, best first
    start = np.r_[0, np.flatnonzero(np.diff(rows.member[order])) + 1]  # first position of each member
    rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = rank
    for k in top_k:
        kept = ranks < k

        def per_member(mask: np.ndarray) -> np.ndarray:
            return weights @ np.bincount(rows.member, weights=mask.astype(float), minlength=rows.n_members)

        shown, qual = per_member(kept), per_member(kept & rows.qualified)
        applies, dismisses = per_member(kept & rows.applied), per_member(kept & rows.dismissed)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"qualified_apply_rate_at_{k}"] = np.where(shown > 0, qual / shown, np.nan)
            out[f"dismiss_to_apply_at_{k}"] = np.where(applies > 0, dismisses / applies, np.nan)
    return out


def interval(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap ``samples`` (NaN resamples left out)."""
    finite = samples[np.isfinite(samples)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def paired_interval(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(a - b, low, high): the difference of two feature sets' values and its interval over the same resamples.

    ``a`` and ``b`` are :func:`evaluate` outputs of one metric: index 0 the point, then the resamples.
    """
    low, high = interval(a[1:] - b[1:], confidence)
    return float(a[0] - b[0]), low, high


def _auc(scores: np.ndarray, y: np.ndarray, row_w: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC for each row of weights ``row_w`` (S, N); ties count one half (as scikit-learn)."""
    order = np.argsort(scores, kind="stable")
    s, yy, w = scores[order], y[order].astype(float), row_w[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of equal scores
    pos = np.add.reduceat(w * yy, starts, axis=1)  # (S, G)
    neg = np.add.reduceat(w * (1.0 - yy), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # negatives scored strictly lower
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _log_loss(scores: np.ndarray, y: np.ndarray, weights: np.ndarray, member: np.ndarray) -> np.ndarray:
    p = np.clip(scores, EPS, 1 - EPS)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))  # (N,)
    per_member = np.bincount(member, weights=loss, minlength=weights.shape[1])
    count = np.bincount(member, minlength=weights.shape[1]).astype(float)
    return (weights @ per_member) / (weights @ count)
