"""Team mode end to end: two smoke trainings at once against the team servers, then monitor, bootstrap and ranker.

    python scripts/team_concurrent_check.py [--deadline 07:50] [--out bench/results/team/concurrent_<date>.json]

In order (docs/team.md, "Concurrency"):

1. ``python -m jude.team up`` (what ``make team-up`` runs): both servers started or reused;
2. two ``JUDE_TEAM=1 python run.py --pipeline train --config configs/train_smoke.yaml`` started together;
3. the registry as the team's MLflow server has it: the versions the two runs registered (one each, both
   complete: a run, a source, the ``promotion`` tag) and the aliases;
4. ``monitor`` (configs/monitor.yaml), ``bootstrap`` (configs/bootstrap.yaml) and ``ranker``
   (configs/ranker_smoke.yaml) against the team servers, one after the other, on the champion.

Every command's line, exit code, seconds, the last lines of its log and the load averages at its start and end
(and sampled while it ran) go into the results file, written again after every step, so a run stopped half-way
leaves what it did. ``--deadline HH:MM`` (UTC): no command starts after it, and one still running then is
stopped with SIGINT (run.py marks its runs failed) and recorded as stopped. Nothing is stopped at the end: the
team servers keep running (``make team-down``).

The timings are those of whatever machine runs this, with whatever else runs on it: the file records the load
averages and the CPU count beside them, and says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "jude-embedder"
NOTE = (
    "Timings on a shared machine: {cpus} CPUs shared with other jobs (other sessions' builds and tests ran at the "
    "same time; see the load averages of each command). They say that the commands complete against the team "
    "servers, not how fast they run on a quiet machine."
)
PIPELINES = (  # after the two trainings, one after the other, on the champion they left
    ("monitor", "configs/monitor.yaml"),
    ("bootstrap", "configs/bootstrap.yaml"),
    ("ranker", "configs/ranker_smoke.yaml"),
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stamp(t: dt.datetime | None = None) -> str:
    return (t or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default_sigint() -> None:
    """In the child: SIGINT back to its default. A shell's background job (`nohup … &`, CI) starts with SIGINT
    ignored, and a child inherits that, so the deadline's SIGINT would do nothing and only SIGKILL would stop it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class LoadSampler:
    """The 1-minute load average every ``every_s`` seconds while a command runs."""

    def __init__(self, every_s: float = 15.0):
        self.every_s, self.samples, self._stop = every_s, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every_s)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"min": round(min(s), 2), "mean": round(sum(s) / len(s), 2), "max": round(max(s), 2), "n": len(s)}


ANSI = re.compile(r"\x1b\[[0-9;]*m")  # ZenML's and MLflow's colours


def tail(path: Path, n: int = 6) -> list[str]:
    """The last ``n`` non-empty lines of a log, without colour codes."""
    if not path.exists():
        return []
    lines = [ANSI.sub("", ln).rstrip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return [ln[:400] for ln in lines[-n:]]


def outcome_line(path: Path) -> str | None:
    """The train run's last word (``jude: registered ...`` / ``jude: NOTHING REGISTERED ...``), if it printed it."""
    if not path.exists():
        return None
    found = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.startswith("jude: ")]
    return found[-1] if found else None


