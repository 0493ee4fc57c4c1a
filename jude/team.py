"""Team mode: an MLflow tracking server on PostgreSQL and a ZenML server on MariaDB, instead of one person's files.

    jude team up      [--config configs/team.yaml]   (make team-up)
    jude team down                                    (make team-down; the databases and artifacts stay)
    jude team status
    jude team join    a second machine: log its ZenML client in and register the stack (starts no server)

``up`` is idempotent. It checks both databases with the configured credentials before starting anything (a wrong
password or a database that is down is an error naming the host, port, user and database), creates what is
missing (the PostgreSQL database of the MLflow server; the MariaDB database of the ZenML server and the database
user it runs as, since ZenML refuses a MySQL URL without a password), then starts

- ``mlflow server --backend-store-uri postgresql+psycopg2://… --artifacts-destination ROOT --serve-artifacts``:
  runs, metrics and the registry in PostgreSQL; every artifact goes through the server (``mlflow-artifacts:/``)
  into one root, so no client ever writes a path of its own machine into the store;
- ``uvicorn zenml.zen_server.zen_server_api:app`` with ``ZENML_STORE_URL=mysql://…``, as ZenML's server image
  runs it; ``ZENML_SERVER_AUTO_ACTIVATE`` makes its first (admin) user on the first start;

waits until both answer, and then logs this project's ZenML client in (``zenml_glue.team``, in a subprocess:
``jude`` never imports zenml) and registers the stack ``jude-team``. The client's ZenML configuration is its
own directory (``.jude/team/zenml-client``), so the user's default ZenML store is untouched: team mode is on
only where ``JUDE_TEAM=1`` is set (:func:`apply_team_env`, called by ``run.py`` and the ``jude`` command).

A port held by another program is refused with the program's pid and command line; a server this module
started earlier (its pid in ``.jude/team/state.json`` and its port answering) is reused. Generated secrets
(the ZenML database user's password, the first user's password, the server's JWT key) are kept in
``.jude/team/secrets.json`` (mode 0600). Logs: ``.jude/team/logs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jude.env import OFFLINE_ENV
from jude.registry.tracking import project_dir

TEAM_ENV = "JUDE_TEAM"  # 1: run.py and `jude` use the team servers; a path: that team.yaml
TEAM_CONFIG_ENV = "JUDE_TEAM_CONFIG"
LOCK_ENV = "JUDE_PROMOTION_LOCK"  # read by jude.registry.lock: a postgresql:// URL serialises promotion
ZENML_PASSWORD_ENV = "JUDE_ZENML_PASSWORD"  # a joining machine's password for the ZenML user
STACK_NAME = "jude-team"


class TeamError(RuntimeError):
    """Something team mode cannot do; the message names the server, port, database or file, and what to do."""


# ---- configuration -----------------------------------------------------------------------------------


class MlflowServer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="interface the tracking server binds (0.0.0.0 for other machines)")
    port: int = Field(5050, ge=1, le=65535, description="5050, not 5000: `make dashboard`'s MLflow UI keeps 5000")
    url: str | None = Field(None, description="what clients use (default http://host:port)")
    backend_store_uri: str = Field(
        "postgresql+psycopg2://postgres@127.0.0.1:5432/jude_mlflow",
        description="runs, metrics and the registry; ${VAR} is expanded (put a password in an environment variable)",
    )
    artifacts_destination: str = Field(
        ".jude/team/artifacts/mlflow", description="the one artifact root (relative: to the project; or s3://, gs://)"
    )
    workers: int = Field(2, ge=1, description="uvicorn workers")
    allowed_hosts: str | None = Field(None, description="MLflow's --allowed-hosts when serving other machines")

    @property
    def client_url(self) -> str:
        return (self.url or f"http://{_client_host(self.host)}:{self.port}").rstrip("/")


class ZenmlServer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8238, ge=1, le=65535, description="8238, not 8237: `zenml login --local` keeps 8237")
    url: str | None = Field(None, description="what clients use (default http://host:port)")
    database_admin_url: str = Field(
        "mysql://root@127.0.0.1:3306/jude_zenml",
        description="used by `team up` only, to create the database and the user the server runs as",
    )
    database_user: str = Field("jude_zenml", description="the MariaDB user the ZenML server connects as")
    username: str = Field("jude", description="the server's first user (made by `team up`), which clients log in as")
    artifact_store: str = Field(
        ".jude/team/artifacts/zenml", description="the jude-team stack's artifact store (relative: to the project)"
    )

    @property
    def client_url(self) -> str:
        return (self.url or f"http://{_client_host(self.host)}:{self.port}").rstrip("/")


class TeamConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mlflow: MlflowServer = Field(default_factory=MlflowServer)
    zenml: ZenmlServer = Field(default_factory=ZenmlServer)
    state_dir: str = Field(".jude/team", description="pids, logs, secrets and the ZenML client configuration")
    timeout_s: float = Field(180.0, gt=0, description="how long `team up` waits for each server to answer")
    project: str = Field("", description="the project directory relative paths are read from (default: the cwd)")

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (Path(self.project) if self.project else project_dir()) / p

    @property
    def state(self) -> Path:
        return self.path(self.state_dir)

    @property
    def zenml_client_dir(self) -> Path:
        return self.state / "zenml-client"

    def artifact_root(self, value: str) -> str:
        return value if "://" in value else str(self.path(value))

    @property
    def lock_url(self) -> str:
        """The tracking database as a plain ``postgresql://`` URL: the promotion lock's (jude.registry.lock)."""
        return _expand(self.mlflow.backend_store_uri).replace("postgresql+psycopg2://", "postgresql://", 1)


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _expand(uri: str) -> str:
    return os.path.expandvars(uri)


