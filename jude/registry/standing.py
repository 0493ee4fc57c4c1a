"""Where each registry version stands, in its tags, and the no-champion message read from them.

Two version tags say why a version is, or is not, champion: ``promotion`` (what the registration, the gate or
a promotion by hand decided, and why) and ``was_champion`` (it once was: the gate's fallback reference when the
``champion`` alias is missing, :func:`jude.registry.promotion.last_champion`). :func:`describe_versions` reads
them back for the newest versions, and :func:`no_champion_message` says why a model has no champion and what to
do (:data:`REMEDY`).

Plain functions of an ``MlflowClient`` the caller passes: no MLflow import and no other jude module, so the
lowest registry module (:mod:`jude.registry.uri`) raises its ``NoChampionError`` with this message without
importing :mod:`jude.registry.mlflow_registry` or :mod:`jude.registry.champion`, which both re-export these names.
"""

from __future__ import annotations

from typing import Any

PROMOTION_TAG, WAS_CHAMPION_TAG = "promotion", "was_champion"

REMEDY = (
    "train a model that passes the promotion rule (`make train`, then `make deploy`), or promote a version by hand "
    "with `jude registry promote VERSION --reason TEXT` (then `make sync-stages`)"
)


def describe_versions(client: Any, name: str, limit: int = 3) -> str:
    """The newest ``limit`` versions of ``name`` with their aliases and ``promotion`` tags, in one line."""
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda mv: int(mv.version), reverse=True)
    if not versions:
        return f"registered model {name!r} has no version"
    held: dict[str, list[str]] = {}  # version -> its aliases (search results carry none in MLflow 3)
    for alias, version in sorted(dict(getattr(client.get_registered_model(name), "aliases", None) or {}).items()):
        held.setdefault(str(version), []).append(alias)
    parts = []
    for mv in versions[:limit]:
        aliases = ", ".join(held.get(str(mv.version), [])) or "no alias"
        tag = (mv.tags or {}).get(PROMOTION_TAG, "no promotion tag")
        parts.append(f"v{mv.version} ({aliases}): {tag}")
    more = f" (and {len(versions) - limit} older)" if len(versions) > limit else ""
    return "; ".join(parts) + more


def no_champion_message(client: Any, name: str, where: str) -> str:
    """Why ``name`` has no champion ``where`` (a tracking URI phrase), and what to do."""
    return f"registered model {name!r} has no champion {where}: {describe_versions(client, name)}. To fix: {REMEDY}"
