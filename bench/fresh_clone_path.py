"""The README's path, as a new user runs it, in a fresh clone with empty stores; one JSON of what happened.

    .venv/bin/python bench/fresh_clone_path.py --dest /tmp/fresh --out bench/results/fresh_clone/run.json

1. ``git clone`` this repository's commit (``--commit``, default ``HEAD``) into ``--dest`` (which must not exist);
2. empty stores: a new ZenML config folder inside the clone (``ZENML_CONFIG_PATH``), the clone's own
   ``.jude/`` (MLflow sqlite store, artifacts), and the online store's keys (``jude:*`` in Redis database 0)
   deleted first, so bootstrap starts from nothing;
3. the commands of the README, in order: ``make setup``, ``make train``, ``make deploy``, ``make monitor``,
   ``python run.py --pipeline bootstrap``, ``python run.py --pipeline ranker``; each one's exit code, wall seconds,
   the load average before and after, and its last output lines. It stops at the first that fails;
4. ``bench/export_run.py`` on the clone's MLflow store: the registered version's run (metrics, params, tags,
   aliases) and the gate's, monitor's, bootstrap's and ranker's runs.

Every figure in the README's training and ranker tables can be recomputed from the file this writes. The
timings are the machine's state as recorded (``loadavg_before`` of each command): a figure taken while other
jobs shared the cores says so there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from results_io import load_avg, utc_now, write_json  # noqa: E402

STEPS = [
    ("make setup", ["make", "setup"]),
    ("make train", ["make", "train"]),
    ("make deploy", ["make", "deploy"]),
    ("make monitor", ["make", "monitor"]),
    ("python run.py --pipeline bootstrap", [".venv/bin/python", "run.py", "--pipeline", "bootstrap"]),
    ("python run.py --pipeline ranker", [".venv/bin/python", "run.py", "--pipeline", "ranker"]),
]


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _empty_online_store(redis_url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    return len(keys)


def run_step(name: str, argv: list[str], cwd: Path, env: dict[str, str], log_dir: Path) -> dict:
    log = log_dir / (name.replace(" ", "_").replace("/", "_").replace("-", "") + ".log")
    before = load_avg()
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {name} (load {before[0]:.2f}) ...", flush=True)
    start = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.run(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-15:]
    print(f"    exit {rc} in {seconds:.0f} s; last line: {tail[-1] if tail else ''}", flush=True)
    return {
        "command": name,
        "exit_code": rc,
        "seconds": round(seconds, 1),
        "loadavg_before": before,
        "loadavg_after": load_avg(),
        "last_lines": tail,
        "log": str(log),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dest", required=True, help="where to clone (must not exist)")
    ap.add_argument("--out", required=True, help="the JSON to write (under bench/results/)")
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--online-prefix", default="jude:", help="the online store's key prefix to empty first")
    args = ap.parse_args()

    dest = Path(args.dest).resolve()
    if dest.exists():
        raise SystemExit(f"--dest {dest} exists: give a new folder, so the clone and its stores start empty")
    commit = _git("rev-parse", args.commit)
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True)
    subprocess.run(["git", "checkout", "--quiet", commit], cwd=dest, check=True)
    deleted = _empty_online_store(args.redis_url, args.online_prefix)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENML_", "MLFLOW_", "JUDE_", "VIRTUAL_ENV"))}
    env.update(
        ZENML_CONFIG_PATH=str(dest / ".zen_config"),
        ZENML_ANALYTICS_OPT_IN="false",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    log_dir = dest / ".fresh_clone_logs"
    log_dir.mkdir()
    record: dict = {
        "what": "the README's path in a fresh clone with empty stores (bench/fresh_clone_path.py)",
        "command": " ".join(shlex.quote(a) for a in sys.argv),
        "commit": commit,
        "working_tree_had_uncommitted_changes": dirty,
        "started_utc": utc_now(),
        "cpus": os.cpu_count(),
        "online_store_keys_deleted_first": deleted,
        "steps": [],
    }
    out = Path(args.out)
    for name, argv in STEPS:
        step = run_step(name, argv, dest, env, log_dir)
        record["steps"].append(step)
        write_json(out, record)
        if step["exit_code"] != 0:
            print(f"{name} failed (exit {step['exit_code']}): see {step['log']}", file=sys.stderr)
            break
    record["finished_utc"] = utc_now()

    tracking = f"sqlite:///{dest / '.jude' / 'mlflow.db'}"
    if (dest / ".jude" / "mlflow.db").exists():
        export = dest / ".fresh_clone_logs" / "export.json"
        rc = subprocess.run(
            [
                str(dest / ".venv" / "bin" / "python"),
                "bench/export_run.py",
                "--tracking-uri",
                tracking,
                "--version",
                "1",
                "--also-runs",
                "promotion",
                "monitor",
                "bootstrap_pipeline%",
                "ranker_pipeline%",
                "--out",
                str(export),
            ],
            cwd=dest,
            env=env,
        ).returncode
        record["mlflow"] = json.loads(export.read_text()) if rc == 0 else {"export_failed": rc}
    write_json(out, record)
    failed = [s["command"] for s in record["steps"] if s["exit_code"] != 0]
    print(f"wrote {out}; " + (f"FAILED: {failed[0]}" if failed else f"all {len(record['steps'])} commands exited 0"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