def default_config_path() -> Path:
    value = os.environ.get(TEAM_CONFIG_ENV) or (
        os.environ[TEAM_ENV] if os.environ.get(TEAM_ENV, "") not in ("", "0", "1", "true", "yes") else ""
    )
    return Path(value) if value else project_dir() / "configs" / "team.yaml"


def load_team_config(path: str | Path | None = None) -> TeamConfig:
    """``configs/team.yaml`` (or ``path``; a missing default file gives the defaults). Errors name file and field."""
    p = Path(path) if path else default_config_path()
    if not p.exists():
        if path:
            raise TeamError(f"team config {p} does not exist")
        return TeamConfig()
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise TeamError(f"team config {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise TeamError(f"team config {p}: expected a mapping at the top, got {type(data).__name__}")
    try:
        return TeamConfig.model_validate(data)
    except ValidationError as e:
        where = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']} (got {err.get('input')!r})" for err in e.errors()
        )
        raise TeamError(f"team config {p}: {where}") from e


def team_mode() -> bool:
    return os.environ.get(TEAM_ENV, "").lower() not in ("", "0", "false", "no")


def team_env(cfg: TeamConfig) -> dict[str, str]:
    """What a client process needs to use the team servers: the tracking URI, the isolated ZenML client
    configuration, the promotion lock. ``MLFLOW_TRACKING_URI`` is what every jude module resolves."""
    env = {
        "MLFLOW_TRACKING_URI": cfg.mlflow.client_url,
        "ZENML_CONFIG_PATH": str(cfg.zenml_client_dir),
    }
    if cfg.lock_url.startswith("postgresql://"):
        env[LOCK_ENV] = cfg.lock_url
    return env


# MLflow's client retries a request 7 times with a factor-2 backoff (minutes) before it gives up. A team run rides
# out about a minute of server outage (2+4+8+16+32 s) and then fails with the tracking URI named; set these
# variables yourself to wait longer.
RETRY_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2"}
_LOST = ("Max retries exceeded", "Connection refused", "ConnectionError", "RemoteDisconnected", "Connection aborted")


