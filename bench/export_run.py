"""Write an MLflow run's figures to a JSON file under bench/results/, so a README figure can be recomputed.

    .venv/bin/python bench/export_run.py --tracking-uri sqlite:///.jude/mlflow.db --model jude-embedder \\
        --version 1 --out bench/results/make_train/run.json

Takes a registered version (``--model``/``--version``: its run) or a run id (``--run-id``); writes the run's
metrics, params and tags, the registered version's aliases and tags (its ``promotion`` tag: why it is or is not
champion), and with ``--also-runs NAME ...`` the newest runs of those names in the same experiment (SQL
``LIKE`` patterns: the ``promotion`` run of the deploy gate, ``monitor``, ``bootstrap_pipeline%``,
``ranker_pipeline%``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mlflow.tracking import MlflowClient


def run_record(client: MlflowClient, run_id: str) -> dict:
    run = client.get_run(run_id)
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "start_time_ms": run.info.start_time,
        "end_time_ms": run.info.end_time,
        "metrics": dict(sorted(run.data.metrics.items())),
        "params": dict(sorted(run.data.params.items())),
        "tags": {k: v for k, v in sorted(run.data.tags.items()) if not k.startswith("mlflow.log-model")},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracking-uri", required=True)
    ap.add_argument("--model", default="jude-embedder")
    ap.add_argument("--version", help="a registered version: export its run")
    ap.add_argument("--run-id", help="or a run id")
    ap.add_argument(
        "--also-runs", nargs="*", default=[], help="newest run of each of these names (SQL LIKE: ranker_pipeline%%)"
    )
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    client = MlflowClient(tracking_uri=args.tracking_uri, registry_uri=args.tracking_uri)
    out: dict = {"tracking_uri": args.tracking_uri}
    run_id = args.run_id
    if args.version:
        mv = client.get_model_version(args.model, args.version)
        aliases = dict(getattr(client.get_registered_model(args.model), "aliases", None) or {})
        out["registered"] = {
            "name": args.model,
            "version": str(mv.version),
            "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
            "tags": dict(sorted((mv.tags or {}).items())),
        }
        run_id = run_id or mv.run_id or (mv.tags or {}).get("run_id")
    if not run_id:
        raise SystemExit("give --version or --run-id")
    out["run"] = run_record(client, run_id)
    experiment = client.get_run(run_id).info.experiment_id
    for name in args.also_runs:
        found = client.search_runs([experiment], f"attributes.run_name LIKE '{name}'", order_by=["start_time DESC"])
        out.setdefault("runs", {})[name] = run_record(client, found[0].info.run_id) if found else None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, sort_keys=False, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
