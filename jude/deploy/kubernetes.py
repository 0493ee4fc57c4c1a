"""Kubernetes: render, validate, write and apply the serving manifests; await the rollout; roll back.

Four objects, built with the kubernetes client's models (so field names and types
are the API's own) and then turned into plain dicts:

- **Deployment**: the `jude serve` container with startup (``/ready``, generous:
  the model loads), readiness (``/ready``) and liveness (``/health``) probes;
  CPU/memory requests and limits and ``nvidia.com/gpu`` when configured; the
  model URI in the environment; a preStop sleep so the Service drops the pod
  before SIGTERM (drain); a non-root, read-only, no-capabilities security context;
  a rolling update that never goes below the wanted replicas.
- **Service**: HTTP and gRPC ports.
- **HorizontalPodAutoscaler** (autoscaling/v2) on CPU utilisation.
- **PodDisruptionBudget** (policy/v1).
- With ``kubernetes.nearline.enabled``: the **nearline worker** Deployment
  (``jude nearline run``, embedding through the Service's gRPC port) and its
  PodDisruptionBudget. Its readiness (``/ready``) and liveness (``/health``) probes
  are the worker's own HTTP endpoints; SIGTERM lets it finish the batch in flight.

:func:`validate_manifests` checks each against the official JSON schemas
(kubernetes-validate, strict). :func:`apply_manifests` creates or patches each
object, waits for every Deployment's rollout and, when one fails, restores the
Deployments as they were before (``kubectl rollout undo`` in effect): the worker
and the server it embeds with go back together.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from jude.config import DeployConfig, KubernetesConfig, ServeConfig

APP_LABEL = "app.kubernetes.io/name"
MODEL_URI_ANNOTATION = "jude.dev/model-uri"
MODEL_VERSION_ANNOTATION = "jude.dev/model-version"
KIND_ORDER = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget")


class ManifestError(ValueError):
    """A rendered manifest does not match the official Kubernetes schema."""


class RolloutError(RuntimeError):
    """The Deployment did not become available in time (and was rolled back when possible)."""


def _labels(kc: KubernetesConfig) -> dict[str, str]:
    return {
        APP_LABEL: kc.name,
        "app.kubernetes.io/component": "embedding-server",
        "app.kubernetes.io/part-of": "jude",
        "app.kubernetes.io/managed-by": "jude",
    }


def _selector(kc: KubernetesConfig) -> dict[str, str]:
    return {APP_LABEL: kc.name, "app.kubernetes.io/component": "embedding-server"}


def _serve_overrides(serve: ServeConfig, kc: KubernetesConfig) -> dict[str, Any]:
    """ServeConfig fields that differ from the defaults, for JUDE_SERVE_CONFIG (host/ports come from args)."""
    changed = serve.model_dump(exclude_defaults=True)
    for k in ("host", "port", "grpc_port"):
        changed.pop(k, None)
    return changed


def _deployment(cfg: DeployConfig, model_version: str | None) -> k8s.V1Deployment:
    kc = cfg.kubernetes
    env = [
        k8s.V1EnvVar(name="JUDE_MODEL_URI", value=cfg.model_uri),
        k8s.V1EnvVar(name="HOME", value="/tmp"),  # the root filesystem is read-only
        k8s.V1EnvVar(name="JUDE_HOME", value="/tmp/jude"),  # registry downloads land under $JUDE_HOME/.jude
        k8s.V1EnvVar(name="HF_HUB_OFFLINE", value="1"),
        k8s.V1EnvVar(name="TOKENIZERS_PARALLELISM", value="false"),
    ]
    overrides = _serve_overrides(cfg.serve, kc)
    if overrides:
        env.append(k8s.V1EnvVar(name="JUDE_SERVE_CONFIG", value=json.dumps(overrides, sort_keys=True)))
    if cfg.retrieval.enabled:  # /v1/recommend: `--recommend` below, the settings as JSON
        retrieval = json.dumps(cfg.retrieval.overrides(), sort_keys=True)
        env.append(k8s.V1EnvVar(name="JUDE_RETRIEVAL_CONFIG", value=retrieval))
    env += [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(kc.env.items())]
    if kc.api_key_secret:
        env.append(
            k8s.V1EnvVar(
                name=cfg.serve.api_key_env,
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(name=kc.api_key_secret, key="api-key")
                ),
            )
        )

    requests = {"cpu": kc.cpu_request, "memory": kc.memory_request}
    limits = {"cpu": kc.cpu_limit, "memory": kc.memory_limit}
    if kc.gpus:
        requests["nvidia.com/gpu"] = str(kc.gpus)
        limits["nvidia.com/gpu"] = str(kc.gpus)

    def http_probe(path: str, period: int, failures: int, timeout: int = 2) -> k8s.V1Probe:
        return k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path=path, port="http"),
            period_seconds=period,
            failure_threshold=failures,
            timeout_seconds=timeout,
        )

    startup_period = 5
    container = k8s.V1Container(
        name="server",
        image=kc.image,
        image_pull_policy=kc.image_pull_policy,
        args=[
            "serve",
            "--model",
            cfg.model_uri,
            "--host",
            "0.0.0.0",
            "--port",
            str(kc.http_port),
            "--grpc-port",
            str(kc.grpc_port),
        ]
        + (["--device", "cuda"] if kc.gpus else [])
        + (["--recommend"] if cfg.retrieval.enabled else []),
        env=env,
        ports=[
            k8s.V1ContainerPort(name="http", container_port=kc.http_port, protocol="TCP"),
            k8s.V1ContainerPort(name="grpc", container_port=kc.grpc_port, protocol="TCP"),
        ],
        resources=k8s.V1ResourceRequirements(requests=requests, limits=limits),
        # startup: the model may take minutes to download and load; liveness only starts after it
        startup_probe=http_probe("/ready", startup_period, max(1, kc.startup_timeout_s // startup_period)),
        readiness_probe=http_probe("/ready", 5, 3),
        liveness_probe=http_probe("/health", 10, 3, timeout=5),
        lifecycle=k8s.V1Lifecycle(
            pre_stop=k8s.V1LifecycleHandler(_exec=k8s.V1ExecAction(command=["sleep", str(kc.drain_seconds)]))
        )
        if kc.drain_seconds
        else None,
        security_context=k8s.V1SecurityContext(
            run_as_non_root=True,
            run_as_user=kc.run_as_user,
            run_as_group=kc.run_as_user,
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        volume_mounts=[k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
    )
    tolerations = None
    if kc.gpus:
        tolerations = [k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
    pod = k8s.V1PodSpec(
        containers=[container],
        # drain, then up to 30 s for in-flight requests after SIGTERM
        termination_grace_period_seconds=kc.drain_seconds + 30,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=kc.run_as_user,
            run_as_group=kc.run_as_user,
            fs_group=kc.run_as_user,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="20Gi"))],
        node_selector=dict(kc.node_selector) or None,
        tolerations=tolerations,
        automount_service_account_token=False,
    )
    annotations = {MODEL_URI_ANNOTATION: cfg.model_uri}
    if model_version:
        annotations[MODEL_VERSION_ANNOTATION] = str(model_version)
    # the annotation changes with the model, so a new champion rolls the pods
    return _rolling_deployment(kc, kc.name, kc.replicas, _labels(kc), _selector(kc), annotations, pod)


def _rolling_deployment(
    kc: KubernetesConfig,
    name: str,
    replicas: int,
    labels: dict[str, str],
    selector: dict[str, str],
    annotations: dict[str, str],
    pod: k8s.V1PodSpec,
) -> k8s.V1Deployment:
    """A Deployment that rolls one new pod at a time and never drops below ``replicas`` (server and worker)."""
    return k8s.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=k8s.V1ObjectMeta(name=name, namespace=kc.namespace, labels=labels, annotations=annotations),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            revision_history_limit=5,
            progress_deadline_seconds=int(kc.rollout_timeout_s),
            selector=k8s.V1LabelSelector(match_labels=selector),
            strategy=k8s.V1DeploymentStrategy(
                type="RollingUpdate", rolling_update=k8s.V1RollingUpdateDeployment(max_surge=1, max_unavailable=0)
            ),
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels, annotations=annotations), spec=pod),
        ),
    )


def _service(kc: KubernetesConfig) -> k8s.V1Service:
    return k8s.V1Service(
        api_version="v1",
        kind="Service",
        metadata=k8s.V1ObjectMeta(name=kc.name, namespace=kc.namespace, labels=_labels(kc)),
        spec=k8s.V1ServiceSpec(
            type=kc.service_type,
            selector=_selector(kc),
            ports=[
                k8s.V1ServicePort(name="http", port=kc.http_port, target_port="http", protocol="TCP"),
                k8s.V1ServicePort(
                    name="grpc", port=kc.grpc_port, target_port="grpc", protocol="TCP", app_protocol="grpc"
                ),
            ],
        ),
    )


def _hpa(kc: KubernetesConfig) -> k8s.V2HorizontalPodAutoscaler:
    return k8s.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        metadata=k8s.V1ObjectMeta(name=kc.name, namespace=kc.namespace, labels=_labels(kc)),
        spec=k8s.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=k8s.V2CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name=kc.name),
            min_replicas=kc.min_replicas,
            max_replicas=kc.max_replicas,
            metrics=[
                k8s.V2MetricSpec(
                    type="Resource",
                    resource=k8s.V2ResourceMetricSource(
                        name="cpu",
                        target=k8s.V2MetricTarget(type="Utilization", average_utilization=kc.target_cpu_utilization),
                    ),
                )
            ],
        ),
    )


def _pdb(kc: KubernetesConfig) -> k8s.V1PodDisruptionBudget:
    return k8s.V1PodDisruptionBudget(
        api_version="policy/v1",
        kind="PodDisruptionBudget",
        metadata=k8s.V1ObjectMeta(name=kc.name, namespace=kc.namespace, labels=_labels(kc)),
        spec=k8s.V1PodDisruptionBudgetSpec(
            min_available=kc.pdb_min_available, selector=k8s.V1LabelSelector(match_labels=_selector(kc))
        ),
    )


NEARLINE_CONFIG_ENV = "JUDE_NEARLINE_CONFIG"  # jude.nearline.worker.CONFIG_ENV (deploy does not import nearline)


def nearline_name(kc: KubernetesConfig) -> str:
    return f"{kc.name}-nearline"


def _nearline_labels(kc: KubernetesConfig) -> dict[str, str]:
    return {**_labels(kc), APP_LABEL: nearline_name(kc), "app.kubernetes.io/component": "nearline-worker"}


def _nearline_selector(kc: KubernetesConfig) -> dict[str, str]:
    return {APP_LABEL: nearline_name(kc), "app.kubernetes.io/component": "nearline-worker"}


def nearline_worker_config(kc: KubernetesConfig) -> dict[str, Any]:
    """The worker's settings for ``$JUDE_NEARLINE_CONFIG``: what differs from the defaults, plus where it runs.

    Unless the config names its own targets, the worker embeds through this
    deployment's Service (gRPC) and its embedding version is the served registry
    version. Its probes listen on every interface, on the container's metrics port.
    """
    nc = kc.nearline
    values = nc.worker.model_dump(exclude_defaults=True, mode="json")
    if "targets" not in nc.worker.model_fields_set:
        values["targets"] = [{"server": f"{kc.name}.{kc.namespace}.svc.cluster.local:{kc.grpc_port}"}]
    values["metrics_host"] = "0.0.0.0"
    values["metrics_port"] = nc.metrics_port
    return values


def _nearline_deployment(cfg: DeployConfig, model_version: str | None) -> k8s.V1Deployment:
    kc, nc = cfg.kubernetes, cfg.kubernetes.nearline
    env = [
        k8s.V1EnvVar(name=NEARLINE_CONFIG_ENV, value=json.dumps(nearline_worker_config(kc), sort_keys=True)),
        k8s.V1EnvVar(name="HOME", value="/tmp"),
        k8s.V1EnvVar(name="JUDE_HOME", value="/tmp/jude"),
        k8s.V1EnvVar(name="HF_HUB_OFFLINE", value="1"),
        k8s.V1EnvVar(name="TOKENIZERS_PARALLELISM", value="false"),
    ]
    env += [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(kc.env.items())]
    if kc.api_key_secret:
        env.append(
            k8s.V1EnvVar(
                name=nc.worker.api_key_env,
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(name=kc.api_key_secret, key="api-key")
                ),
            )
        )

    def probe(path: str, period: int, failures: int) -> k8s.V1Probe:
        return k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path=path, port="metrics"),
            period_seconds=period,
            failure_threshold=failures,
            timeout_seconds=2,
        )

    startup_period = 5
    security = k8s.V1SecurityContext(
        run_as_non_root=True,
        run_as_user=kc.run_as_user,
        run_as_group=kc.run_as_user,
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
    )
    container = k8s.V1Container(
        name="nearline",
        image=nc.image or kc.image,
        image_pull_policy=kc.image_pull_policy,
        args=["nearline", "run"],
        env=env,
        ports=[k8s.V1ContainerPort(name="metrics", container_port=nc.metrics_port, protocol="TCP")],
        resources=k8s.V1ResourceRequirements(
            requests={"cpu": nc.cpu_request, "memory": nc.memory_request},
            limits={"cpu": nc.cpu_limit, "memory": nc.memory_limit},
        ),
        # startup: the worker waits for the server (Info) and its stores before it reads
        startup_probe=probe("/ready", startup_period, max(1, kc.startup_timeout_s // startup_period)),
        readiness_probe=probe("/ready", 5, 3),
        liveness_probe=probe("/health", 10, 3),
        security_context=security,
        volume_mounts=[k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
    )
    pod = k8s.V1PodSpec(
        containers=[container],
        # SIGTERM: the batch in flight is written and acknowledged before the worker exits
        termination_grace_period_seconds=60,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=kc.run_as_user,
            run_as_group=kc.run_as_user,
            fs_group=kc.run_as_user,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="1Gi"))],
        automount_service_account_token=False,
    )
    annotations = {MODEL_URI_ANNOTATION: cfg.model_uri}
    if model_version:
        annotations[MODEL_VERSION_ANNOTATION] = str(model_version)
    name = nearline_name(kc)
    # a new champion rolls the workers too: their embedding version follows the served model
    return _rolling_deployment(kc, name, nc.replicas, _nearline_labels(kc), _nearline_selector(kc), annotations, pod)


def _nearline_pdb(kc: KubernetesConfig) -> k8s.V1PodDisruptionBudget:
    return k8s.V1PodDisruptionBudget(
        api_version="policy/v1",
        kind="PodDisruptionBudget",
        metadata=k8s.V1ObjectMeta(name=nearline_name(kc), namespace=kc.namespace, labels=_nearline_labels(kc)),
        spec=k8s.V1PodDisruptionBudgetSpec(
            min_available=kc.nearline.pdb_min_available,
            selector=k8s.V1LabelSelector(match_labels=_nearline_selector(kc)),
        ),
    )


def render_manifests(cfg: DeployConfig | KubernetesConfig | dict, model_version: str | None = None) -> list[dict]:
    """The manifests as plain dicts, ready for YAML or the API.

    Deployment, Service, HPA, PDB of the server; then, with ``kubernetes.nearline.enabled``,
    the nearline worker's Deployment and PDB.
    """
    if isinstance(cfg, dict):
        cfg = DeployConfig.model_validate(cfg)
    elif isinstance(cfg, KubernetesConfig):
        cfg = DeployConfig(target="kubernetes", kubernetes=cfg)
    kc = cfg.kubernetes
    objects = [_deployment(cfg, model_version), _service(kc), _hpa(kc), _pdb(kc)]
    if kc.nearline.enabled:
        objects += [_nearline_deployment(cfg, model_version), _nearline_pdb(kc)]
    return [k8s.ApiClient().sanitize_for_serialization(o) for o in objects]


def validate_manifests(manifests: list[dict], version: str = "1.30") -> list[str]:
    """Validate each manifest against the official schema (strict); raise ManifestError naming the field."""
    import kubernetes_validate

    checked = []
    for m in manifests:
        name = f"{m.get('kind')}/{m.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(m, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(root)"
            raise ManifestError(f"{name}: {path}: {e.message} (Kubernetes {version} schema)") from e
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.VersionNotSupportedError) as e:
            raise ManifestError(f"{name}: {e.message}") from e
        checked.append(name)
    return checked


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifests(manifests: list[dict], directory: str | os.PathLike) -> list[Path]:
    """One YAML file per object (``01-deployment-<name>.yaml`` ...), each written atomically."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, m in enumerate(manifests, 1):
        path = out / f"{i:02d}-{m['kind'].lower()}-{m['metadata']['name']}.yaml"
        _atomic_write(path, yaml.safe_dump(m, sort_keys=False))
        paths.append(path)
    return paths


