"""run.py refuses a bad config file whole, before ZenML is imported and before any step runs."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_main(args: list[str]) -> subprocess.CompletedProcess:
    """``run.main(args)`` in a fresh interpreter; stdout ends with its exit code and whether zenml got imported."""
    code = f"import sys, run; rc = run.main({args!r}); print(rc, 'zenml' in sys.modules)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "pipeline, text, named",
    [
        ("train", "enable_cache: false\nparameter:\n  train: {max_steps: 1}\n", "unknown top-level key 'parameter'"),
        ("deploy", "parameters:\n  deplyo: {target: local}\n", "unknown parameter section(s) ['deplyo']"),
        ("monitor", "parameters:\n  monitor: {entity_types: [jobs]}\n", "monitor.entity_types.0"),
        ("train", "parameters:\n  model: {dtype: float16}\n  scale: {bf16: true}\n", "scale.bf16=true"),
    ],
)
def test_a_bad_config_exits_2_naming_the_problem_without_importing_zenml(tmp_path, pipeline, text, named):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    res = _run_main(["--pipeline", pipeline, "--config", str(path)])
    assert res.stdout.split() == ["2", "False"], res.stderr[-2000:]
    assert named in res.stderr.strip().splitlines()[-1]


def test_the_script_prints_the_error_last_and_exits_2(tmp_path):
    path = tmp_path / "deploy.yaml"
    path.write_text("parameters:\n  deploy: {target: local}\n  promotoin: {min_ndcg_gain: 0.01}\n")
    res = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "--pipeline", "deploy", "--config", str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert "'promotoin'" in last and "did you mean 'promotion'" in last


@pytest.mark.parametrize("pipeline", ["train", "deploy", "monitor"])
def test_the_default_configs_pass(pipeline):
    import run

    cfg = run.load_config(pipeline, run.DEFAULT_CONFIGS[pipeline])
    assert type(cfg).pipeline == pipeline
