"""Relevance judges: the two judges and :func:`make_judge`, which picks one.

JUDE's relevance labels come from a judge that checks role, location and
qualifications strictly; they are scarce and high quality (engagement labels are
the plentiful, noisy kind, see :mod:`jude.labels.engagement`). Two judges apply
the same rubric (:data:`jude.labels.rubric.RUBRIC`):

- :class:`jude.labels.rubric.RubricJudge` (the default): the rubric computed
  from the structured fields, with seeded mistakes on a share of the pairs
  (``labels.judge_errors``). Deterministic, free, and what the embedded
  (no-GPU, no-API) setup uses.
- :class:`jude.labels.llm_judge.LLMJudge`: an OpenAI-compatible
  chat-completions endpoint (vLLM, Ollama, OpenAI) shown the rubric and both
  entity texts.

What every judge shares (the :class:`Judge` interface, :class:`Judgement`,
:class:`JudgeStats`, :class:`JudgeError`, ``Pair``, ``GRADES``) lives one module
down, in :mod:`jude.labels.judge_interface`, which both judges import; it is
re-exported here, so ``from jude.labels.judges import Judge`` keeps working.
"""

from __future__ import annotations

from typing import Any

from jude.config import LabelConfig
from jude.labels.judge_interface import GRADES, Judge, JudgeError, Judgement, JudgeStats, Pair
from jude.labels.llm_judge import LLMJudge
from jude.labels.rubric import RubricJudge

__all__ = ["GRADES", "Judge", "JudgeError", "JudgeStats", "Judgement", "LLMJudge", "Pair", "RubricJudge", "make_judge"]


def make_judge(cfg: LabelConfig, **llm_options: Any) -> Judge:
    """The judge ``cfg.judge`` names: ``"rubric"`` or ``"llm"`` (``llm_options`` go to ``LLMJudge``)."""
    if cfg.judge == "rubric":
        return RubricJudge(cfg.judge_errors)
    if cfg.judge == "llm":
        return LLMJudge(cfg.llm, **llm_options)
    raise ValueError(f"labels.judge must be 'rubric' or 'llm', got {cfg.judge!r}")
