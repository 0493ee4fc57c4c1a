"""One JSON results file per bench run: what ran, where, when, under what load, and every figure it printed.

    results = BenchResults("nearline_bench")            # command, UTC date, git commit, CPUs, load before
    results.row(updater="naive", events=24000, ...)      # every measured row
    results.say(f"inference reduction: {r:.2f}", inference_reduction=r)   # print a summary line, keep it and its value
    results.write(args.out)                              # + load after; nothing written when out is None

The file::

    {"bench", "command", "date_utc", "finished_utc", "git_commit", "git_dirty", "cpu_count",
     "load_avg_before", "load_avg_after", "settings", "rows", "summary", "summary_lines", **extra}

``load_avg_*`` are the 1, 5 and 15 minute load averages: a ratio measured on busy cores says little, so the
file keeps what the machine was doing. Numpy scalars and arrays, paths and other objects are written as JSON
numbers, lists or strings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def utc_now() -> str:
    """The UTC time as ISO 8601 to the second: '2026-12-07T06:05:00Z'."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_avg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def git_commit(root: Path = ROOT) -> tuple[str | None, bool | None]:
    """(HEAD's commit, whether the work tree has uncommitted changes); (None, None) outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit, bool(status.strip())


def command_line(script: str | None = None, argv: list[str] | None = None) -> str:
    """The command as run: 'python bench/<script> <arguments>' (``argv``: the arguments; default ``sys.argv``)."""
    script = script or sys.argv[0]
    path = Path(script).resolve()
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return " ".join(["python", str(shown), *(sys.argv[1:] if argv is None else argv)])


def run_info(script: str | None = None, argv: list[str] | None = None) -> dict[str, Any]:
    """The context of a run, taken at its start: command, UTC date, git commit, CPU count, load averages."""
    commit, dirty = git_commit()
    return {
        "command": command_line(script, argv),
        "date_utc": utc_now(),
        "git_commit": commit,
        "git_dirty": dirty,
        "cpu_count": os.cpu_count(),
        "load_avg_before": load_avg(),
    }


def _json_default(x: Any) -> Any:
    """numpy scalars and arrays as numbers and lists; anything else (paths, timestamps) as its text."""
    if hasattr(x, "tolist"):  # numpy scalar or array
        return x.tolist()
    return str(x)


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as indented JSON to ``path`` (its folder made), through a temporary file renamed into
    place, so a reader never sees half a file. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


class BenchResults:
    """What one bench run measured, gathered as it runs and written as one JSON file (module docstring)."""

    def __init__(self, bench: str, settings: Any = None, argv: list[str] | None = None):
        self.bench = bench
        self.info = run_info(argv=argv)
        self.settings = dict(vars(settings)) if hasattr(settings, "__dict__") else dict(settings or {})
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.summary_lines: list[str] = []
        self.extra: dict[str, Any] = {}

    def row(self, **fields: Any) -> dict[str, Any]:
        """Keep one measured row (a measurement, a round, a method); returns it."""
        self.rows.append(fields)
        return fields

    def say(self, line: str, **values: Any) -> None:
        """Print a summary line, keep its text, and keep ``values`` (the figures in it) in ``summary``."""
        print(line, flush=True)
        self.summary_lines.append(line)
        self.summary.update(values)

    def payload(self) -> dict[str, Any]:
        """The file's content, with the load averages now as ``load_avg_after``."""
        return {
            "bench": self.bench,
            **self.info,
            "finished_utc": utc_now(),
            "load_avg_after": load_avg(),
            "settings": self.settings,
            "rows": self.rows,
            "summary": self.summary,
            "summary_lines": self.summary_lines,
            **self.extra,
        }

    def write(self, out: str | Path | None) -> Path | None:
        """Write the results to ``out`` (nothing when None) and say where, on stderr: a bench's last line on
        stdout stays its figure (``inference reduction: 3.41``)."""
        if out is None:
            return None
        path = write_json(out, self.payload()).resolve()
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", file=sys.stderr, flush=True)
        return path