def tracking_failure(error: BaseException, cfg: TeamConfig | None = None) -> str | None:
    """A clear message when ``error`` (or what caused it) is the MLflow tracking server going away during a run;
    None for any other error. Names the tracking URI and what to do."""
    uri = cfg.mlflow.client_url if cfg is not None else os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        return None
    parts = urlsplit(uri)
    host, port = parts.hostname or "", str(parts.port or (443 if parts.scheme == "https" else 80))
    seen, e = set(), error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = f"{type(e).__name__}: {e}"
        if isinstance(e, TeamError):
            return None
        names_server = (host in text and port in text) or "/api/2.0/mlflow" in text
        if any(s in text for s in _LOST) and names_server:
            first = str(e).strip().splitlines()[0][:240]
            return (
                f"the MLflow tracking server at {uri} stopped answering during the run ({first}). The run is marked "
                "failed and no model version was registered from it; once the server is back (`jude team up` on its "
                "machine restarts it), run the same command again"
            )
        e = e.__cause__ or e.__context__
    return None


def apply_team_env(path: str | Path | None = None) -> TeamConfig | None:
    """When ``JUDE_TEAM`` is set: point this process (and its children) at the team servers. Returns the config.

    Must run before zenml or mlflow are imported. Team mode wins over an ``MLFLOW_TRACKING_URI`` or
    ``ZENML_CONFIG_PATH`` already set: a half-switched process would log to one store and register in another.
    """
    if not team_mode() and path is None:
        return None
    cfg = load_team_config(path)
    os.environ.update(team_env(cfg))
    for key, value in RETRY_ENV.items():
        os.environ.setdefault(key, value)
    return cfg


# ---- checks ------------------------------------------------------------------------------------------


def _url_parts(url: str) -> dict[str, Any]:
    u = urlsplit(_expand(url))
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port,
        "user": unquote(u.username) if u.username else None,
        "password": unquote(u.password) if u.password else "",
        "database": u.path.lstrip("/") or None,
    }


def _where(p: dict[str, Any], kind: str) -> str:
    return f"{kind} at {p['host']}:{p['port']} (user {p['user']!r}, database {p['database']!r})"


def check_postgres(uri: str, create: bool = False, field: str = "mlflow.backend_store_uri") -> str:
    """Connect as ``uri`` says (to the server's ``postgres`` database), create the database if asked and missing.
    Returns what was done; raises :class:`TeamError` naming host, port, user and database."""
    import psycopg2

    p = _url_parts(uri)
    p["port"] = p["port"] or 5432
    if not p["database"]:
        raise TeamError(f"{field} {uri!r} names no database (…/DBNAME)")
    try:
        conn = psycopg2.connect(
            host=p["host"], port=p["port"], user=p["user"], password=p["password"], dbname="postgres", connect_timeout=5
        )
    except psycopg2.OperationalError as e:
        raise TeamError(f"cannot connect to {_where(p, 'PostgreSQL')}: {str(e).strip()}; check {field}") from e
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (p["database"],))
            if cur.fetchone():
                return f"PostgreSQL database {p['database']} exists"
            if not create:
                raise TeamError(f"{_where(p, 'PostgreSQL')}: no such database; `jude team up` creates it")
            cur.execute(f'CREATE DATABASE "{p["database"]}"')
            return f"created PostgreSQL database {p['database']}"
    except psycopg2.Error as e:
        raise TeamError(f"{_where(p, 'PostgreSQL')}: {str(e).strip()}") from e
    finally:
        conn.close()