# ---- apply ----------------------------------------------------------------------------
@dataclass
class ApplyResult:
    actions: dict[str, str] = field(default_factory=dict)  # "Deployment/jude-embedder" -> created | patched
    rolled_out: bool = False
    revision: str | None = None


def _api_for(kind: str, api_client: k8s.ApiClient) -> tuple[Any, str]:
    """(API object, method suffix) for a kind: read_namespaced_<suffix>, create_..., patch_..."""
    return {
        "Deployment": (k8s.AppsV1Api(api_client), "deployment"),
        "Service": (k8s.CoreV1Api(api_client), "service"),
        "HorizontalPodAutoscaler": (k8s.AutoscalingV2Api(api_client), "horizontal_pod_autoscaler"),
        "PodDisruptionBudget": (k8s.PolicyV1Api(api_client), "pod_disruption_budget"),
    }[kind]


def apply_manifests(
    manifests: list[dict], api_client: k8s.ApiClient, timeout_s: float = 600.0, poll_s: float = 2.0, log=print
) -> ApplyResult:
    """Create or patch each object, await every Deployment's rollout, roll them back if one fails.

    The Deployments (the server, and the nearline worker when rendered) are awaited in
    order within ``timeout_s`` in all. When one fails, every Deployment this call
    patched is restored, so a worker never stays on a model its server no longer has.
    Raises :class:`RolloutError` after rolling back (when there was a previous version).
    """
    result = ApplyResult()
    previous: dict[str, dict | None] = {}  # Deployment name -> as it was (None: this call created it)
    deployments: list[dict] = []
    ordered = sorted(manifests, key=lambda m: KIND_ORDER.index(m["kind"]) if m["kind"] in KIND_ORDER else 99)
    for m in ordered:
        kind, name, ns = m["kind"], m["metadata"]["name"], m["metadata"].get("namespace", "default")
        api, suffix = _api_for(kind, api_client)
        try:
            current = getattr(api, f"read_namespaced_{suffix}")(name, ns)
        except ApiException as e:
            if e.status != 404:
                raise
            current = None
        if current is None:
            getattr(api, f"create_namespaced_{suffix}")(ns, m)
            result.actions[f"{kind}/{name}"] = "created"
        else:
            getattr(api, f"patch_namespaced_{suffix}")(name, ns, m)
            result.actions[f"{kind}/{name}"] = "patched"
        log(f"{kind}/{name}: {result.actions[f'{kind}/{name}']}")
        if kind == "Deployment":
            previous[name] = None if current is None else api_client.sanitize_for_serialization(current)
            deployments.append(m)
    deadline = time.monotonic() + timeout_s
    for deployment in deployments:
        name, ns = deployment["metadata"]["name"], deployment["metadata"].get("namespace", "default")
        try:
            left = max(deadline - time.monotonic(), poll_s)
            revision = wait_for_rollout(api_client, name, ns, timeout_s=left, poll_s=poll_s, log=log)
        except RolloutError as e:
            restored = [prev for prev in previous.values() if prev is not None]
            for prev in restored:
                rollback_deployment(api_client, prev)
            if previous[name] is None:
                raise RolloutError(
                    f"{e}; there is no previous version to roll back to (Deployment/{name} left as is for inspection)"
                ) from e
            names = " and ".join(f"Deployment/{p['metadata']['name']}" for p in restored)
            raise RolloutError(f"{e}; rolled {names} back to the previous version") from e
        if result.revision is None:
            result.revision = revision  # the server's (the first Deployment)
    result.rolled_out = bool(deployments)
    return result


