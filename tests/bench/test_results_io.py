"""bench/results_io.py: one JSON file per bench run with its context, rows and summary lines."""

from __future__ import annotations

import json
import os

import numpy as np
from support import bench_module

BenchResults = bench_module("results_io").BenchResults

KEYS = {"bench", "command", "date_utc", "finished_utc", "git_commit", "git_dirty", "cpu_count"}
KEYS |= {"load_avg_before", "load_avg_after", "settings", "rows", "summary", "summary_lines"}


def test_a_run_writes_its_context_rows_and_summary_lines(tmp_path, capsys):
    results = BenchResults("toy_bench", {"n": 3, "out": tmp_path / "r.json"}, argv=["--n", "3"])
    results.row(method="baseline", seconds=np.float32(0.5), peak=np.int64(7))
    results.row(method="other", seconds=1.0, peak=14)
    results.say("ratio: 2.00", ratio=np.float64(2.0))
    path = results.write(tmp_path / "sub" / "r.json")

    got = json.loads(path.read_text())
    assert KEYS <= set(got) and got["bench"] == "toy_bench"
    assert got["command"].startswith("python ") and got["command"].endswith("--n 3")
    assert got["cpu_count"] == os.cpu_count() and len(got["load_avg_before"]) == len(got["load_avg_after"]) == 3
    assert got["date_utc"].endswith("Z") and got["settings"] == {"n": 3, "out": str(tmp_path / "r.json")}
    assert got["rows"] == [
        {"method": "baseline", "seconds": 0.5, "peak": 7},
        {"method": "other", "seconds": 1.0, "peak": 14},
    ]
    assert got["summary"] == {"ratio": 2.0} and got["summary_lines"] == ["ratio: 2.00"]
    out = capsys.readouterr()
    assert out.out.strip().splitlines()[-1] == "ratio: 2.00"  # the bench's last line stays its figure
    assert "wrote" in out.err
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary file left


def test_without_out_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = BenchResults("toy_bench")
    results.say("ratio: 1.00", ratio=1.0)
    assert results.write(None) is None
    assert list(tmp_path.iterdir()) == []
