"""The core library stays free of the orchestration layer."""

import subprocess
import sys


def test_import_jude_does_not_import_zenml():
    code = ("import sys, jude, jude.config, jude.modeling.embedder, jude.modeling.templates, "
            "jude.evaluation.retrieval, jude.training.trainer, jude.training.pairs, jude.registry.mlflow_registry; "
            "print('zenml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_module_under_jude_imports_zenml():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "jude"
    offenders = [str(p) for p in root.rglob("*.py")
                 if any(line.strip().startswith(("import zenml", "from zenml")) for line in p.read_text().splitlines())]
    assert offenders == []
