"""A local OpenAI-compatible LLM server for the judge: llama.cpp (``python -m llama_cpp.server``) as a subprocess.

:class:`LLMServer` starts the server on a GGUF model, waits until it answers ``GET /v1/models``, and stops
it; the judge client (:class:`jude.labels.llm_judge.LLMJudge`) talks to it like to any other
OpenAI-compatible endpoint (vLLM, Ollama, OpenAI): nothing in the client knows it is local.

Errors say what to do:

- the model file is missing: :class:`LLMServerError` names it and says ``make llm`` (or ``make setup`` for
  the SmolLM2 model);
- llama-cpp-python is not installed: says ``pip install -e '.[llm]'`` (``make setup`` installs it);
- the port is taken: names the port (leave ``port`` at 0 to get a free one);
- the server exits or never becomes ready: the exit code and the tail of its log.

``python -m jude.labels.llm_server MODEL.gguf [--port N]`` runs one in the foreground (docs/llm.md).
"""

from __future__ import annotations

import argparse
import errno
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

from jude.config.labels import LLMServerConfig
from jude.labels.judge_interface import JudgeError

LOG_TAIL_LINES = 25


class LLMServerError(JudgeError):
    """The local LLM server could not be started or died; the message says why and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound (no server listens there; connections in TIME_WAIT do not count, as
    servers bind with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def peak_rss_bytes(pid: int) -> int | None:
    """The peak resident memory of process ``pid`` (``VmHWM`` of /proc; Linux), None where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class LLMServer:
    """``python -m llama_cpp.server`` on one GGUF model, as a subprocess; a context manager (start, stop).

    ``model_name`` is the alias the server answers to (the ``model`` of each request, and so part of the
    judge cache's key). The server's output goes to ``log_path`` (a temporary file by default), whose tail is
    quoted in every error. ``command`` overrides the program (``{host}`` and ``{port}`` are filled in; tests use
    it to start something that fails), and skips the checks of the model file and of llama-cpp-python.
    """

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        model_name: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        n_ctx: int = 4096,
        n_threads: int = 2,
        startup_timeout_s: float = 180.0,
        log_path: str | os.PathLike | None = None,
        command: list[str] | None = None,
    ):
        if startup_timeout_s <= 0:
            raise ValueError(f"startup_timeout_s must be > 0, got {startup_timeout_s}")
        self.model_path = Path(model_path)
        self.model_name = model_name or self.model_path.stem
        self.host, self.port = host, int(port)
        self.n_ctx, self.n_threads = n_ctx, n_threads
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path is not None else None
        self.command = command
        self.proc: subprocess.Popen | None = None
        self._log_file: Any = None

    @classmethod
    def from_config(cls, cfg: LLMServerConfig, model_name: str | None = None) -> LLMServer:
        return cls(
            cfg.model_path,
            model_name=model_name,
            host=cfg.host,
            port=cfg.port,
            n_ctx=cfg.n_ctx,
            n_threads=cfg.n_threads,
            startup_timeout_s=cfg.startup_timeout_s,
        )

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``: what ``labels.llm.base_url`` would be."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def argv(self) -> list[str]:
        """The server's command line."""
        if self.command is not None:
            return [a.format(port=self.port, host=self.host) for a in self.command]
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.model_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
        ]

    def _check_can_start(self) -> None:
        if self.port != 0 and not port_is_free(self.host, self.port):
            raise LLMServerError(
                f"port {self.port} on {self.host} is taken by another process: stop it, or pick another "
                "labels.llm.server.port (0 picks a free one)"
            )
        if self.command is None:
            if not self.model_path.is_file():
                raise LLMServerError(
                    f"judge model file {self.model_path} does not exist: run `make llm` "
                    "(SmolLM2-135M and Qwen2.5-0.5B into .jude/models/; `make setup` fetches SmolLM2-135M), "
                    "or set labels.llm.server.model_path to a GGUF file"
                )
            try:
                import llama_cpp  # noqa: F401
            except ImportError as e:
                raise LLMServerError(
                    f"llama-cpp-python is not installed ({e}): run `make setup` or pip install -e '.[llm]'"
                ) from None
        if self.port == 0:
            self.port = free_port(self.host)

    def start(self) -> LLMServer:
        """Start the server and wait until it is ready (:meth:`wait_ready`)."""
        if self.proc is not None:
            raise LLMServerError(f"server already started (pid {self.proc.pid})")
        self._check_can_start()
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="jude-llm-server-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("wb")
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            self.argv(), stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's log."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:]) or "(empty log)"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        """Raise :class:`LLMServerError` (exit code, log tail) when the server process has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise LLMServerError(
                f"the LLM server ({' '.join(self.argv()[:3])} on {self.model_path.name}) exited with code "
                f"{self.proc.returncode}; the tail of its log {self.log_path}:\n{self.log_tail()}"
            )

    def wait_ready(self) -> None:
        """Poll ``GET /v1/models`` until it answers 200; raise (with the log tail) when the process exits first
        or ``startup_timeout_s`` passes."""
        deadline = time.monotonic() + self.startup_timeout_s
        url = self.base_url + "/models"
        with httpx.Client(timeout=2.0) as client:
            while True:
                self.check_alive()
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise LLMServerError(
                        f"the LLM server did not answer GET {url} within {self.startup_timeout_s:.0f}s "
                        f"(raise labels.llm.server.startup_timeout_s); the tail of its log {self.log_path}:\n"
                        f"{self.log_tail()}"
                    )
                time.sleep(0.25)

    def peak_rss_bytes(self) -> int | None:
        """The server process's peak resident memory so far (None when not running or unknown)."""
        return peak_rss_bytes(self.proc.pid) if self.alive() else None

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> LLMServer:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Run the judge's llama.cpp server in the foreground (Ctrl-C stops it).")
    ap.add_argument("model", help="a GGUF file, e.g. .jude/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--name", help="the model name requests use (default: the file name without .gguf)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-ctx", type=int, default=4096)
    args = ap.parse_args(argv)
    server = LLMServer(
        args.model, model_name=args.name, host=args.host, port=args.port, n_ctx=args.n_ctx, n_threads=args.threads
    )
    try:
        with server:
            print(f"serving {server.model_name} at {server.base_url} (log {server.log_path}); Ctrl-C stops it")
            while server.alive():
                time.sleep(1.0)
            server.check_alive()
    except LLMServerError as e:
        raise SystemExit(f"llm_server: {e}") from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
