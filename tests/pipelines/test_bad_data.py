"""A bad data file ends ``run.py`` with the named error as its last line and exit code 2 (traceback: --debug)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import run  # noqa: E402
from jude.config import SyntheticConfig  # noqa: E402
from jude.data.io import save_marketplace  # noqa: E402
from jude.data.schema import DataValidationError  # noqa: E402
from jude.data.synthetic import generate_marketplace  # noqa: E402
from jude.monitoring.drift import DriftAlert  # noqa: E402


@pytest.mark.parametrize(
    "error, code",
    [
        (DataValidationError("data/jobs.csv: missing column(s) ['title']"), 2),  # bad input
        (FileNotFoundError("data: table 'jobs' not found"), 2),
        (DriftAlert("embedding drift detected in 1 of 3 entity type(s)", []), 1),  # a run that failed
        (KeyError("job_id"), None),  # unexpected: keeps its traceback
    ],
)
def test_exit_codes_of_errors(error, code):
    assert run.exit_code_for(error) == code


@pytest.mark.slow
def test_a_missing_column_is_the_last_line_and_exit_2_without_a_traceback(tmp_path):
    data = tmp_path / "data"
    save_marketplace(
        generate_marketplace(SyntheticConfig(n_jobs=20, n_members=10, days=10, impressions_per_member=3)), data, "csv"
    )
    jobs = pd.read_csv(data / "jobs.csv", dtype=str)
    jobs.drop(columns=["title"]).to_csv(data / "jobs.csv", index=False)
    config = tmp_path / "files.yaml"
    config.write_text(f"parameters:\n  data: {{source: files, path: {data}}}\n")
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(tmp_path / "zenml"),
        "ZENML_LOCAL_STORES_PATH": str(tmp_path / "zenml" / "local_stores"),
        "JUDE_HOME": str(tmp_path),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    res = subprocess.run(
        [sys.executable, "run.py", "--pipeline", "train", "--config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: DataValidationError: ")
    assert f"{data / 'jobs.csv'}: missing column(s) ['title']" in last
    assert "Traceback" not in res.stdout + res.stderr
