"""JUDE's curriculum laid out on optimiser steps: which label sources feed the trainer when.

``LossConfig.curriculum`` lists phases (relevance first, then relevance +
engagement), each lasting some epochs or a share of all steps; the plain
training loop (``jude.training.trainer``) asks the plan which sources the
current step trains on, and re-mines negatives between phases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PhaseSpan:
    """One curriculum phase laid out on optimiser steps: ``start <= step < end``."""

    name: str
    sources: tuple[str, ...]
    start: int
    end: int


def plan_curriculum(
    phases: Sequence[Any],
    steps_per_epoch: int,
    total_steps: int | None = None,
    default_sources: Sequence[str] = ("relevance", "engagement"),
) -> list[PhaseSpan]:
    """Lay ``LossConfig.curriculum`` out on steps, for the trainer to ask "which sources now?".

    * No phases: one phase ``"all"`` over ``total_steps`` with ``default_sources``.
    * ``steps_fraction`` phases: boundaries at ``round(cumulative fraction * total_steps)``
      (``total_steps`` required), the last phase ends exactly at ``total_steps``.
    * ``epochs`` phases: ``epochs * steps_per_epoch`` steps each; a ``total_steps``
      (``train.max_steps``) cuts the plan short, dropping phases that would be empty.
    """
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch}")
    if total_steps is not None and total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if not phases:
        total = total_steps if total_steps is not None else steps_per_epoch
        return [PhaseSpan("all", tuple(default_sources), 0, total)]
    spans: list[PhaseSpan] = []
    if phases[0].steps_fraction is not None:
        if total_steps is None:
            raise ValueError("plan_curriculum: steps_fraction phases need total_steps")
        cumulative = 0.0
        for i, ph in enumerate(phases):
            cumulative += ph.steps_fraction
            start = spans[-1].end if spans else 0
            end = total_steps if i == len(phases) - 1 else min(total_steps, round(cumulative * total_steps))
            spans.append(PhaseSpan(ph.name, tuple(ph.sources), start, end))
    else:
        start = 0
        for ph in phases:
            end = start + ph.epochs * steps_per_epoch
            spans.append(PhaseSpan(ph.name, tuple(ph.sources), start, end))
            start = end
        if total_steps is not None:
            spans = [
                PhaseSpan(s.name, s.sources, s.start, min(s.end, total_steps)) for s in spans if s.start < total_steps
            ]
    return [s for s in spans if s.end > s.start]


def phase_at(plan: Sequence[PhaseSpan], step: int) -> PhaseSpan:
    """The phase that contains ``step`` (the last one once the plan is over)."""
    if not plan:
        raise ValueError("phase_at: the plan is empty")
    for span in plan:
        if span.start <= step < span.end:
            return span
    return plan[-1]
