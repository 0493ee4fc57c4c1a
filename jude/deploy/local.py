"""target=local: run `jude serve` as a background process on this machine.

A deployment starts the new server (on ``port``, or ``port + 1`` while the old
server still holds ``port``: blue/green on one machine), waits for ``/ready``,
sends a smoke request, and only then stops the server it replaces. The state
file ``<state_dir>/local.json`` records the address, the process id and the model
of the running server; it is written atomically, so it always describes a
server that passed its smoke test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

import jude
from jude.config import DeployConfig
from jude.deploy.record import DeploymentRecord

STATE_FILE = "local.json"
SMOKE_TEXT = "Senior Python developer, Berlin: FastAPI, Kubernetes, PostgreSQL."


class LocalDeployError(RuntimeError):
    """The new server did not start, did not become ready, or failed its smoke request."""


# ---- state ---------------------------------------------------------------------------------
def read_state(state_dir: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(state_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LocalDeployError(f"{path}: not valid JSON ({e}); delete it if no server is running") from e


def _write_state(state_dir: Path, state: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{STATE_FILE}.", dir=state_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, state_dir / STATE_FILE)


def is_our_server(pid: int | None) -> bool:
    """True when ``pid`` is alive and (where /proc exists) runs `jude ... serve`, not a recycled pid."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        args = cmdline.read_bytes().split(b"\0")
        return b"serve" in args and any(b"jude" in a for a in args)
    return True


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# ---- process control ------------------------------------------------------------------------
def stop_server(pid: int, timeout_s: float = 15.0) -> bool:
    """SIGTERM (uvicorn finishes in-flight requests), then SIGKILL after ``timeout_s``. True if it stopped."""
    if not is_our_server(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # the server is its own session leader (start_new_session)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
            if finished == pid:
                return True
        except ChildProcessError:
            pass
        if not is_our_server(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _tail(path: Path, n: int = 20) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def start_server(
    model_uri: str,
    host: str,
    port: int,
    log_file: Path,
    serve_overrides: dict | None = None,
    python: str = sys.executable,
    retrieval: dict | None = None,
) -> subprocess.Popen:
    """Start `jude serve` detached from this process (it outlives the pipeline step).

    ``retrieval``: the deploy config's ``retrieval:`` fields that differ from the defaults, for a server that
    answers ``/v1/recommend`` (``--recommend``, the fields in ``$JUDE_RETRIEVAL_CONFIG``); None: no retrieval from
    the deploy config (an inherited ``$JUDE_RETRIEVAL_CONFIG`` still applies, as for ``jude serve``).
    """
    env = dict(os.environ)
    root = str(Path(jude.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if serve_overrides:
        env["JUDE_SERVE_CONFIG"] = json.dumps(serve_overrides)
    cmd = serve_command(model_uri, host, port, python, recommend=retrieval is not None)
    if retrieval is not None:
        env["JUDE_RETRIEVAL_CONFIG"] = json.dumps(retrieval)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


def serve_command(model_uri: str, host: str, port: int, python: str = sys.executable, recommend: bool = False):
    """The `jude serve` command line of a local deployment."""
    cmd = [python, "-m", "jude.cli", "serve", "--model", model_uri, "--host", host, "--port", str(port)]
    return cmd + (["--recommend"] if recommend else [])


def wait_ready(address: str, proc: subprocess.Popen, log_file: Path, timeout_s: float) -> None:
    """Poll GET /ready until 200; fail fast when the process exits or reports a failed load."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalDeployError(
                f"the server exited with code {proc.returncode} before it was ready; "
                f"last lines of {log_file}:\n{_tail(log_file)}"
            )
        try:
            r = httpx.get(f"{address}/ready", timeout=2.0)
            if r.status_code == 200:
                return
            if "failed" in r.text:
                raise LocalDeployError(f"the server could not load the model: {r.json()['error']['message']}")
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise LocalDeployError(
        f"the server at {address} was not ready after {timeout_s:.0f}s; last lines of {log_file}:\n{_tail(log_file)}"
    )


def smoke_request(address: str, api_key: str | None = None) -> dict[str, Any]:
    """One real embedding request; returns its status, latency and the dimension it got."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    t0 = time.perf_counter()
    r = httpx.post(f"{address}/v1/embeddings", json={"input": [SMOKE_TEXT]}, headers=headers, timeout=30.0)
    latency_ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200:
        raise LocalDeployError(f"smoke request to {address}/v1/embeddings answered {r.status_code}: {r.text[:300]}")
    emb = r.json()["data"][0]["embedding"]
    if not emb or not all(isinstance(x, float) for x in emb):
        raise LocalDeployError(f"smoke request to {address} returned no embedding")
    return {
        "status": r.status_code,
        "latency_ms": round(latency_ms, 2),
        "dimension": len(emb),
        "prompt_tokens": r.json()["usage"]["prompt_tokens"],
    }


# ---- the deployment ---------------------------------------------------------------------------
def deploy_local(
    cfg: DeployConfig, model_uri: str | None = None, model_version: str | None = None, log=print
) -> DeploymentRecord:
    """Start the new server, wait for /ready, smoke-test it, stop the old one, record the new state."""
    lc = cfg.local
    model_uri = model_uri or cfg.model_uri
    state_dir = Path(lc.state_dir)
    previous = read_state(state_dir)
    prev_pid = previous.get("pid") if previous and is_our_server(previous.get("pid")) else None

    port = next((p for p in (lc.port, lc.port + 1) if _port_free(lc.host, p)), None)
    if port is None:
        raise LocalDeployError(
            f"ports {lc.port} and {lc.port + 1} on {lc.host} are both in use "
            f"(running jude server: pid {prev_pid}); free one or set deploy.local.port"
        )
    address = f"http://{lc.host}:{port}"
    log_file = state_dir / f"server-{port}.log"
    overrides = cfg.serve.model_dump(exclude_defaults=True)
    for k in ("host", "port"):
        overrides.pop(k, None)
    retrieval = cfg.retrieval.overrides() if cfg.retrieval.enabled else None
    recommend = " --recommend" if retrieval is not None else ""
    log(f"starting jude serve --model {model_uri}{recommend} on {address} (log: {log_file})")
    proc = start_server(model_uri, lc.host, port, log_file, overrides, retrieval=retrieval)
    try:
        wait_ready(address, proc, log_file, lc.ready_timeout_s)
        smoke = smoke_request(address, os.environ.get(cfg.serve.api_key_env))
    except BaseException:
        stop_server(proc.pid, timeout_s=5)
        raise
    log(f"ready: {address} (pid {proc.pid}); smoke request {smoke['latency_ms']} ms")
    if prev_pid and prev_pid != proc.pid:
        log(f"stopping the previous server (pid {prev_pid}, {previous.get('address')})")
        stop_server(prev_pid)
    record = DeploymentRecord(
        target="local",
        status="deployed",
        model_uri=model_uri,
        model_version=model_version,
        address=address,
        pid=proc.pid,
        replaced_pid=prev_pid,
        smoke=smoke,
        detail=f"log: {log_file}",
    )
    _write_state(state_dir, record.model_dump())
    return record


def stop_local(state_dir: str | os.PathLike) -> int | None:
    """Stop the server the state file describes and remove the state file -> the pid stopped, if any."""
    state = read_state(state_dir)
    if not state:
        return None
    pid = state.get("pid")
    stopped = stop_server(pid) if pid else False
    (Path(state_dir) / STATE_FILE).unlink(missing_ok=True)
    return pid if stopped else None
