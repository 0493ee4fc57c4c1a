"""Ports and process groups: what `make dashboard` (:mod:`jude.dashboard`) and the team servers
(:mod:`jude.team`) both need to start, find and stop the servers they run. Standard library only (psutil when
installed, else ``lsof``/``ps``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

HOST = "127.0.0.1"


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when something listens on ``host:port`` or the port cannot be bound there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        if s.connect_ex((host, port)) == 0:
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class PortHolder:
    pid: int | None  # None: the listening process could not be found (another user's, or no psutil/lsof)
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.pid is not None else self.command


def port_holder(port: int) -> PortHolder:
    """The process listening on ``port``: psutil where it can see sockets, else ``lsof``."""
    pid = None
    try:
        import psutil

        pid = next(
            (c.pid for c in psutil.net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port and c.pid),
            None,
        )
    except Exception:  # no psutil, or not allowed to list sockets (macOS without root)
        pass
    if pid is None and shutil.which("lsof"):
        out = subprocess.run(
            ["lsof", "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-t"], capture_output=True, text=True, timeout=10
        )
        pid = next((int(p) for p in out.stdout.split() if p.isdigit()), None)
    if pid is None:
        return PortHolder(None, f"a process this user cannot see (`lsof -i :{port}` as root shows which)")
    return PortHolder(pid, _command_line(pid) or "command unknown")


def _command_line(pid: int) -> str:
    try:
        import psutil

        return " ".join(psutil.Process(pid).cmdline())
    except Exception:
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True)
        return out.stdout.strip()


def _same_group(pid: int, leader: int) -> bool:
    """``pid`` is ``leader`` or runs in its process group (the UI's server workers)."""
    try:
        return pid == leader or os.getpgid(pid) == leader
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pid: int, grace: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid`` (started with start_new_session), SIGKILL after ``grace`` s."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
