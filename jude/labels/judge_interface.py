"""What every relevance judge shares: the :class:`Judge` interface and what it returns.

A judge returns one :class:`Judgement` per pair, in the order of the pairs; a
judgement with ``grade=None`` is a failure and carries ``error``. The judges
themselves (:mod:`jude.labels.rubric`, :mod:`jude.labels.llm_judge`) build on this
module, and :func:`jude.labels.judges.make_judge` picks one of them; this module
imports neither, so the judges never import the factory that builds them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

GRADES = (0, 1, 2, 3)


@dataclass(frozen=True)
class Judgement:
    """A judge's verdict on one (member, job) pair.

    ``grade`` is 0-3, or None when the judge failed (then ``error`` says why and
    the pair must not become a label).
    """

    grade: int | None
    rationale: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.grade is not None


@dataclass
class JudgeStats:
    """Counters a judge keeps across calls (logged as step metadata).

    ``requests`` counts HTTP requests sent (retries included), ``retries`` the
    re-sends, ``malformed`` answers that were not a valid grade, ``failed`` pairs
    that got no answer at all (retries exhausted, or a non-retryable error), ``misread`` pairs the rubric
    judge graded with a deliberate mistake (``labels.judge_errors``).
    """

    pairs: int = 0
    graded: int = 0
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    malformed: int = 0
    failed: int = 0
    misread: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class JudgeError(RuntimeError):
    """The judge could not grade anything (e.g. the endpoint is unreachable)."""


Pair = tuple[Mapping[str, Any], Mapping[str, Any]]  # (member record, job record)


class Judge(ABC):
    """Grades (member, job) pairs by :data:`jude.labels.rubric.RUBRIC`.

    Records are dicts (or pandas rows) with the columns of
    :data:`jude.data.schema.MEMBERS` and :data:`jude.data.schema.JOBS`.
    """

    name: str = "judge"

    def __init__(self) -> None:
        self.stats = JudgeStats()

    @abstractmethod
    def grade_pairs(self, pairs: Sequence[Pair]) -> list[Judgement]:
        """One judgement per pair, in the order given."""