class Runner:
    """Starts the commands, stops what runs past the deadline, records each one."""

    def __init__(self, logs: Path, deadline: dt.datetime | None, env: dict[str, str]):
        self.logs, self.deadline, self.env = logs, deadline, env

    def past_deadline(self) -> bool:
        return self.deadline is not None and now() >= self.deadline

    def run(self, commands: dict[str, list[str]], team: bool = True) -> list[dict[str, Any]]:
        """Start ``commands`` (name -> argv) together; wait for all of them. One record per command."""
        if self.past_deadline():
            return [{"name": n, "command": _line(c, team), "skipped": "past the deadline"} for n, c in commands.items()]
        env = {**self.env, **({"JUDE_TEAM": "1"} if team else {})}
        started, procs = {}, {}
        with LoadSampler() as sampler:
            for name, argv in commands.items():
                log = self.logs / f"{name}.log"
                started[name] = (now(), time.monotonic(), loadavg(), log)
                with open(log, "wb") as out:
                    procs[name] = subprocess.Popen(
                        argv,
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        preexec_fn=_default_sigint,
                    )
                print(f"[{stamp()}] started {name} (pid {procs[name].pid}): {_line(argv, team)}", flush=True)
            ended: dict[str, tuple[float, list[float], bool]] = {}
            stopped = False
            while len(ended) < len(procs):
                for name, proc in procs.items():
                    if name not in ended and proc.poll() is not None:
                        ended[name] = (time.monotonic(), loadavg(), stopped)
                        secs = ended[name][0] - started[name][1]
                        print(f"[{stamp()}] {name} exited {proc.returncode} after {secs:.0f} s", flush=True)
                if not stopped and self.past_deadline():
                    stopped = True
                    for name, proc in procs.items():
                        if proc.poll() is None:
                            print(f"[{stamp()}] deadline: SIGINT to {name} (pid {proc.pid})", flush=True)
                            os.killpg(proc.pid, signal.SIGINT)
                    grace = time.monotonic() + 120
                    while any(p.poll() is None for p in procs.values()) and time.monotonic() < grace:
                        time.sleep(1)
                    for proc in procs.values():
                        if proc.poll() is None:
                            os.killpg(proc.pid, signal.SIGKILL)
                time.sleep(1)
        records = []
        for name, argv in commands.items():
            t0, m0, load0, log = started[name]
            m1, load1, was_stopped = ended[name]
            rec = {
                "name": name,
                "command": _line(argv, team),
                "started": stamp(t0),
                "seconds": round(m1 - m0, 1),
                "exit_code": procs[name].returncode,
                "load_average_start": load0,
                "load_average_end": load1,
                "load_1min_while_running": sampler.summary(),
                "log": str(log.relative_to(ROOT)) if log.is_relative_to(ROOT) else str(log),
                "log_tail": tail(log),
            }
            if was_stopped:
                rec["stopped"] = "still running at the deadline: SIGINT (run.py marks its runs failed)"
            if "--pipeline" in argv and argv[argv.index("--pipeline") + 1] == "train":
                rec["outcome"] = outcome_line(log)
            records.append(rec)
        return records


def _line(argv: list[str], team: bool) -> str:
    shown = [os.path.relpath(a, ROOT) if os.path.isabs(a) and a.startswith(str(ROOT)) else a for a in argv]
    return ("JUDE_TEAM=1 " if team else "") + " ".join(shown)


