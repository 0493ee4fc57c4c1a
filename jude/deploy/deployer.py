"""One entry point for the deploy step: take the promotion decision, deploy to the configured target.

``run_deployment(cfg, decision)`` is what ``steps/deploy_embedder.py`` calls; it
returns a :class:`DeploymentRecord` (target, address, model version) in every case:
deployed, rendered (dry run), or skipped (the gate did not promote and
``only_if_promoted`` is set).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jude.config import DeployConfig
from jude.deploy import kubernetes as kube
from jude.deploy.local import deploy_local
from jude.deploy.record import DeploymentRecord
from jude.registry.uri import parse_model_uri, pinned_uri


def run_deployment(
    cfg: DeployConfig,
    decision: dict[str, Any] | None = None,
    dry_run: bool = False,
    output_dir: str | None = None,
    api_client=None,
    log=print,
) -> DeploymentRecord:
    """Deploy the model the promotion gate chose, pinned to its version (``models:/name/<version>``).

    A ``model_uri`` set explicitly in the deploy config wins over the decision
    (see :func:`_model_to_deploy` for the version recorded).

    - ``target=local``: start `jude serve` in the background (see :mod:`jude.deploy.local`);
      with ``dry_run`` nothing starts and the record says what would have run.
    - ``target=kubernetes``: render and validate the manifests; with ``dry_run`` write
      them to ``output_dir`` (default ``<local.state_dir>/manifests``) and touch no
      cluster; otherwise apply them to the kubeconfig context and await the rollout.
    """
    decision = decision or {}
    _require_champion(cfg, decision)
    model_uri, version = _model_to_deploy(cfg, decision)
    if cfg.only_if_promoted and not decision.get("promoted", False):
        return DeploymentRecord(
            target=cfg.target,
            status="skipped",
            model_uri=model_uri,
            model_version=version,
            detail="the promotion gate did not promote a new champion (only_if_promoted)",
        )
    if cfg.target == "local":
        if dry_run:
            lc = cfg.local
            would = f"jude serve --model {model_uri} --host {lc.host} --port {lc.port}"
            if cfg.retrieval.enabled:
                would += f" --recommend` with $JUDE_RETRIEVAL_CONFIG={json.dumps(cfg.retrieval.overrides())}"
            else:
                would += "`"
            return DeploymentRecord(
                target="local",
                status="rendered",
                model_uri=model_uri,
                model_version=version,
                address=f"http://{lc.host}:{lc.port}",
                detail=f"dry run: would run `{would}",
            )
        return deploy_local(cfg, model_uri=model_uri, model_version=version, log=log)

    cfg = cfg.model_copy(update={"model_uri": model_uri})
    kc = cfg.kubernetes
    manifests = kube.render_manifests(cfg, model_version=version)
    names = kube.validate_manifests(manifests, kc.schema_version)
    address = f"http://{kc.name}.{kc.namespace}.svc.cluster.local:{kc.http_port}"
    if dry_run:
        out = Path(output_dir) if output_dir else Path(cfg.local.state_dir) / "manifests"
        paths = kube.write_manifests(manifests, out)
        log(f"wrote {len(paths)} manifests to {out}")
        return DeploymentRecord(
            target="kubernetes",
            status="rendered",
            model_uri=model_uri,
            model_version=version,
            address=address,
            namespace=kc.namespace,
            manifests=[str(p) for p in paths],
            detail=f"dry run: validated against Kubernetes {kc.schema_version}, nothing applied",
        )
    api_client = api_client or kube.kube_api_client(kc.context)
    result = kube.apply_manifests(manifests, api_client, timeout_s=kc.rollout_timeout_s, log=log)
    return DeploymentRecord(
        target="kubernetes",
        status="deployed",
        model_uri=model_uri,
        model_version=version,
        address=address,
        namespace=kc.namespace,
        manifests=names,
        actions=result.actions,
        detail=f"rolled out (revision {result.revision})",
    )


class NoChampionToDeploy(RuntimeError):
    """The gate left no champion and the deploy config names no other model: nothing is started or applied."""


def _require_champion(cfg: DeployConfig, decision: dict[str, Any]) -> None:
    """Stop before any server starts or manifest is applied when the decision leaves no champion to deploy.

    Only when the model comes from the decision (no ``deploy.model_uri``): the gate's ``champion_version`` None
    means the alias points at nothing, and ``jude serve --model models:/...@champion`` could not load.
    """
    if "model_uri" in cfg.model_fields_set or not decision or decision.get("champion_version") is not None:
        return
    from jude.registry.champion import REMEDY

    challenger = decision.get("challenger_version")
    raise NoChampionToDeploy(
        f"nothing deployed: {decision.get('model_name', 'the model')} has no champion; the promotion gate kept "
        f"v{challenger} as challenger — {decision.get('reason', 'no reason recorded')}. To fix: {REMEDY}; or set "
        "deploy.model_uri to serve another model"
    )


def _model_to_deploy(cfg: DeployConfig, decision: dict[str, Any]) -> tuple[str, str | None]:
    """The URI the server is started with and the registry version recorded for it.

    - From the decision (no ``model_uri`` set in the deploy config): the gate's
      ``models:/<name>@champion`` is pinned to the version the gate chose
      (``champion_version``), so pods restarted after a later promotion load the
      model recorded here, not whatever the alias points at by then.
    - Set explicitly in the deploy config: used as given. A version URI records
      its version; an alias, a local directory or ``minilm`` records none (the
      server resolves an alias when it loads and reports the version it serves).
    """
    from_decision = "model_uri" not in cfg.model_fields_set and bool(decision.get("model_uri"))
    model_uri = str(decision["model_uri"]) if from_decision else cfg.model_uri
    ref = parse_model_uri(model_uri)
    chosen = decision.get("champion_version")
    if from_decision and ref.alias is not None and chosen is not None:
        return pinned_uri(str(ref.name), str(chosen)), str(chosen)
    return model_uri, ref.version
