"""The shared pieces of every config section: the ``_Section`` base model, the ``Literal`` vocabularies, helpers.

``_Section`` forbids unknown keys and validates assignments. The vocabularies shared with the data
(actions, entity types, member views, label sources) come from ``jude/data/schema.py``; ``_did_you_mean``
suggests a close name in error messages; ``_EMBEDDING_VERSION`` is the pattern of an embedding version
(nearline, bootstrap, ranker).
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from jude.data.schema import ACTIONS, ENTITY_TYPES, LABEL_SOURCES, MEMBER_VIEWS

POOLINGS = ("mean", "cls", "lasttoken")
SHIFTS = ("none", "roles", "cities", "style", "all")  # synthetic distribution shifts (jude/data/synthetic.py)


# Literal types built from the vocabularies above (``Literal[TUPLE]`` works on Python 3.10 too).
Pooling = Literal[POOLINGS]  # type: ignore[valid-type]
Shift = Literal[SHIFTS]  # type: ignore[valid-type]
Action = Literal[ACTIONS]  # type: ignore[valid-type]
EntityType = Literal[ENTITY_TYPES]  # type: ignore[valid-type]
MemberView = Literal[MEMBER_VIEWS]  # type: ignore[valid-type]
LabelSource = Literal[LABEL_SOURCES]  # type: ignore[valid-type]


def _did_you_mean(name: str, known: Any) -> str:
    close = difflib.get_close_matches(str(name), sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# ---- an embedding version: the nearline, the bootstrap and the ranker name one --------------
_EMBEDDING_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # a Redis key segment (jude.stores.online.check_version)