def registry(tracking_uri: str) -> dict[str, Any]:
    """What the team's MLflow server holds for the model: each version (run, status, source, promotion tag) and
    the aliases. Read in a subprocess, so this script never imports mlflow (a stuck import cannot hang it)."""
    code = f"""
import json
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
c = MlflowClient({tracking_uri!r})
try:
    aliases = dict(c.get_registered_model({MODEL!r}).aliases or {{}})
except MlflowException:
    aliases = {{}}
versions = []
for mv in sorted(c.search_model_versions("name='{MODEL}'"), key=lambda v: int(v.version)):
    run = c.get_run(mv.run_id) if mv.run_id else None
    versions.append({{
        "version": str(mv.version), "status": mv.status, "created_ms": mv.creation_timestamp, "run_id": mv.run_id,
        "run_status": run.info.status if run else None, "run_name": run.info.run_name if run else None,
        "source": mv.source, "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
        "promotion": (mv.tags or {{}}).get("promotion"), "zenml_run": (mv.tags or {{}}).get("zenml_run"),
    }})
print(json.dumps({{"aliases": {{k: str(v) for k, v in sorted(aliases.items())}}, "versions": versions}}))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def check_trainings(before: dict[str, Any], after: dict[str, Any], trains: list[dict[str, Any]]) -> dict[str, Any]:
    """Did the two runs register two versions, both complete, with the aliases one champion and one challenger?"""
    known = {v["version"] for v in before.get("versions", [])}
    new = [v for v in after.get("versions", []) if v["version"] not in known]
    complete = [v for v in new if v["status"] == "READY" and v["run_status"] == "FINISHED" and v["promotion"]]
    aliases = after.get("aliases", {})
    registered = {m.group(1) for t in trains if (m := re.search(r"registered \S+ v(\d+)", t.get("outcome") or ""))}
    return {
        "both_exit_0": all(t.get("exit_code") == 0 for t in trains),
        "new_versions": [v["version"] for v in new],
        "two_new_versions": len(new) == 2,
        "both_complete": len(complete) == len(new) == 2,
        "versions_named_by_the_runs": sorted(registered, key=int),
        "each_run_its_own_version": registered == {v["version"] for v in new} and len(registered) == 2,
        "champion": aliases.get("champion"),
        "challenger": aliases.get("challenger"),
        "one_champion": "champion" in aliases,
    }


def write(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)


def _deadline(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    h, m = (int(x) for x in value.split(":"))
    d = now().replace(hour=h, minute=m, second=0, microsecond=0)
    return d if d > now() else d + dt.timedelta(days=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    parser.add_argument("--train-config", default="configs/train_smoke.yaml")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/team/concurrent_<date>.json")
    parser.add_argument("--logs", type=Path, default=None, help="default .jude/team/check/<time>/")
    parser.add_argument(
        "--deadline", default=None, help="HH:MM UTC: nothing starts later; a command running then stops"
    )
    parser.add_argument("--skip-up", action="store_true", help="the team servers already run (no `team up`)")
    parser.add_argument("--no-pipelines", action="store_true", help="only the two trainings")
    args = parser.parse_args(argv)

    started = now()
    out = args.out or ROOT / "bench" / "results" / "team" / f"concurrent_{started:%Y-%m-%d}.json"
    logs = args.logs or ROOT / ".jude" / "team" / "check" / f"{started:%Y%m%dT%H%M%SZ}"
    logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "ZENML_CONFIG_PATH")}
    env.setdefault("PYTHONUNBUFFERED", "1")
    runner = Runner(logs, _deadline(args.deadline), env)
    py = args.python

    sys.path.insert(0, str(ROOT))
    from jude.team import load_team_config

    team = load_team_config()
    tracking = team.mlflow.client_url
    result: dict[str, Any] = {
        "what": "two smoke trainings at once against the team servers, then monitor, bootstrap and ranker",
        "script": "scripts/team_concurrent_check.py",
        "started": stamp(started),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": loadavg(),
        },
        "note": NOTE.format(cpus=os.cpu_count()),
        "team": {"mlflow": tracking, "zenml": team.zenml.client_url},
        "logs_note": "each command's whole log stays on the machine that ran it (the log paths, under the ignored "
        ".jude/); log_tail: its last lines, colour codes removed",
        "git": _git(),
        "steps": [],
    }
    write(out, result)

    def step(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result["steps"].extend(records)
        write(out, result)
        return records

    if not args.skip_up:
        up = step(runner.run({"team_up": [py, "-m", "jude.team", "up"]}, team=False))
        if up[0].get("exit_code") != 0:
            result["finished"], result["verdict"] = stamp(), "team up failed: nothing else was run"
            write(out, result)
            return 1
    result["registry_before"] = registry(tracking)
    write(out, result)
    train = [py, "run.py", "--pipeline", "train", "--config", args.train_config]
    trains = step(runner.run({"train_a": train, "train_b": list(train)}))
    result["registry_after_trainings"] = registry(tracking)
    result["trainings"] = check_trainings(result["registry_before"], result["registry_after_trainings"], trains)
    write(out, result)
    if not args.no_pipelines:
        for name, config in PIPELINES:
            step(runner.run({name: [py, "run.py", "--pipeline", name, "--config", config]}))
    result["registry_at_end"] = registry(tracking)
    result["finished"] = stamp()
    result["load_average_at_end"] = loadavg()
    ran = [s for s in result["steps"] if "exit_code" in s]
    failed = [s["name"] for s in ran if s["exit_code"] != 0]
    skipped = [s["name"] for s in result["steps"] if "skipped" in s]
    t = result["trainings"]
    ok_trainings = t["both_exit_0"] and t["two_new_versions"] and t["both_complete"] and t["each_run_its_own_version"]
    result["verdict"] = (
        f"trainings: {'two versions registered, both complete' if ok_trainings else 'NOT as expected'}"
        f" (new {t['new_versions']}, champion v{t['champion']}, challenger v{t['challenger']}); "
        f"failed: {failed or 'none'}; skipped: {skipped or 'none'}"
    )
    write(out, result)
    print(f"[{stamp()}] {result['verdict']}\nresults: {out}", flush=True)
    return 0 if not failed and not skipped and ok_trainings else 1


def _git() -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"head": git("rev-parse", "HEAD"), "uncommitted_files": len(git("status", "--porcelain").splitlines())}


if __name__ == "__main__":
    sys.exit(main())
