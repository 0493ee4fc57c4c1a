"""Start the two UIs on the project's stores, check that they answer, and print where to look.

    python -m jude.dashboard [--mlflow-port 5000] [--zenml-port 8237] [--no-zenml] [--timeout 120]
    python -m jude.dashboard --stop            (make dashboard-stop)
    JUDE_TEAM=1 python -m jude.dashboard       (JUDE_TEAM=1 make dashboard: the team servers' UIs; starts nothing)

- MLflow UI: ``mlflow ui`` on the project's tracking store (sqlite under .jude/), in the background. Its pid,
  port and store are kept in .jude/dashboard.json, so a second start reuses it and ``--stop`` ends it.
- ZenML dashboard: ``zenml login --local`` (ZenML's local server on 127.0.0.1:8237); ``--stop`` runs
  ``zenml logout --local``.

Team mode (``JUDE_TEAM=1``, as for ``run.py``; or ``--team``): the team's servers are the dashboards. Nothing is
started; both servers (``configs/team.yaml``, started by ``make team-up``) are checked, and their URLs are printed
with the same links, read from the team's MLflow server and the ZenML server the project's team client is logged
in to. A team server that does not answer is an error naming its URL (exit 1). ``--stop`` leaves the team servers
running (``make team-down`` stops them).

Both ports are checked before anything starts. A port held by another program is an error that names the
port and the program (exit 2), never a silent success: with another MLflow on port 5000 the user would be
looking at someone else's store. A UI counts as started only once it answers HTTP. Logs go to .jude/logs/.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from jude.config import RegistryConfig
from jude.env import OFFLINE_ENV
from jude.procs import HOST, PortHolder, _alive, _command_line, _kill_group, _same_group, port_holder, port_in_use  # noqa: F401
from jude.registry.mlflow_registry import resolve_tracking_uri, state_dir

MLFLOW_PORT = 5000
ZENML_PORT = 8237  # ZenML's default for `zenml login --local`
TRAIN_PIPELINE = "train_pipeline"  # pipelines/train.py: the ZenML pipeline whose latest run is linked
EXIT_PORT_BUSY = 2

NOTES = """\
Notes:
- ZenML's first visit asks for a name and an email (any will do; they stay on this machine) and offers a
  newsletter, whose box you can untick.
- The open-source ZenML dashboard shows runs, their DAG, artifacts and the HTML reports; its Models page is
  ZenML Pro only. The registered model and its aliases are in MLflow (link above); the ZenML Model's versions
  and stages (production = champion, staging = challenger): `zenml model version list --model jude-embedder`. After
  moving an alias in MLflow by hand, `make sync-stages` updates the stages.
- MLflow keeps the runs list's columns in your browser, and a server cannot choose them: open the run for
  the variant table (Artifacts > evaluation/variants.json) and chart, or tick Columns > Metrics >
  finetuned/ndcg_at_10 once in the runs list.
- Both stores keep absolute paths (MLflow's artifact locations, ZenML's artifact store), so a .jude/ copied
  to another directory or machine does not open: run `make train` there instead.
- Stop both with `make dashboard-stop`."""


TEAM_NOTES = """\
Notes:
- These are the team's servers (configs/team.yaml): every run and version the team registered, not only yours.
  Nothing was started here; `make team-down` on the server machine stops them, `make dashboard-stop` leaves
  them running.
- ZenML asks for a login: the user above, password in the server machine's .jude/team/secrets.json
  (zenml_password), or your own ZenML user.
- The open-source ZenML dashboard shows runs, their DAG, artifacts and the HTML reports; its Models page is
  ZenML Pro only. The registered model and its aliases are in MLflow (link above).
- MLflow keeps the runs list's columns in your browser: open the run for the variant table
  (Artifacts > evaluation/variants.json), or tick Columns > Metrics > finetuned/ndcg_at_10 once."""


class DashboardError(RuntimeError):
    """A UI could not be started (or its port is taken); the message says what and what to do."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# ---- ports and processes: jude.procs (shared with jude.team) -----------------------------------------