def wait_for_rollout(
    api_client: k8s.ApiClient, name: str, namespace: str, timeout_s: float = 600.0, poll_s: float = 2.0, log=print
) -> str | None:
    """Poll the Deployment until every replica runs the new template -> its revision annotation.

    The rule of ``kubectl rollout status``: observedGeneration caught up, all replicas
    updated and available, none unavailable; ``ProgressDeadlineExceeded`` fails at once.
    """
    apps = k8s.AppsV1Api(api_client)
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        d = apps.read_namespaced_deployment_status(name, namespace)
        want = d.spec.replicas if d.spec.replicas is not None else 1
        st = d.status or k8s.V1DeploymentStatus()
        for c in st.conditions or []:
            if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
                raise RolloutError(f"Deployment/{name}: rollout exceeded its progress deadline: {c.message}")
        done = (
            (st.observed_generation or 0) >= (d.metadata.generation or 0)
            and (st.updated_replicas or 0) == want
            and (st.available_replicas or 0) >= want
            and (st.replicas or 0) == want
            and not st.unavailable_replicas
        )
        msg = (
            f"Deployment/{name}: {st.updated_replicas or 0}/{want} updated, "
            f"{st.available_replicas or 0}/{want} available"
        )
        if msg != last:
            log(msg)
            last = msg
        if done:
            return (d.metadata.annotations or {}).get("deployment.kubernetes.io/revision")
        if time.monotonic() >= deadline:
            raise RolloutError(f"Deployment/{name}: not rolled out after {timeout_s:.0f}s ({msg})")
        time.sleep(poll_s)


def rollback_deployment(api_client: k8s.ApiClient, previous: dict) -> None:
    """Put the Deployment back as it was (spec and annotations) before this apply."""
    body = {k: v for k, v in previous.items() if k != "status"}
    meta = {k: v for k, v in body.get("metadata", {}).items() if k in ("name", "namespace", "labels", "annotations")}
    body["metadata"] = meta
    k8s.AppsV1Api(api_client).replace_namespaced_deployment(meta["name"], meta.get("namespace", "default"), body)


def kube_api_client(context: str | None = None) -> k8s.ApiClient:
    """An API client for a kubeconfig context (None: the current one), or in-cluster config."""
    from kubernetes import config as kconfig

    try:
        return kconfig.new_client_from_config(context=context)
    except kconfig.ConfigException:
        kconfig.load_incluster_config()
        return k8s.ApiClient()