def check_mariadb(admin_url: str, user: str, password: str, create: bool = False) -> str:
    """Connect as the admin URL says; create the database and ``user`` (granted on it) when asked. Returns what was
    done; raises :class:`TeamError` naming host, port, user and database."""
    import pymysql

    p = _url_parts(admin_url)
    p["port"] = p["port"] or 3306
    if not p["database"]:
        raise TeamError(f"zenml.database_admin_url {admin_url!r} names no database (…/DBNAME)")
    try:
        conn = pymysql.connect(
            host=p["host"], port=p["port"], user=p["user"], password=p["password"], connect_timeout=5, autocommit=True
        )
    except pymysql.err.OperationalError as e:
        raise TeamError(
            f"cannot connect to {_where(p, 'MariaDB/MySQL')}: {e.args[-1] if e.args else e}; "
            "check zenml.database_admin_url"
        ) from e
    done = []
    try:
        with conn.cursor() as cur:
            db = p["database"]
            cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (db,))
            if not cur.fetchone():
                if not create:
                    raise TeamError(f"{_where(p, 'MariaDB')}: no such database; `jude team up` creates it")
                cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
                done.append(f"created MariaDB database {db}")
            if create:
                for host in ("127.0.0.1", "localhost", "%"):
                    cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password))
                    cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{db}`.* TO %s@%s", (user, host))
                done.append(f"MariaDB user {user} granted on {db}")
    except pymysql.err.MySQLError as e:
        raise TeamError(f"{_where(p, 'MariaDB')}: {e.args[-1] if e.args else e}") from e
    finally:
        conn.close()
    return "; ".join(done) or f"MariaDB database {p['database']} exists"


def _http(url: str, data: dict | None = None, timeout: float = 5.0) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def check_mlflow(url: str, timeout: float = 10.0) -> None:
    """The tracking server answers *and* reaches its database (a search, not only /health)."""
    try:
        code, body = _http(f"{url}/api/2.0/mlflow/experiments/search", {"max_results": 1}, timeout)
    except (urllib.error.URLError, OSError) as e:
        raise TeamError(
            f"the MLflow tracking server at {url} does not answer ({getattr(e, 'reason', e)}); "
            "start it with `jude team up` (make team-up), or fix mlflow.url in configs/team.yaml"
        ) from e
    if code != 200:
        raise TeamError(
            f"the MLflow tracking server at {url} answers HTTP {code}: its backend store fails ({body[:300]}); "
            f"see {url} 's log (.jude/team/logs/mlflow.log on its machine)"
        )


def check_zenml(url: str, timeout: float = 10.0) -> None:
    """The ZenML server answers and reads its database (``/api/v1/info`` reads the server settings)."""
    try:
        code, body = _http(f"{url}/api/v1/info", None, timeout)
    except (urllib.error.URLError, OSError) as e:
        raise TeamError(
            f"the ZenML server at {url} does not answer ({getattr(e, 'reason', e)}); start it with `jude team up` "
            "(make team-up), or fix zenml.url in configs/team.yaml"
        ) from e
    if code != 200:
        raise TeamError(f"the ZenML server at {url} answers HTTP {code}: {body[:300]}")


def preflight(cfg: TeamConfig) -> None:
    """Before any step runs: both servers answer and reach their databases; the client has logged in."""
    check_mlflow(cfg.mlflow.client_url)
    check_zenml(cfg.zenml.client_url)
    if not (cfg.zenml_client_dir / "config.yaml").exists():
        raise TeamError(
            f"this machine's ZenML client is not logged in to {cfg.zenml.client_url} ({cfg.zenml_client_dir} is "
            "missing): run `jude team up` on the server machine, or `jude team join` here"
        )


# ---- state and secrets -------------------------------------------------------------------------------


def _state_file(cfg: TeamConfig) -> Path:
    return cfg.state / "state.json"


def _read_state(cfg: TeamConfig) -> dict:
    try:
        return json.loads(_state_file(cfg).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _write_state(cfg: TeamConfig, state: dict) -> None:
    cfg.state.mkdir(parents=True, exist_ok=True)
    _state_file(cfg).write_text(json.dumps(state, indent=2))


def team_secrets(cfg: TeamConfig, create: bool = True) -> dict[str, str]:
    """The generated secrets in ``.jude/team/secrets.json`` (mode 0600), made on the first ``team up``."""
    path = cfg.state / "secrets.json"
    try:
        found = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        found = {}
    wanted = ("zenml_db_password", "zenml_password", "zenml_jwt_secret")
    if create and any(k not in found for k in wanted):
        for key in wanted:
            found.setdefault(key, secrets.token_urlsafe(24))
        cfg.state.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        path.write_text(json.dumps(found, indent=2))
    return found


def zenml_password(cfg: TeamConfig) -> str:
    """The ZenML user's password: ``$JUDE_ZENML_PASSWORD`` (a joining machine), else this machine's secrets."""
    pw = os.environ.get(ZENML_PASSWORD_ENV) or team_secrets(cfg, create=False).get("zenml_password")
    if not pw:
        raise TeamError(
            f"no password for the ZenML user {cfg.zenml.username!r}: set ${ZENML_PASSWORD_ENV} (the server machine "
            f"keeps it in {cfg.state / 'secrets.json'})"
        )
    return pw


# ---- servers -----------------------------------------------------------------------------------------


def _python_bin() -> str:
    return sys.executable


def _proc():
    """The process helpers (:mod:`jude.procs`, shared with `make dashboard`; imported when a server is started or
    stopped, not by :func:`apply_team_env`, which must stay light: it runs before zenml and mlflow are imported)."""
    from jude import procs

    return procs


def _ours(cfg: TeamConfig, name: str, port: int) -> dict | None:
    """The server this module started as ``name``, if it still runs and holds ``port``."""
    d = _proc()
    rec = _read_state(cfg).get(name)
    if not rec or rec.get("port") != port or not d._alive(rec["pid"]) or not d.port_in_use(port, _bind(rec["host"])):
        return None
    holder = d.port_holder(port)
    if holder.pid is not None and not d._same_group(holder.pid, rec["pid"]):
        return None
    return rec


def _bind(host: str) -> str:
    return _client_host(host)


def _start(cfg: TeamConfig, name: str, cmd: list[str], env: dict, port: int, host: str, check) -> dict:
    """Start ``cmd`` in its own session (logs under .jude/team/logs/), record it, wait until ``check`` passes."""
    log = cfg.state / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n---- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    state = _read_state(cfg)
    state[name] = {"pid": proc.pid, "port": port, "host": host, "log": str(log), "cmd": cmd}
    _write_state(cfg, state)
    deadline = time.monotonic() + cfg.timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TeamError(f"{name} server exited with code {proc.returncode} before it answered{_tail(log)}")
        try:
            check()
            return state[name]
        except TeamError as e:
            last = e
        time.sleep(1.0)
    _proc()._kill_group(proc.pid)
    raise TeamError(f"{name} server did not answer within {cfg.timeout_s:g} s ({last}){_tail(log)}")


def _tail(log: Path, lines: int = 12) -> str:
    if not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


def _claim_port(cfg: TeamConfig, name: str, host: str, port: int, field: str) -> dict | None:
    """Reuse our own server on ``port``, or refuse a port another program holds (naming it)."""
    ours = _ours(cfg, name, port)
    if ours is not None:
        return ours
    if _proc().port_in_use(port, _bind(host)):
        raise TeamError(
            f"port {port} ({name} server) is already in use by {_proc().port_holder(port)}; stop that program or set "
            f"{field} in configs/team.yaml"
        )
    return None


def start_mlflow(cfg: TeamConfig) -> str:
    m = cfg.mlflow
    if _claim_port(cfg, "mlflow", m.host, m.port, "mlflow.port") is not None:
        check_mlflow(m.client_url)
        return f"MLflow tracking server already running at {m.client_url}"
    root = cfg.artifact_root(m.artifacts_destination)
    if "://" not in root:
        Path(root).mkdir(parents=True, exist_ok=True)
    cmd = [_python_bin(), "-m", "mlflow", "server", "--backend-store-uri", _expand(m.backend_store_uri)]
    cmd += ["--artifacts-destination", root, "--serve-artifacts", "--host", m.host, "--port", str(m.port)]
    cmd += ["--workers", str(m.workers)]
    if m.allowed_hosts:
        cmd += ["--allowed-hosts", m.allowed_hosts]
    env = {**os.environ, **OFFLINE_ENV}
    _start(cfg, "mlflow", cmd, env, m.port, m.host, lambda: check_mlflow(m.client_url, timeout=5))
    return (
        f"started the MLflow tracking server at {m.client_url} (store {_redact(m.backend_store_uri)}; artifacts {root})"
    )


def zenml_store_url(cfg: TeamConfig, password: str) -> str:
    p = _url_parts(cfg.zenml.database_admin_url)
    return f"mysql://{quote(cfg.zenml.database_user)}:{quote(password)}@{p['host']}:{p['port'] or 3306}/{p['database']}"


def start_zenml(cfg: TeamConfig, sec: dict[str, str]) -> str:
    z = cfg.zenml
    if _claim_port(cfg, "zenml", z.host, z.port, "zenml.port") is not None:
        check_zenml(z.client_url)
        return f"ZenML server already running at {z.client_url}"
    server_dir = cfg.state / "zenml-server"  # the server's own global config, apart from any client's
    server_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **OFFLINE_ENV,
        "ZENML_STORE_URL": zenml_store_url(cfg, sec["zenml_db_password"]),
        "ZENML_CONFIG_PATH": str(server_dir),
        "ZENML_SERVER_AUTO_ACTIVATE": "true",  # the first start activates the server and makes the first user
        "ZENML_DEFAULT_USER_NAME": z.username,
        "ZENML_DEFAULT_USER_PASSWORD": sec["zenml_password"],
        "ZENML_SERVER_JWT_SECRET_KEY": sec["zenml_jwt_secret"],  # one key for every worker and restart
        "ZENML_SERVER_ALLOW_LOCAL_FILE_ACCESS": "true",  # the dashboard reads the local artifact store's reports
    }
    for key in ("ZENML_STORE_API_KEY", "ZENML_STORE_USERNAME", "ZENML_STORE_PASSWORD"):
        env.pop(key, None)
    cmd = [_python_bin(), "-m", "uvicorn", "zenml.zen_server.zen_server_api:app", "--host", z.host]
    cmd += ["--port", str(z.port)]
    _start(cfg, "zenml", cmd, env, z.port, z.host, lambda: check_zenml(z.client_url, timeout=5))
    return f"started the ZenML server at {z.client_url} (store {_redact(zenml_store_url(cfg, 'xxx'))})"


def _redact(uri: str) -> str:
    u = urlsplit(_expand(uri))
    if u.password:
        return uri.replace(f":{u.password}@", ":***@")
    return uri


def join(cfg: TeamConfig, config_path: Path | None = None) -> str:
    """Log this machine's ZenML client in (its own configuration directory) and register the ``jude-team`` stack,
    in a subprocess (``zenml_glue.team``), so that ``jude`` never imports zenml."""
    check_mlflow(cfg.mlflow.client_url)
    check_zenml(cfg.zenml.client_url)
    env = {**os.environ, **OFFLINE_ENV, **team_env(cfg), ZENML_PASSWORD_ENV: zenml_password(cfg)}
    env["ZENML_LOGGING_VERBOSITY"] = env.get("ZENML_LOGGING_VERBOSITY", "WARN")
    env[TEAM_ENV] = "1"
    if config_path is not None:
        env[TEAM_CONFIG_ENV] = str(Path(config_path).resolve())
    env["JUDE_HOME"] = str(cfg.path("."))
    res = subprocess.run(
        [_python_bin(), "-m", "zenml_glue.team"], env=env, capture_output=True, text=True, cwd=str(_repo_root())
    )
    if res.returncode != 0:
        raise TeamError(f"registering the jude-team stack failed:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    return res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "stack registered"


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def up(cfg: TeamConfig, config_path: Path | None = None) -> list[str]:
    """Start (or reuse) both servers, log the client in, register the stack. Returns what was done, line by line."""
    sec = team_secrets(cfg)
    done = [check_postgres(cfg.mlflow.backend_store_uri, create=True)]
    done.append(check_mariadb(cfg.zenml.database_admin_url, cfg.zenml.database_user, sec["zenml_db_password"], True))
    # both ports before either server starts: a clash is reported before anything runs
    _claim_port(cfg, "mlflow", cfg.mlflow.host, cfg.mlflow.port, "mlflow.port")
    _claim_port(cfg, "zenml", cfg.zenml.host, cfg.zenml.port, "zenml.port")
    zenml_root = cfg.artifact_root(cfg.zenml.artifact_store)
    if "://" not in zenml_root:
        Path(zenml_root).mkdir(parents=True, exist_ok=True)
    done.append(start_mlflow(cfg))
    done.append(start_zenml(cfg, sec))
    done.append(join(cfg, config_path))
    return done


def down(cfg: TeamConfig) -> list[str]:
    """Stop the servers this module started (their process groups). Databases and artifacts stay."""
    state, done, d = _read_state(cfg), [], _proc()
    for name in ("zenml", "mlflow"):
        rec = state.pop(name, None)
        if rec and d._alive(rec["pid"]):
            d._kill_group(rec["pid"])
            done.append(f"stopped the {name} server (pid {rec['pid']}, port {rec['port']})")
        else:
            done.append(f"no {name} server started by `jude team up` is running")
    _write_state(cfg, state)
    return done


def status(cfg: TeamConfig) -> tuple[bool, list[str]]:
    state, lines, ok = _read_state(cfg), [], True
    for name, url, check in (
        ("mlflow", cfg.mlflow.client_url, check_mlflow),
        ("zenml", cfg.zenml.client_url, check_zenml),
    ):
        rec = state.get(name)
        pid = f"pid {rec['pid']}" if rec and _proc()._alive(rec["pid"]) else "not started here"
        try:
            check(url)
            lines.append(f"{name}: {url} answers ({pid})")
        except TeamError as e:
            ok = False
            lines.append(f"{name}: {e} ({pid})")
    if ok:  # the servers are the dashboards (`make dashboard` is the embedded store's)
        lines.append(f"MLflow UI: {cfg.mlflow.client_url} (registry: {cfg.mlflow.client_url}/#/models/jude-embedder)")
        lines.append(
            f"ZenML dashboard: {cfg.zenml.client_url} (user {cfg.zenml.username}; password in "
            f"{cfg.state / 'secrets.json'} under zenml_password)"
        )
    client = cfg.zenml_client_dir / "config.yaml"
    lines.append(f"ZenML client: {'logged in' if client.exists() else 'not logged in'} ({cfg.zenml_client_dir})")
    lines.append(f"use it: JUDE_TEAM=1 python run.py --pipeline train   (tracking {cfg.mlflow.client_url})")
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jude team", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down", "status", "join", "env"])
    parser.add_argument("--config", type=Path, default=None, help="default: $JUDE_TEAM_CONFIG, else configs/team.yaml")
    args = parser.parse_args(argv)
    try:
        cfg = load_team_config(args.config)
        if args.action == "up":
            t0 = time.monotonic()
            for line in up(cfg, args.config):
                print(f"team: {line}")
            print(f"team: up in {time.monotonic() - t0:.0f} s; use it with JUDE_TEAM=1 (see docs/team.md)")
        elif args.action == "down":
            for line in down(cfg):
                print(f"team: {line}")
        elif args.action == "join":
            print(f"team: {join(cfg, args.config)}")
        elif args.action == "env":
            for k, v in team_env(cfg).items():
                print(f"export {k}={v}")
        else:
            ok, lines = status(cfg)
            for line in lines:
                print(f"team: {line}")
            return 0 if ok else 1
    except TeamError as e:
        print(f"team: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
