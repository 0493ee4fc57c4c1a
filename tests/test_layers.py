"""The core library stays free of the orchestration layer, and its imports run one way."""

import ast
import subprocess
import sys
from pathlib import Path


def test_import_jude_does_not_import_zenml():
    code = (
        "import sys, jude, jude.config, jude.modeling.embedder, jude.modeling.templates, "
        "jude.evaluation.retrieval, jude.training.trainer, jude.training.pairs, jude.registry.mlflow_registry; "
        "print('zenml' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_module_under_jude_imports_zenml():
    root = Path(__file__).resolve().parents[1] / "jude"
    offenders = [
        str(p)
        for p in root.rglob("*.py")
        if any(line.strip().startswith(("import zenml", "from zenml")) for line in p.read_text().splitlines())
    ]
    assert offenders == []


# ---- imports run one way -------------------------------------------------------------------
# Lowest first. A module may import its own layer and lower layers, never a higher one. Function-level
# imports count too: a lazy import is still a dependency. A module is in the layer of its longest listed
# prefix: jude.data.schema (the vocabularies, importing no jude module) sits with jude.config, which takes
# its Literal types from it; the rest of jude.data is a layer up.
LAYERS = [
    ("jude", "jude.config", "jude.env", "jude.fsutils", "jude.optim", "jude.htmlreport", "jude.data.schema"),
    ("jude.data", "jude.stores"),  # entity tables; where vectors are kept (online, offline)
    ("jude.modeling",),  # templates, the embedder and its format, losses, the cross-encoder
    ("jude.labels",),  # judges render pairs with modeling.templates
    ("jude.evaluation",),  # retrieval metrics, pooling, reports
    ("jude.training",),  # validates with evaluation.retrieval
    ("jude.registry",),  # MLflow, the promotion gate (evaluates, judges)
    # monitoring cuts windows like training; the bootstrap reuses the nearline's hashing and stores; the ranker
    # reuses the bootstrap's backfill, the training split and the registry's resolver
    ("jude.serving", "jude.deploy", "jude.monitoring", "jude.nearline", "jude.bootstrap", "jude.ranker"),
    ("jude.cli", "jude.dashboard"),  # entry points
]
LAYER_OF = {unit: n for n, units in enumerate(LAYERS) for unit in units}
JUDE = Path(__file__).resolve().parents[1] / "jude"


def _layer(module: str) -> int:
    """The layer of a dotted jude module name: that of its longest prefix in ``LAYERS`` (``jude`` at worst)."""
    parts = module.split(".")
    return next(LAYER_OF[p] for p in (".".join(parts[:n]) for n in range(len(parts), 0, -1)) if p in LAYER_OF)


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _jude_imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, module) of every jude import in the file: module level, in functions, under TYPE_CHECKING."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative: the file's package, up (level - 1) packages
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            if source == "jude":  # `from jude import config` imports jude.config; `__version__` is jude itself
                is_module = {
                    alias.name: (root / alias.name).is_dir() or (root / f"{alias.name}.py").exists()
                    for alias in node.names
                }
                found += [(node.lineno, f"jude.{name}" if mod else "jude") for name, mod in is_module.items()]
            else:
                found.append((node.lineno, source))
    return [(line, name) for line, name in found if name == "jude" or name.startswith("jude.")]


def _upward_imports(root: Path) -> list[str]:
    """Every import of a higher layer under ``root``, as 'module (line n) imports other'."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        for line, imported in _jude_imports(path, root):
            if _layer(imported) > _layer(module):
                offenders.append(f"{module} (line {line}) imports {imported}")
    return offenders


def test_every_jude_package_has_a_layer():
    packages = {".".join(_module_name(p, JUDE).split(".")[:2]) for p in JUDE.rglob("*.py")}
    assert sorted(p for p in packages if p not in LAYER_OF) == [], "add the new package to LAYERS above"


def test_no_module_imports_a_higher_layer():
    assert _upward_imports(JUDE) == []


def test_the_layer_check_sees_function_level_and_relative_imports(tmp_path):
    root = tmp_path / "jude"
    (root / "modeling").mkdir(parents=True)
    (root / "config.py").write_text("")
    (root / "modeling" / "bad.py").write_text(
        "from jude import config, __version__\n"
        "from . import templates\n"
        "def f():\n"
        "    from jude.training.trainer import pick_negatives\n"
        "    from ..training import teacher\n"
    )
    assert _upward_imports(root) == [
        "jude.modeling.bad (line 4) imports jude.training.trainer",
        "jude.modeling.bad (line 5) imports jude.training",
    ]
