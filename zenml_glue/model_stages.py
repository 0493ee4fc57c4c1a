"""ZenML's Model version stages kept in step with the MLflow registry's aliases.

The MLflow aliases decide what is served (``champion``) and what waits for the promotion gate
(``challenger``). ZenML's Model ``jude-embedder`` has a version per train run, and the version whose run
registered a model carries ``mlflow_model`` metadata naming that MLflow version
(``steps/register_embedder.py``). Its stage says what the alias says, so ``zenml model version list
--model jude-embedder`` tells the truth:

    champion                    -> production
    challenger (not champion)   -> staging
    neither                     -> archived, if it was production or staging; a version never staged keeps
                                   its stage (``none``)

ZenML lets one version hold ``production`` and one ``staging``; this module always sets a stage with
``force=True``, which archives whichever version held it. The train pipeline syncs after
``register_embedder``, the deploy pipeline after ``promote_challenger``. After moving an alias by hand (the
MLflow UI, ``MlflowClient().set_registered_model_alias``), run::

    make sync-stages            # python -m zenml_glue.model_stages [--model jude-embedder]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python zenml_glue/model_stages.py`: the project root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jude.registry.mlflow_registry import resolve_tracking_uri  # noqa: E402

MLFLOW_MODEL_METADATA = "mlflow_model"  # what register_embedder logs on the ZenML Model version
PRODUCTION, STAGING, ARCHIVED = "production", "staging", "archived"  # zenml.enums.ModelStages values
ALIAS_STAGES = (("champion", PRODUCTION), ("challenger", STAGING))  # the first alias a version holds wins


@dataclass(frozen=True)
class StageChange:
    """One ZenML Model version whose stage was set: which, for which MLflow version, from what to what, why."""

    zenml_version: str  # the version's name ("1", "2", ...)
    mlflow_version: str | None
    before: str
    after: str
    why: str

    def __str__(self) -> str:
        mlflow = f"MLflow v{self.mlflow_version}" if self.mlflow_version else "no MLflow version"
        return f"ZenML version {self.zenml_version} ({mlflow}): {self.before} -> {self.after} ({self.why})"


def mlflow_version_of(model_version: Any, model_name: str) -> str | None:
    """The MLflow version a ZenML Model version registered (its ``mlflow_model`` metadata), or None."""
    record = (model_version.run_metadata or {}).get(MLFLOW_MODEL_METADATA)
    if not isinstance(record, dict) or record.get("version") in (None, ""):
        return None
    if record.get("name") not in (None, model_name):
        return None
    return str(record["version"])


def target_stage(aliases: set[str], current: str) -> tuple[str | None, str]:
    """The stage a version holding ``aliases`` should have (None: leave ``current``), and why."""
    for alias, stage in ALIAS_STAGES:
        if alias in aliases:
            return stage, f"holds the MLflow alias '{alias}'"
    if current in (PRODUCTION, STAGING):
        held = f" (it holds {sorted(aliases)})" if aliases else ""
        return ARCHIVED, f"holds neither 'champion' nor 'challenger' any more{held}"
    return None, ""


def mlflow_aliases(model_name: str, tracking_uri: str | None = None) -> dict[str, set[str]]:
    """MLflow version -> the aliases it holds (empty when the registered model does not exist)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    try:
        registered = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(model_name)
    except MlflowException:
        return {}
    by_version: dict[str, set[str]] = defaultdict(set)
    for alias, version in (registered.aliases or {}).items():
        by_version[str(version)].add(alias)
    return dict(by_version)


def _all_versions(client: Any, model_id: Any) -> list[Any]:
    out, page = [], 1
    while True:
        batch = client.list_model_versions(model=model_id, page=page, size=100)
        out += list(batch.items)
        if page >= batch.total_pages:
            return out
        page += 1


def sync_model_stages(
    model_name: str,
    tracking_uri: str | None = None,
    known: dict[str, str] | None = None,
    client: Any = None,
) -> list[StageChange]:
    """Set each ZenML version's stage from the MLflow aliases of the version it registered; return the changes.

    ``known`` maps a ZenML Model version id to its MLflow version where the metadata may not be readable yet
    (the version a running step just registered). Where two ZenML versions name the same MLflow version (a
    re-run whose registration came from the cache), the newer one stands for it. A ZenML model that does not
    exist yet is no error: nothing to sync.
    """
    from zenml.client import Client

    client = client or Client()
    try:
        model = client.get_model(model_name)
    except KeyError:
        return []
    aliases = mlflow_aliases(model_name, tracking_uri)
    known = known or {}
    versions = sorted(_all_versions(client, model.id), key=lambda v: v.number)
    registered = {str(v.id): known.get(str(v.id)) or mlflow_version_of(v, model_name) for v in versions}
    stands_for = {mlv: vid for vid, mlv in registered.items() if mlv is not None}  # newest wins (sorted)

    plan = []
    for v in versions:
        current = str(getattr(v.stage, "value", v.stage) or "none")
        mlv = registered[str(v.id)]
        held = aliases.get(mlv, set()) if mlv is not None and stands_for[mlv] == str(v.id) else set()
        stage, why = target_stage(held, current)
        if stage is not None and stage != current:
            plan.append((v, mlv, current, stage, why))
    changes = []
    # archive first, then staging, then production (each `force` archives whoever held the stage before)
    order = {ARCHIVED: 0, STAGING: 1, PRODUCTION: 2}
    for v, mlv, current, stage, why in sorted(plan, key=lambda p: order[p[3]]):
        client.update_model_version(model.id, v.id, stage=stage, force=True)
        changes.append(StageChange(str(v.name), mlv, current, stage, why))
    return changes


def stage_table(model_name: str, tracking_uri: str | None = None, client: Any = None) -> list[tuple[str, ...]]:
    """(ZenML version, stage, MLflow version, its aliases) for every version, oldest first."""
    from zenml.client import Client

    client = client or Client()
    try:
        model = client.get_model(model_name)
    except KeyError:
        return []
    aliases = mlflow_aliases(model_name, tracking_uri)
    rows = []
    for v in sorted(_all_versions(client, model.id), key=lambda v: v.number):
        mlv = mlflow_version_of(v, model_name)
        rows.append(
            (
                str(v.name),
                str(getattr(v.stage, "value", v.stage) or "none"),
                mlv or "-",
                ", ".join(sorted(aliases.get(mlv, ()))) if mlv else "-",
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    from jude.env import apply_offline_env

    apply_offline_env()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="jude-embedder", help="the MLflow registered model and ZenML Model")
    parser.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else .jude/mlflow.db")
    args = parser.parse_args(argv)
    from zenml.client import Client

    try:
        Client().get_model(args.model)
    except KeyError:
        print(f"no ZenML Model {args.model!r} yet: `make train` creates it")
        return 0
    changes = sync_model_stages(args.model, args.tracking_uri)
    for change in changes:
        print(change)
    if not changes:
        print(f"ZenML Model {args.model!r}: every version's stage already matches the MLflow aliases")
    rows = stage_table(args.model, args.tracking_uri)
    if rows:
        print(f"\n{'ZenML version':>13}  {'stage':<10}  {'MLflow version':>14}  aliases")
        for name, stage, mlv, held in rows:
            print(f"{name:>13}  {stage:<10}  {mlv:>14}  {held}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
