"""One entry point for the deploy step: take the promotion decision, deploy to the configured target.

``run_deployment(cfg, decision)`` is what ``steps/deploy_embedder.py`` calls; it
returns a :class:`DeploymentRecord` (target, address, model version) in every case:
deployed, rendered (dry run), or skipped (the gate did not promote and
``only_if_promoted`` is set).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jude.config import DeployConfig
from jude.deploy import kubernetes as kube
from jude.deploy.local import deploy_local
from jude.deploy.record import DeploymentRecord


def run_deployment(cfg: DeployConfig, decision: dict[str, Any] | None = None, dry_run: bool = False,
                   output_dir: str | None = None, api_client=None, log=print) -> DeploymentRecord:
    """Deploy the model the promotion gate chose, pinned to its version (``models:/name/<version>``).

    A ``model_uri`` set explicitly in the deploy config wins over the decision.

    - ``target=local``: start `jude serve` in the background (see :mod:`jude.deploy.local`);
      with ``dry_run`` nothing starts and the record says what would have run.
    - ``target=kubernetes``: render and validate the manifests; with ``dry_run`` write
      them to ``output_dir`` (default ``<local.state_dir>/manifests``) and touch no
      cluster; otherwise apply them to the kubeconfig context and await the rollout.
    """
    decision = decision or {}
    version = decision.get("champion_version")
    version = str(version) if version is not None else None
    if "model_uri" in cfg.model_fields_set or not decision.get("model_uri"):
        model_uri = cfg.model_uri  # set explicitly in the deploy config: it wins
    else:
        model_uri = decision["model_uri"]
        if version and model_uri.startswith("models:/") and "@" in model_uri:
            # pin the alias to the version the gate chose: pods restarted after a later
            # promotion must not silently load another model than the one recorded here
            model_uri = f"models:/{model_uri.removeprefix('models:/').split('@')[0]}/{version}"
    if cfg.only_if_promoted and not decision.get("promoted", False):
        return DeploymentRecord(target=cfg.target, status="skipped", model_uri=model_uri, model_version=version,
                                detail="the promotion gate did not promote a new champion (only_if_promoted)")
    if cfg.target == "local":
        if dry_run:
            lc = cfg.local
            return DeploymentRecord(
                target="local", status="rendered", model_uri=model_uri, model_version=version,
                address=f"http://{lc.host}:{lc.port}",
                detail=f"dry run: would run `jude serve --model {model_uri} --host {lc.host} --port {lc.port}`")
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
        return DeploymentRecord(target="kubernetes", status="rendered", model_uri=model_uri, model_version=version,
                                address=address, namespace=kc.namespace, manifests=[str(p) for p in paths],
                                detail=f"dry run: validated against Kubernetes {kc.schema_version}, nothing applied")
    api_client = api_client or kube.kube_api_client(kc.context)
    result = kube.apply_manifests(manifests, api_client, timeout_s=kc.rollout_timeout_s, log=log)
    return DeploymentRecord(target="kubernetes", status="deployed", model_uri=model_uri, model_version=version,
                            address=address, namespace=kc.namespace, manifests=names, actions=result.actions,
                            detail=f"rolled out (revision {result.revision})")
