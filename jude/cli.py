"""The `jude` console script (the serving container's entrypoint).

    jude serve --model URI [--host H] [--port N] [--grpc-port N] [--config F]
    jude k8s render --config configs/deploy_k8s.yaml --output DIR [--model-version V]
    jude deploy local [--config F] [--model URI]      (no ZenML needed)
    jude deploy stop [--state-dir .jude/deploy]

``serve`` takes its ServeConfig from (lowest first) the defaults, the ``serve:``
section of ``--config`` (a deploy YAML: ``parameters.deploy.serve`` or top-level
``deploy.serve``/``serve``), the JSON in ``$JUDE_SERVE_CONFIG`` (how the
Kubernetes Deployment tunes it), then the flags.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any


def _deploy_section(path: str | None) -> dict[str, Any]:
    """The ``deploy`` mapping of a pipeline YAML (``parameters.deploy``), or of a bare deploy YAML."""
    if not path:
        return {}
    from jude.config import ConfigFileError, read_run_config

    try:
        data = read_run_config(path)
    except ConfigFileError as e:
        raise SystemExit(f"jude: {e}") from e
    params = data.get("parameters") or {}
    section = params.get("deploy", data.get("deploy", data))
    return section if isinstance(section, dict) else {}


def _deploy_config(path: str | None, **overrides: Any):
    from pydantic import ValidationError

    from jude.config import DeployConfig

    section = dict(_deploy_section(path))
    section.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return DeployConfig.model_validate(section)
    except ValidationError as e:
        raise SystemExit(f"jude: invalid deploy config{' in ' + path if path else ''}:\n{e}") from e


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import ValidationError

    from jude.config import ServeConfig

    values: dict[str, Any] = dict(_deploy_section(args.config).get("serve") or {})
    env_json = os.environ.get("JUDE_SERVE_CONFIG")
    if env_json:
        try:
            values.update(json.loads(env_json))
        except json.JSONDecodeError as e:
            raise SystemExit(f"jude serve: $JUDE_SERVE_CONFIG is not valid JSON: {e}") from e
    for flag in ("host", "port", "grpc_port", "max_batch_size", "max_wait_ms"):
        v = getattr(args, flag, None)
        if v is not None:
            values[flag] = v
    try:
        cfg = ServeConfig.model_validate(values)
    except ValidationError as e:
        raise SystemExit(f"jude serve: invalid serve config:\n{e}") from e
    model_uri = args.model or os.environ.get("JUDE_MODEL_URI")
    if not model_uri:
        raise SystemExit("jude serve: give --model URI (or set JUDE_MODEL_URI)")

    import torch

    from jude.serving.app import create_app
    from jude.serving.engine import load_engine

    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    app = create_app(lambda: load_engine(model_uri, max_tokens=cfg.max_tokens, max_batch_tokens=cfg.max_batch_tokens,
                                         max_batch_size=cfg.max_batch_size, device=args.device), cfg)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=args.log_level, access_log=args.access_log,
                timeout_graceful_shutdown=30)
    return 0


def cmd_k8s_render(args: argparse.Namespace) -> int:
    from jude.deploy.kubernetes import ManifestError, render_manifests, validate_manifests, write_manifests

    cfg = _deploy_config(args.config, model_uri=args.model)
    manifests = render_manifests(cfg, model_version=args.model_version)
    try:
        validate_manifests(manifests, cfg.kubernetes.schema_version)
    except ManifestError as e:
        raise SystemExit(f"jude k8s render: {e}") from e
    for path in write_manifests(manifests, args.output):
        print(path)
    return 0


def cmd_deploy_local(args: argparse.Namespace) -> int:
    from jude.deploy.local import LocalDeployError, deploy_local

    cfg = _deploy_config(args.config, model_uri=args.model)
    try:
        record = deploy_local(cfg)
    except LocalDeployError as e:
        raise SystemExit(f"jude deploy local: {e}") from e
    print(record.model_dump_json(indent=2))
    return 0


def cmd_deploy_stop(args: argparse.Namespace) -> int:
    from jude.deploy.local import stop_local

    pid = stop_local(args.state_dir)
    print(f"stopped pid {pid}" if pid else "no running jude server recorded")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jude", description="jude: job/member embeddings, operational commands.")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the embedding server (HTTP, and gRPC with --grpc-port)")
    s.add_argument("--model", help="models:/jude-embedder@champion, models:/jude-embedder/3, runs:/..., "
                                   "a sentence-transformers directory, or 'minilm' (default: $JUDE_MODEL_URI)")
    s.add_argument("--host", default=None)
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--grpc-port", type=int, default=None, dest="grpc_port")
    s.add_argument("--max-batch-size", type=int, default=None, dest="max_batch_size")
    s.add_argument("--max-wait-ms", type=float, default=None, dest="max_wait_ms")
    s.add_argument("--config", help="a deploy YAML whose deploy.serve section tunes the server")
    s.add_argument("--device", default=None, help="torch device (cuda, cpu); default: cpu")
    s.add_argument("--log-level", default="info", dest="log_level")
    s.add_argument("--access-log", action="store_true", dest="access_log")
    s.set_defaults(func=cmd_serve)

    k = sub.add_parser("k8s", help="Kubernetes manifests").add_subparsers(dest="k8s_command", required=True)
    r = k.add_parser("render", help="render + validate the manifests and write them as YAML (touches no cluster)")
    r.add_argument("--config", default="configs/deploy_k8s.yaml")
    r.add_argument("--output", required=True, help="directory for the YAML files")
    r.add_argument("--model", default=None, help="override deploy.model_uri")
    r.add_argument("--model-version", default=None, dest="model_version")
    r.set_defaults(func=cmd_k8s_render)

    d = sub.add_parser("deploy", help="local deployments without ZenML").add_subparsers(dest="deploy_command",
                                                                                      required=True)
    dl = d.add_parser("local", help="start the server in the background, smoke-test it, replace the old one")
    dl.add_argument("--config", default=None)
    dl.add_argument("--model", default=None)
    dl.set_defaults(func=cmd_deploy_local)
    ds = d.add_parser("stop", help="stop the locally deployed server")
    ds.add_argument("--state-dir", default=".jude/deploy", dest="state_dir")
    ds.set_defaults(func=cmd_deploy_stop)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the server uses its own threads
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
