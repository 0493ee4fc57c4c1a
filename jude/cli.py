"""The `jude` console script (the serving container's entrypoint).

    jude serve --model URI [--host H] [--port N] [--grpc-port N] [--config F]
    jude k8s render --config configs/deploy_k8s.yaml --output DIR [--model-version V]
    jude deploy local [--config F] [--model URI]      (no ZenML needed)
    jude deploy stop [--state-dir .jude/deploy]
    jude train-hf --config configs/train_gpu_7b.yaml [--out DIR] [--max-steps N] [--base-model PATH] [--evaluate]
    jude nearline run --config configs/nearline.yaml [--no-index-feed]
    jude nearline publish [--config F] (FILE... | --synthetic [--events N] [--world grounded] | --event JSON)
    jude nearline get ENTITY_TYPE ID... [--config F] [--version V] [--vectors]
    jude team up|down|status|join [--config configs/team.yaml]   (docs/team.md; JUDE_TEAM=1 uses the team servers)
    jude recommend MEMBER_ID [--url U] [--k N] [--remote|--on-site] [--location L] [--exclude ID]... [--exact]

``serve`` takes its ServeConfig from (lowest first) the defaults, the ``serve:``
section of ``--config`` (a deploy YAML: ``parameters.deploy.serve`` or top-level
``deploy.serve``/``serve``), the JSON in ``$JUDE_SERVE_CONFIG`` (how the
Kubernetes Deployment tunes it), then the flags.

``train-hf`` is the fine-tune through the Hugging Face Trainer that torchrun and
the deepspeed launcher start on every rank (docs/gpu.md)::

    torchrun --nproc-per-node 8 -m jude.cli train-hf --config configs/train_gpu_7b.yaml
    deepspeed --num_gpus 8 --module jude.cli train-hf --config configs/train_gpu_7b.yaml

Every command imports what it needs when it runs, so the serving container never
loads the training code.
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
    for flag in ("host", "port", "grpc_port", "max_batch_size", "max_wait_ms", "backend"):
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

    # Before torch loads OpenMP: its threads must sleep, not spin, while they wait. Spinning threads take
    # the cores the event loop and the other forward threads need; under CPU contention a 2-thread forward
    # ran 5x slower with spinning (docs/serving.md, "Threads").
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from uvicorn.config import STARTUP_FAILURE

    from jude.serving.app import create_app, uvicorn_config
    from jude.serving.engine import load_engine

    server: uvicorn.Server | None = None

    def stop_serving(reason: str) -> None:
        """The model failed to load (the service has logged why): stop, and exit non-zero below."""
        server.should_exit = True

    app = create_app(
        lambda: load_engine(
            model_uri,
            max_tokens=cfg.max_tokens,
            max_batch_tokens=cfg.max_batch_tokens,
            max_batch_size=cfg.max_batch_size,
            device=args.device,
            backend=cfg.backend,
            max_forward_tokens=cfg.max_forward_tokens,
            threads=cfg.threads,
            dtype=cfg.dtype,
            concurrent_forwards=cfg.batches_in_flight,
        ),
        cfg,
        on_load_failure=stop_serving,
        retriever=_retriever(args),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = uvicorn.Server(uvicorn_config(app, cfg, log_level=args.log_level, access_log=args.access_log))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if app.state.service.load_error:
        return 1  # so a supervisor (Kubernetes, jude deploy local) restarts or reports it
    if not server.started:
        return STARTUP_FAILURE  # could not bind the port, or the lifespan failed (uvicorn.run's exit status)
    return 0


def _retriever(args: argparse.Namespace):
    """``jude serve --recommend``: the job index follower over the online store (``retrieval:`` of --config,
    then ``$JUDE_RETRIEVAL_CONFIG`` JSON, then --redis-url / --online-prefix); None without --recommend."""
    from pydantic import ValidationError

    from jude.config import RetrievalConfig

    values: dict[str, Any] = dict(_deploy_section(args.config).get("retrieval") or {})
    if os.environ.get("JUDE_RETRIEVAL_CONFIG"):
        try:
            values.update(json.loads(os.environ["JUDE_RETRIEVAL_CONFIG"]))
        except json.JSONDecodeError as e:
            raise SystemExit(f"jude serve: $JUDE_RETRIEVAL_CONFIG is not valid JSON: {e}") from e
    if args.recommend:
        values["enabled"] = True
    for flag, key in (("redis_url", "redis_url"), ("online_prefix", "prefix")):
        if getattr(args, flag, None) is not None:
            values[key] = getattr(args, flag)
    try:
        rcfg = RetrievalConfig.model_validate(values)
    except ValidationError as e:
        raise SystemExit(f"jude serve: invalid retrieval config:\n{e}") from e
    if not rcfg.enabled:
        return None
    import redis

    from jude.retrieval.service import Retriever
    from jude.stores.online import RedisOnlineStore

    client = redis.Redis.from_url(rcfg.redis_url, socket_connect_timeout=5)
    return Retriever(RedisOnlineStore(client, prefix=rcfg.prefix), rcfg)


def cmd_recommend(args: argparse.Namespace) -> int:
    """POST /v1/recommend on a running `jude serve --recommend` and print the jobs (JSON with --json)."""
    import httpx

    filters: dict[str, Any] = {"exclude_job_ids": args.exclude or []}
    if args.remote is not None:
        filters["remote"] = args.remote
    if args.location:
        filters["location"] = args.location
    body: dict[str, Any] = {"member_id": args.member_id, "filters": filters, "exact": args.exact}
    if args.k is not None:
        body["k"] = args.k
    headers = {}
    if os.environ.get("JUDE_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['JUDE_API_KEY']}"
    try:
        r = httpx.post(f"{args.url.rstrip('/')}/v1/recommend", json=body, headers=headers, timeout=args.timeout)
    except httpx.HTTPError as e:
        raise SystemExit(f"jude recommend: {args.url} did not answer: {e}") from e
    data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if r.status_code != 200:
        message = (data.get("error") or {}).get("message") or r.text
        raise SystemExit(f"jude recommend: {r.status_code}: {message}")
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"embedding version {data['embedding_version']}, index watermark {data['watermark']} ({data['index']})")
    for rank, job in enumerate(data["data"], 1):
        print(f"{rank:3d}  {job['job_id']}  {job['score']:.4f}")
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


def cmd_train_hf(args: argparse.Namespace) -> int:
    """Data, labels, pairs (built once per node, cached next to ``--out``), then the HF Trainer fine-tune."""
    from jude.env import apply_offline_env

    apply_offline_env()  # before transformers is imported
    from pathlib import Path

    from jude.config import check_hf_losses
    from jude.training.data import TEST_SET_FILE, cached_training_data
    from jude.training.hf_trainer import load_deepspeed_config, load_pipeline_config, train_with_hf_trainer

    cfg, scale = load_pipeline_config(args.config)
    check_hf_losses(cfg.loss)  # before the data step calls the judge
    if args.base_model:
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"base_model": args.base_model})})
    train_cfg = cfg.train.model_copy(update={"max_steps": args.max_steps}) if args.max_steps else cfg.train
    if scale.deepspeed:
        load_deepspeed_config(scale.deepspeed)
    out = Path(args.out)
    data_dir = out.parent / "data"
    data = cached_training_data(cfg, data_dir)
    result = train_with_hf_trainer(
        data["pairs"],
        data["jobs"],
        data["members"],
        cfg.model,
        cfg.lora,
        train_cfg,
        out,
        deepspeed_config=scale.deepspeed,
        loss_cfg=cfg.loss,
        scale=scale,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {"model_dir": str(result.model_dir), **result.stats}
        if args.evaluate:
            from jude.evaluation.retrieval import EvalSet, evaluate_embedder
            from jude.modeling.embedder import Embedder

            test = EvalSet.from_dict(json.loads((data_dir / TEST_SET_FILE).read_text()))
            summary["test"] = evaluate_embedder(Embedder.load(out), test, show_progress=True)
        print(json.dumps(summary, indent=2, default=str))
    return 0


def _nearline_config(args: argparse.Namespace):
    from jude.nearline.worker import load_config

    overrides = {"index_feed": getattr(args, "index_feed", None)}  # `nearline run`'s flag; None: not given
    try:
        return load_config(getattr(args, "config", None), overrides=overrides)
    except ValueError as e:
        raise SystemExit(f"jude nearline: {e}") from e


def cmd_nearline_run(args: argparse.Namespace) -> int:
    """The nearline worker until SIGINT/SIGTERM (the first drains the batch in flight)."""
    from jude.nearline.worker import run

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = _nearline_config(args)
    try:
        return run(cfg)
    except ValueError as e:  # a target whose embedding version cannot be derived, a bad model URI
        raise SystemExit(f"jude nearline run: {e}") from e


def cmd_nearline_publish(args: argparse.Namespace) -> int:
    """Change events from files, the command line or the synthetic marketplace onto the change streams."""
    from jude.nearline.publish import open_transport, read_events, synthetic_events
    from jude.nearline.sources import publish_events

    cfg = _nearline_config(args)
    events: list = []
    try:
        for path in args.files:
            events += read_events(path)
        for i, text in enumerate(args.event or []):
            try:
                events.append(json.loads(text))
            except json.JSONDecodeError as e:
                raise ValueError(f"--event {i + 1} is not JSON: {e.msg}") from None
        if args.synthetic:
            events += synthetic_events(n_events=args.events, seed=args.seed, world=args.world)[0]
        if not events:
            raise ValueError("nothing to publish: give event files, --event JSON or --synthetic")
        n = publish_events(events, open_transport(cfg))
    except ValueError as e:
        raise SystemExit(f"jude nearline publish: {e}") from e
    print(f"published {n} change events to {cfg.source}")
    return 0


def cmd_nearline_get(args: argparse.Namespace) -> int:
    """Print the online record of each id (JSON lines), from the active version unless --version."""
    import redis

    from jude.stores.online import RedisOnlineStore

    cfg = _nearline_config(args)
    client = redis.Redis.from_url(cfg.online_redis_url or cfg.redis_url, socket_connect_timeout=5)
    store = RedisOnlineStore(client, prefix=cfg.online_prefix)
    try:
        got = store.get_embeddings(args.entity_type, args.ids, version=args.version)
    except (LookupError, ValueError) as e:
        raise SystemExit(f"jude nearline get: {e}") from e
    for k, row in enumerate(got.meta.to_dict("records")):
        out = {
            "entity_type": args.entity_type,
            "entity_id": row["entity_id"],
            "found": bool(row["found"]),
            "embedding_version": row["embedding_version"],
        }
        if row["found"]:
            vec = got.vectors[k]
            out |= {
                "content_hash": row["content_hash"],
                "event_time_ms": int(row["event_time_ms"]),
                "model_version": row["model_version"],
                "dimension": int(vec.shape[0]),
                "vector": [round(float(x), 6) for x in (vec if args.vectors else vec[:4])],
            }
        print(json.dumps(out))
    return 0


def cmd_registry_promote(args: argparse.Namespace) -> int:
    """Make a version champion by hand; who and why go into its ``promotion`` tag (jude.registry.champion)."""
    from jude.registry.champion import promote_by_hand
    from jude.registry.mlflow_registry import configure

    uri = configure(args.tracking_uri)
    try:
        tag = promote_by_hand(args.model, args.version, args.reason)
    except ValueError as e:
        raise SystemExit(f"jude registry promote: {e}") from e
    print(f"{args.model} v{args.version} at {uri}: {tag}")
    print("the ZenML Model stages follow with `make sync-stages` (every pipeline also syncs them by itself)")
    return 0


def cmd_registry_status(args: argparse.Namespace) -> int:
    """The newest versions with their aliases and promotion tags."""
    from mlflow.tracking import MlflowClient

    from jude.registry.champion import describe_versions
    from jude.registry.mlflow_registry import configure

    uri = configure(args.tracking_uri)
    print(f"{uri}: {describe_versions(MlflowClient(), args.model, limit=args.limit)}")
    return 0


def _add_local_rank(parser: argparse.ArgumentParser) -> None:
    """The deepspeed launcher adds ``--local_rank=N`` right after the module name; the rank is read from
    ``$LOCAL_RANK`` instead, so the flag is accepted (before or after the subcommand) and ignored."""
    parser.add_argument("--local_rank", "--local-rank", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jude", description="jude: job/member embeddings, operational commands.")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the embedding server (HTTP, and gRPC with --grpc-port)")
    s.add_argument(
        "--model",
        help="models:/jude-embedder@champion, models:/jude-embedder/3, runs:/..., "
        "a sentence-transformers directory, or 'minilm' (default: $JUDE_MODEL_URI)",
    )
    s.add_argument("--host", default=None)
    s.add_argument("--port", type=int, default=None)
    s.add_argument("--grpc-port", type=int, default=None, dest="grpc_port")
    s.add_argument("--max-batch-size", type=int, default=None, dest="max_batch_size")
    s.add_argument("--max-wait-ms", type=float, default=None, dest="max_wait_ms")
    s.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default=None,
        help="forward pass: auto (default: ONNX Runtime on CPU where exact, torch on GPU), torch or onnx",
    )
    s.add_argument("--config", help="a deploy YAML whose deploy.serve section tunes the server")
    s.add_argument("--device", default=None, help="torch device (cuda, cpu); default: cpu")
    s.add_argument("--log-level", default="info", dest="log_level")
    s.add_argument("--access-log", action="store_true", dest="access_log")
    s.add_argument("--recommend", action="store_true", help="serve POST /v1/recommend (retrieval.enabled)")
    s.add_argument("--redis-url", default=None, dest="redis_url", help="retrieval: the online store's Redis")
    s.add_argument("--online-prefix", default=None, dest="online_prefix", help="retrieval: its key prefix")
    s.set_defaults(func=cmd_serve)

    rc = sub.add_parser("recommend", help="top-k jobs for a member from a running `jude serve --recommend`")
    rc.add_argument("member_id")
    rc.add_argument("--url", default=os.environ.get("JUDE_URL", "http://127.0.0.1:8080"), help="the server")
    rc.add_argument("--k", type=int, default=None)
    rc.add_argument("--remote", action="store_const", const=True, default=None, help="only remote jobs")
    rc.add_argument("--on-site", action="store_const", const=False, dest="remote", help="only on-site jobs")
    rc.add_argument("--location", default=None)
    rc.add_argument("--exclude", action="append", help="a job id never to return (repeatable)")
    rc.add_argument("--exact", action="store_true", help="search the exact index (the oracle)")
    rc.add_argument("--json", action="store_true", help="print the response body")
    rc.add_argument("--timeout", type=float, default=10.0)
    rc.set_defaults(func=cmd_recommend)

    k = sub.add_parser("k8s", help="Kubernetes manifests").add_subparsers(dest="k8s_command", required=True)
    r = k.add_parser("render", help="render + validate the manifests and write them as YAML (touches no cluster)")
    r.add_argument("--config", default="configs/deploy_k8s.yaml")
    r.add_argument("--output", required=True, help="directory for the YAML files")
    r.add_argument("--model", default=None, help="override deploy.model_uri")
    r.add_argument("--model-version", default=None, dest="model_version")
    r.set_defaults(func=cmd_k8s_render)

    d = sub.add_parser("deploy", help="local deployments without ZenML").add_subparsers(
        dest="deploy_command", required=True
    )
    dl = d.add_parser("local", help="start the server in the background, smoke-test it, replace the old one")
    dl.add_argument("--config", default=None)
    dl.add_argument("--model", default=None)
    dl.set_defaults(func=cmd_deploy_local)
    ds = d.add_parser("stop", help="stop the locally deployed server")
    ds.add_argument("--state-dir", default=".jude/deploy", dest="state_dir")
    ds.set_defaults(func=cmd_deploy_stop)

    t = sub.add_parser(
        "train-hf",
        help="fine-tune through the Hugging Face Trainer (torchrun, DeepSpeed): data, labels, pairs, train",
    )
    t.add_argument(
        "--config", required=True, help="a train YAML (its parameters: section), e.g. configs/train_gpu_7b.yaml"
    )
    t.add_argument("--out", default=".jude/hf-train/model", help="where the trained model directory goes")
    t.add_argument(
        "--max-steps", type=int, default=None, dest="max_steps", help="override train.max_steps (smoke runs)"
    )
    t.add_argument("--base-model", default=None, dest="base_model", help="override model.base_model (a local path)")
    t.add_argument("--evaluate", action="store_true", help="rank 0: retrieval metrics on the test split")
    _add_local_rank(t)
    t.set_defaults(func=cmd_train_hf)

    n = sub.add_parser("nearline", help="the nearline embedding updater").add_subparsers(
        dest="nearline_command", required=True
    )
    nr = n.add_parser("run", help="run a worker: change streams -> embeddings -> online store + offline history")
    nr.add_argument("--config", default=None, help="a YAML with a nearline: section (configs/nearline.yaml)")
    nr.add_argument("--log-level", default="info", dest="log_level")
    nr.add_argument(
        "--index-feed",
        action=argparse.BooleanOptionalAction,
        default=None,
        dest="index_feed",
        help="feed applied job writes to the /v1/recommend index (nearline.index_feed; default: the config's, on)",
    )
    nr.set_defaults(func=cmd_nearline_run)
    npub = n.add_parser("publish", help="put change events on the streams the worker reads")
    npub.add_argument("files", nargs="*", help="event files: .jsonl, .json, .parquet or .csv")
    npub.add_argument("--config", default=None, help="where to publish (source, addresses, stream_prefix)")
    npub.add_argument("--event", action="append", help="one change event as JSON (repeatable)")
    npub.add_argument("--synthetic", action="store_true", help="the synthetic marketplace's change stream")
    npub.add_argument("--events", type=int, default=24_000, help="--synthetic: events in the stream")
    npub.add_argument("--seed", type=int, default=0, help="--synthetic: seed of the marketplace and the stream")
    npub.add_argument(
        "--world",
        choices=("synthetic", "grounded"),
        default="synthetic",
        help="--synthetic: the small world's marketplace or the grounded world's (data.synthetic.world)",
    )
    npub.set_defaults(func=cmd_nearline_publish)
    ng = n.add_parser("get", help="read entities from the online store")
    ng.add_argument("entity_type", help="job, profile or resume")
    ng.add_argument("ids", nargs="+")
    ng.add_argument("--config", default=None, help="where the online store is (online_redis_url, online_prefix)")
    ng.add_argument("--version", default=None, help="an embedding version; default: the active one")
    ng.add_argument("--vectors", action="store_true", help="print whole vectors (default: the first 4 values)")
    ng.set_defaults(func=cmd_nearline_get)
    rg = sub.add_parser("registry", help="the MLflow registry: versions, promotion by hand").add_subparsers(
        dest="registry_command", required=True
    )
    rp = rg.add_parser("promote", help="make VERSION the champion by hand (the former champion becomes 'previous')")
    rp.add_argument("version", help="the registered version number")
    rp.add_argument("--reason", required=True, help="why; written with who into the version's promotion tag")
    rs = rg.add_parser("status", help="the newest versions, their aliases and promotion tags")
    rs.add_argument("--limit", type=int, default=5)
    for p in (rp, rs):
        p.add_argument("--model", default="jude-embedder", help="the registered model name")
        p.add_argument("--tracking-uri", default=None, help="default: $MLFLOW_TRACKING_URI, else .jude/mlflow.db")
    rp.set_defaults(func=cmd_registry_promote)
    rs.set_defaults(func=cmd_registry_status)
    tm = sub.add_parser("team", help="team servers: MLflow on PostgreSQL, ZenML on MariaDB (up|down|status|join)")
    tm.add_argument("team_args", nargs=argparse.REMAINDER, help="up | down | status | join [--config F]")
    tm.set_defaults(func=cmd_team)
    _add_local_rank(parser)
    return parser


def cmd_team(args: argparse.Namespace) -> int:
    from jude.team import main as team_main

    return team_main(args.team_args)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the server uses its own threads
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["team"]:  # jude team up|down|status|join [--config F]: jude/team.py parses the rest
        return cmd_team(argparse.Namespace(team_args=argv[1:]))
    if os.environ.get("JUDE_TEAM", "").lower() not in ("", "0", "false", "no"):
        from jude.team import apply_team_env

        apply_team_env()  # the team's tracking server (configs/team.yaml) for models:/ URIs and the registry
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
