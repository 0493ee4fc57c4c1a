"""The ``deploy:`` section: ``DeployConfig`` with its targets, ``LocalDeployConfig`` (a local process) and
``KubernetesConfig`` (Deployment, Service, HPA, PDB), and ``NearlineDeployConfig`` (the worker beside the server).

It holds the server's ``ServeConfig`` (``jude.config.serving``), its ``RetrievalConfig`` (``jude.config.retrieval``:
``/v1/recommend``, off unless ``retrieval.enabled``) and the worker's ``NearlineConfig`` (``jude.config.nearline``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from jude.config.base import _Section
from jude.config.nearline import NearlineConfig
from jude.config.retrieval import RetrievalConfig
from jude.config.serving import ServeConfig

# ---- Kubernetes quantities and object names ----------------------------------------------
_K8S_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
_K8S_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class LocalDeployConfig(_Section):
    """target=local: `jude serve` as a background process on this machine."""

    host: str = Field("127.0.0.1", description="Interface the server binds.")
    port: int = Field(8080, ge=1, le=65534, description="Port; port+1 is used while the old server still holds port.")
    ready_timeout_s: float = Field(180.0, gt=0, description="How long to wait for /ready before giving up.")
    state_dir: str = Field(".jude/deploy", description="Where the state file and server logs live.")


class NearlineDeployConfig(_Section):
    """The nearline worker Deployment rendered beside the server (target=kubernetes; off by default).

    The worker embeds through the server's Service (gRPC), so its embedding version is
    the served model's registry version. ``worker`` holds the worker's settings that
    differ from the defaults (Redis or Kafka addresses, history_path on object storage).
    """

    enabled: bool = Field(False, description="Render and apply the worker Deployment and its PDB.")
    image: str | None = Field(
        None, min_length=1, description="Worker image; None = the server's (the same image runs `jude nearline run`)."
    )
    replicas: int = Field(2, ge=1, description="Workers in the consumer group (each takes a share of the events).")
    pdb_min_available: int = Field(1, ge=0, description="Workers kept during voluntary disruptions.")
    cpu_request: str = Field("500m", pattern=_K8S_QUANTITY)
    cpu_limit: str = Field("1", pattern=_K8S_QUANTITY)
    memory_request: str = Field("512Mi", pattern=_K8S_QUANTITY)
    memory_limit: str = Field("1Gi", pattern=_K8S_QUANTITY)
    metrics_port: int = Field(9464, ge=1, le=65535, description="Container port of /metrics, /ready, /health.")
    worker: NearlineConfig = Field(
        default_factory=NearlineConfig,
        description="The worker's settings; targets default to the server's Service, metrics to metrics_port.",
    )

    @model_validator(mode="after")
    def _check(self) -> NearlineDeployConfig:
        if self.pdb_min_available >= self.replicas and self.pdb_min_available > 0:
            raise ValueError(
                f"kubernetes.nearline.pdb_min_available must be < replicas ({self.replicas}), "
                f"got {self.pdb_min_available}: a node drain could never evict a worker"
            )
        return self


class KubernetesConfig(_Section):
    """target=kubernetes: Deployment + Service + HPA + PodDisruptionBudget."""

    name: str = Field("jude-embedder", pattern=_K8S_NAME, max_length=50, description="Name of every object.")
    namespace: str = Field("default", pattern=_K8S_NAME, description="Namespace to deploy into.")
    context: str | None = Field(None, description="kubeconfig context; None = the current one.")
    image: str = Field(
        "jude-serve:latest", min_length=1, description="Serving image (see Dockerfile, docs/serving.md)."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent")
    replicas: int = Field(2, ge=1, description="Initial replicas (the HPA takes over from there).")
    min_replicas: int = Field(2, ge=1, description="HPA lower bound.")
    max_replicas: int = Field(8, ge=1, description="HPA upper bound.")
    target_cpu_utilization: int = Field(70, gt=0, le=100, description="HPA average CPU utilisation target, percent.")
    cpu_request: str = Field("1", pattern=_K8S_QUANTITY)
    cpu_limit: str = Field("2", pattern=_K8S_QUANTITY)
    memory_request: str = Field("2Gi", pattern=_K8S_QUANTITY)
    memory_limit: str = Field("4Gi", pattern=_K8S_QUANTITY)
    gpus: int = Field(0, ge=0, description="nvidia.com/gpu per pod (0 = CPU pods).")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Pod nodeSelector (e.g. a GPU node pool).")
    http_port: int = Field(8080, ge=1, le=65535)
    grpc_port: int = Field(50051, ge=1, le=65535)
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field("ClusterIP")
    pdb_min_available: int = Field(1, ge=0, description="Pods kept during voluntary disruptions.")
    drain_seconds: int = Field(10, ge=0, description="preStop sleep so endpoints drop the pod before SIGTERM.")
    startup_timeout_s: int = Field(600, ge=10, description="How long the startup probe allows for loading the model.")
    rollout_timeout_s: float = Field(600.0, gt=0, description="How long to wait for the rollout before rolling back.")
    run_as_user: int = Field(10001, ge=1, description="Non-root UID of the server process.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment, e.g. MLFLOW_TRACKING_URI.")
    api_key_secret: str | None = Field(None, description="Secret whose key 'api-key' becomes JUDE_API_KEY.")
    schema_version: str = Field(
        "1.30", pattern=r"^1\.[0-9]+$", description="Kubernetes version the manifests are validated against."
    )
    nearline: NearlineDeployConfig = Field(
        default_factory=NearlineDeployConfig, description="The nearline worker Deployment beside the server."
    )

    @model_validator(mode="after")
    def _check(self) -> KubernetesConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"kubernetes.min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})"
            )
        if self.pdb_min_available >= self.min_replicas and self.pdb_min_available > 0:
            raise ValueError(
                f"kubernetes.pdb_min_available must be < min_replicas ({self.min_replicas}), "
                f"got {self.pdb_min_available}: a node drain could never evict a pod"
            )
        if self.http_port == self.grpc_port:
            raise ValueError(f"kubernetes.http_port and grpc_port must differ, both are {self.http_port}")
        return self


class DeployConfig(_Section):
    """The deploy pipeline: which model, where, and how the server is tuned."""

    target: Literal["local", "kubernetes"] = Field("local", description="Where the champion is served.")
    model_uri: str = Field("models:/jude-embedder@champion", min_length=1, description="What the server loads.")
    only_if_promoted: bool = Field(False, description="Skip deploying when the gate did not promote a new champion.")
    serve: ServeConfig = Field(default_factory=ServeConfig)
    retrieval: RetrievalConfig = Field(
        default_factory=RetrievalConfig,
        description="The server's job index and /v1/recommend: with enabled, the server starts as `jude serve "
        "--recommend` and the fields that differ from the defaults reach it as $JUDE_RETRIEVAL_CONFIG.",
    )
    local: LocalDeployConfig = Field(default_factory=LocalDeployConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