def busy_port_error(port: int, what: str, flag: str) -> DashboardError:
    return DashboardError(
        f"port {port} ({what}) is already in use by {port_holder(port)}. Stop that process, "
        f"or start on another port: python -m jude.dashboard {flag} PORT",
        exit_code=EXIT_PORT_BUSY,
    )


# ---- waiting for HTTP -------------------------------------------------------------------------


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll ``url`` until it answers (any HTTP status below 500); raise if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DashboardError(f"{url} never answered: the process exited with code {proc.returncode}{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise DashboardError(f"{url} did not answer within {timeout:g} s{_tail(log)}")


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


# ---- state: the MLflow UI this module started ---------------------------------------------------


def _state_file() -> Path:
    return state_dir() / "dashboard.json"


def _read_state() -> dict:
    try:
        return json.loads(_state_file().read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _our_mlflow(port: int) -> dict | None:
    """The MLflow UI recorded in .jude/dashboard.json, if it still runs and holds ``port``."""
    ui = _read_state().get("mlflow")
    if not ui or ui.get("port") != port or not _alive(ui["pid"]) or not port_in_use(port):
        return None
    holder = port_holder(port)
    if holder.pid is not None and not _same_group(holder.pid, ui["pid"]):
        return None
    return ui


# ---- the two UIs ------------------------------------------------------------------------------


def check_ports(mlflow_port: int, zenml_port: int | None, uri: str) -> dict | None:
    """Refuse ports held by other programs, before anything starts. Returns the MLflow UI this module started
    earlier on ``mlflow_port`` (to reuse), else None.

    Allowed: a free port, the MLflow UI recorded in .jude/dashboard.json (same store), and ZenML's own local
    server on ``zenml_port`` (``zenml login --local`` reuses it). ``zenml_port=None``: no ZenML dashboard.
    """
    ours = _our_mlflow(mlflow_port)
    if ours is not None and ours["store"] != uri:
        raise DashboardError(
            f"port {mlflow_port} holds the MLflow UI jude started on another store ({ours['store']}), not {uri}; "
            "stop it first: make dashboard-stop",
            exit_code=EXIT_PORT_BUSY,
        )
    if ours is None and port_in_use(mlflow_port):
        raise busy_port_error(mlflow_port, "MLflow UI", "--mlflow-port")
    if zenml_port is not None and port_in_use(zenml_port):
        server, holder = _zenml_server_pid(), port_holder(zenml_port)
        if server is None or (holder.pid is not None and not _same_group(holder.pid, server)):
            raise busy_port_error(zenml_port, "ZenML dashboard", "--zenml-port")
    return ours


def start_mlflow(port: int, uri: str, env: dict, timeout: float, running: dict | None = None) -> str:
    """``mlflow ui`` on ``uri`` at ``port``, or ``running`` (what :func:`check_ports` found). Returns its URL."""
    url = f"http://{HOST}:{port}"
    if running is not None:
        wait_for_http(f"{url}/health", timeout)
        print(f"MLflow UI:        {url}  (already running, pid {running['pid']}; store {uri})")
        return url
    log = state_dir() / "logs" / "mlflow-ui.log"
    log.parent.mkdir(exist_ok=True)
    cmd = [_bin("mlflow"), "ui", "--backend-store-uri", uri, "--host", HOST, "--port", str(port)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    _state_file().write_text(json.dumps({"mlflow": {"pid": proc.pid, "port": port, "store": uri}}))
    try:
        wait_for_http(f"{url}/health", timeout, proc, log)
    except DashboardError:
        _kill_group(proc.pid)
        _state_file().unlink(missing_ok=True)
        raise
    print(f"MLflow UI:        {url}  (pid {proc.pid}; store {uri}; log {log})")
    return url


def _zenml_server_pid() -> int | None:
    """The pid of ZenML's local server for this ZenML configuration (its daemon's pid file), if running."""
    config = os.environ.get("ZENML_CONFIG_PATH")
    if config:
        root = Path(config).resolve()
    else:
        try:
            import click

            root = Path(click.get_app_dir("zenml"))
        except ImportError:
            root = Path.home() / ".config" / "zenml"
    try:
        pid = int((root / "zen_server" / "daemon" / "service.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def start_zenml(port: int, env: dict, timeout: float) -> str:
    """ZenML's local server (``zenml login --local``; it reuses a running one). Returns its URL."""
    url = f"http://{HOST}:{port}"
    res = subprocess.run(
        [_bin("zenml"), "login", "--local", "--port", str(port)], env=env, capture_output=True, text=True
    )
    if res.returncode != 0:
        raise DashboardError(f"zenml login --local failed:\n{res.stdout}\n{res.stderr}")
    wait_for_http(f"{url}/health", timeout)
    print(f"ZenML dashboard:  {url}  (ZenML's local server)")
    return url


# ---- links ------------------------------------------------------------------------------------


def latest_train_run(env: dict) -> dict | None:
    """The latest ``train_pipeline`` run as ZenML lists it ({id, name, status}), or None."""
    cmd = [_bin("zenml"), "pipeline", "runs", "list", "--pipeline_name", TRAIN_PIPELINE]
    cmd += ["--sort_by", "desc:created", "--size", "1", "--output", "json", "--columns", "id,name,status"]
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None
    start = res.stdout.find("{")
    if res.returncode != 0 or start < 0:
        return None
    try:
        items = json.loads(res.stdout[start:]).get("items", [])
    except json.JSONDecodeError:
        return None
    return items[0] if items else None


# MLflow 3's UI opens every experiment in its GenAI view (traces, "Evaluation runs") unless the URL or the
# browser's saved choice says otherwise; the experiment's mlflow.experimentKind tag (set by
# jude.registry.mlflow_registry.configure) is not what its navigation reads. This query asks for the
# "Model training" view, with the runs table and the metric charts.
TRAINING_VIEW = "workflowType=machine_learning"


def mlflow_links(base: str, uri: str, run_name: str | None) -> dict[str, str]:
    """Links into the MLflow UI at ``base``: the experiment, the run named ``run_name`` (else the latest train
    run), and the registered model, each only when it exists."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {}
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    cfg, client, links = RegistryConfig(), MlflowClient(uri), {}
    exp = client.get_experiment_by_name(cfg.experiment)
    if exp is not None:
        links["experiment"] = f"{base}/#/experiments/{exp.experiment_id}?{TRAINING_VIEW}"
        name_filter = (
            f"attributes.run_name = '{run_name}'" if run_name else f"attributes.run_name LIKE '{TRAIN_PIPELINE}%'"
        )
        runs = client.search_runs(
            [exp.experiment_id], name_filter, order_by=["attributes.start_time DESC"], max_results=1
        )
        if runs:
            links["run"] = f"{base}/#/experiments/{exp.experiment_id}/runs/{runs[0].info.run_id}?{TRAINING_VIEW}"
    try:
        client.get_registered_model(cfg.model_name)
        links["model"] = f"{base}/#/models/{cfg.model_name}"
    except MlflowException:
        pass
    return links


def print_links(zenml_url: str | None, mlflow_url: str, uri: str, env: dict, notes: str = NOTES) -> None:
    run = latest_train_run(env) if zenml_url else None
    links = mlflow_links(mlflow_url, uri, run["name"] if run else None)
    print("\nWhere to look:")
    if zenml_url:
        if run:
            # the open-source dashboard has one project, "default", and its run pages live under it
            run_url = f"{zenml_url}/projects/default/runs/{run['id']}"
            print(f"- latest train run in ZenML ({run['name']}, {run['status']}): {run_url}")
        else:
            print(f"- no train run in ZenML yet (make train); runs: {zenml_url}/projects/default/runs")
    if "experiment" in links:
        print(f"- MLflow experiment (runs list, Model training view): {links['experiment']}")
    if "run" in links:
        print(f"- its MLflow run (metrics, variant table, report): {links['run']}")
    if "model" in links:
        print(f"- registered model {RegistryConfig().model_name} (versions, aliases): {links['model']}")
    else:
        print(f"- no registered model {RegistryConfig().model_name} yet (make train registers it)")
    print()
    print(notes)


# ---- team mode: the team servers are the dashboards ---------------------------------------------------


def team_dashboard(env: dict, zenml: bool = True) -> int:
    """Print the team servers' UIs (``configs/team.yaml``, or ``$JUDE_TEAM``/``$JUDE_TEAM_CONFIG``'s file) with the
    links, after checking that they answer; start nothing. Exit status: 0, or 1 when a server does not answer."""
    from jude.team import TeamError, check_mlflow, check_zenml, load_team_config, team_env

    try:
        cfg = load_team_config()
        mlflow_url = cfg.mlflow.client_url
        check_mlflow(mlflow_url)
        zenml_url = cfg.zenml.client_url if zenml else None
        if zenml_url:
            check_zenml(zenml_url)
    except TeamError as e:
        print(f"dashboard: team mode: {e}", file=sys.stderr)
        return 1
    print(f"MLflow UI:        {mlflow_url}  (the team's tracking server; registry and aliases)")
    if zenml_url:
        client = cfg.zenml_client_dir / "config.yaml"
        login = "" if client.exists() else f"; this machine's client is not logged in ({cfg.zenml_client_dir})"
        print(f"ZenML dashboard:  {zenml_url}  (the team's ZenML server; user {cfg.zenml.username}{login})")
    # the links come from the team's stores: its MLflow server, and the ZenML server the team client is logged in to
    print_links(zenml_url, mlflow_url, mlflow_url, {**env, **team_env(cfg)}, notes=TEAM_NOTES)
    return 0


# ---- start / stop -----------------------------------------------------------------------------


def stop(env: dict) -> int:
    """Stop the MLflow UI this module started and ZenML's local server."""
    ui = _read_state().get("mlflow")
    if ui and _alive(ui["pid"]) and "mlflow" in _command_line(ui["pid"]):
        _kill_group(ui["pid"])
        print(f"stopped the MLflow UI (pid {ui['pid']}, port {ui['port']})")
    else:
        print("no MLflow UI started by `make dashboard` is running")
    _state_file().unlink(missing_ok=True)
    server = _zenml_server_pid()
    if server is None:
        print("ZenML's local server is not running")
        return 0
    res = subprocess.run([_bin("zenml"), "logout", "--local"], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"zenml logout --local failed:\n{res.stdout}\n{res.stderr}", file=sys.stderr)
        return 1
    print(f"stopped ZenML's local server (pid {server})")
    return 0


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlflow-port", type=int, default=MLFLOW_PORT)
    parser.add_argument("--zenml-port", type=int, default=ZENML_PORT)
    parser.add_argument("--no-zenml", action="store_true", help="only the MLflow UI")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for each UI to answer")
    parser.add_argument("--stop", action="store_true", help="stop the MLflow UI and ZenML's local server")
    parser.add_argument(
        "--team", action="store_true", help="the team servers' UIs (what JUDE_TEAM=1 selects); nothing is started"
    )
    args = parser.parse_args(argv)
    env = {**os.environ, **{k: v for k, v in OFFLINE_ENV.items() if k not in os.environ}}
    from jude.team import team_mode

    team = args.team or team_mode()
    if args.stop:
        if team:
            print("team mode: the team servers keep running (`make team-down` stops them)")
        return stop(env)
    if team:
        return team_dashboard(env, zenml=not args.no_zenml)
    uri = resolve_tracking_uri()
    try:
        running = check_ports(args.mlflow_port, None if args.no_zenml else args.zenml_port, uri)
        mlflow_url = start_mlflow(args.mlflow_port, uri, env, args.timeout, running)
        zenml_url = None if args.no_zenml else start_zenml(args.zenml_port, env, args.timeout)
    except DashboardError as e:
        print(f"dashboard: {e}", file=sys.stderr)
        return e.exit_code
    print_links(zenml_url, mlflow_url, uri, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
