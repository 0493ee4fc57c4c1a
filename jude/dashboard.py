"""Start the two UIs on the project's stores and print their addresses.

    python -m jude.dashboard [--mlflow-port 5000] [--no-zenml]

- ZenML dashboard: ``zenml login --local`` (a local ZenML server on 127.0.0.1:8237)
- MLflow UI: ``mlflow ui`` on the project's tracking store (sqlite under .jude/)

Both run in the background; their logs go to .jude/logs/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jude.registry.mlflow_registry import resolve_tracking_uri, state_dir


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--no-zenml", action="store_true", help="only the MLflow UI")
    args = parser.parse_args(argv)
    logs = state_dir() / "logs"
    logs.mkdir(exist_ok=True)
    uri = resolve_tracking_uri()
    env = {**os.environ, "ZENML_ANALYTICS_OPT_IN": "false", "MLFLOW_ENABLE_TELEMETRY": "false"}
    mlflow_cmd = [_bin("mlflow"), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                  "--port", str(args.mlflow_port)]
    with open(logs / "mlflow-ui.log", "ab") as out:
        proc = subprocess.Popen(mlflow_cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    print(f"MLflow UI:        http://127.0.0.1:{args.mlflow_port}  (pid {proc.pid}, store {uri})")
    if not args.no_zenml:
        res = subprocess.run([_bin("zenml"), "login", "--local"], env=env, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"zenml login --local failed:\n{res.stdout}\n{res.stderr}", file=sys.stderr)
            return res.returncode
        print("ZenML dashboard:  http://127.0.0.1:8237  (zenml login --local; stop with zenml logout --local)")
    time.sleep(1)
    if proc.poll() is not None:
        print(f"the MLflow UI exited; see {logs / 'mlflow-ui.log'}", file=sys.stderr)
        return 1
    print(f"Stop the MLflow UI with: kill {proc.pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
