"""The core library stays free of the orchestration layer, and its imports run one way, without cycles.

Outside ``jude/``: ``steps/`` never import ``pipelines/`` (the pipelines wire the steps, not the other way),
``zenml_glue/`` (the ZenML glue both use) imports neither, and ``jude/`` imports none of the three.
"""

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
# prefix: jude.data.schema (the vocabularies; it imports only jude.entities, the entity contract its tables are
# derived from) sits with jude.config, which takes its Literal types from it; the rest of jude.data is a layer up.
LAYERS = [
    (
        "jude",
        "jude.config",
        "jude.env",
        "jude.fsutils",
        "jude.procs",  # ports and process groups: make dashboard and the team servers
        "jude.optim",
        "jude.htmlreport",
        "jude.entities",  # the entity contract: jude.data.schema derives its tables from it
        "jude.data.schema",
    ),
    ("jude.data", "jude.stores", "jude.retrieval"),  # entity tables; where vectors are kept; the job index (FAISS)
    ("jude.modeling",),  # templates, the embedder and its format, losses, the cross-encoder
    ("jude.labels",),  # judges render pairs with modeling.templates
    ("jude.evaluation",),  # retrieval metrics, pooling, reports, the promotion rule
    ("jude.training",),  # validates with evaluation.retrieval
    ("jude.registry",),  # MLflow, the promotion gate (evaluates, judges)
    # the real-time chain, one layer each: the nearline embeds through the server (its engine in process, or its
    # gRPC API) and checks events with its schemas; the bootstrap reuses the nearline's hashing and the stores;
    # the ranker reuses the bootstrap's backfill (and the training split and the registry's resolver). deploy
    # (serves a registry version) and monitoring (cuts windows like training, embeds with the champion) need
    # nothing above the registry: they sit with serving.
    ("jude.serving", "jude.deploy", "jude.monitoring"),
    ("jude.nearline",),
    ("jude.bootstrap",),
    ("jude.ranker",),
    ("jude.cli", "jude.dashboard", "jude.team"),  # entry points (team: `jude team up|down|status|join`)
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
    for line, source, names in _import_nodes(path, package):
        if source == "jude" and names:  # `from jude import config` imports jude.config; `__version__` is jude
            is_module = {name: (root / name).is_dir() or (root / f"{name}.py").exists() for name in names}
            found += [(line, f"jude.{name}" if mod else "jude") for name, mod in is_module.items()]
        else:
            found.append((line, source))
    return [(line, name) for line, name in found if name == "jude" or name.startswith("jude.")]


def _import_nodes(path: Path, package: str) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import in the file, at any depth; relative ones made absolute from
    ``package`` (the file's); ``names`` are a ``from`` import's names (empty for a plain ``import``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative: the file's package, up (level - 1) packages
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, source, [alias.name for alias in node.names]))
    return found


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


# ---- the layers above jude/ ------------------------------------------------------------------
REPO = JUDE.parent


def _imported(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones made absolute from ``package`` (the file's)."""
    return [(line, source) for line, source, _ in _import_nodes(path, package)]


def _imports_of(root: Path, forbidden: set[str]) -> list[str]:
    """Every import under ``root`` of a module whose top-level package is in ``forbidden``."""
    offenders = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for line, imported in _imported(path, package):
            if imported.split(".")[0] in forbidden:
                offenders.append(f"{path.relative_to(root.parent)} (line {line}) imports {imported}")
    return offenders


def test_steps_never_import_pipelines():
    """The pipelines wire the steps; a step that needs something a pipeline module has belongs in zenml_glue/."""
    assert _imports_of(REPO / "steps", {"pipelines"}) == []


def test_jude_never_imports_the_orchestration_layers():
    assert _imports_of(JUDE, {"steps", "pipelines", "zenml_glue", "materializers"}) == []


def test_zenml_glue_imports_neither_steps_nor_pipelines():
    assert _imports_of(REPO / "zenml_glue", {"steps", "pipelines"}) == []


def test_the_orchestration_checks_see_function_level_and_relative_imports(tmp_path):
    root = tmp_path / "steps"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "bad.py").write_text(
        "import os\nfrom zenml_glue.stack import EXPERIMENT\ndef f():\n    import pipelines.train\n"
        "    from pipelines import stop\n"
    )
    (root / "worse.py").write_text("from .bad import f\nfrom pipelines.train import train_pipeline as p\n")
    assert _imports_of(root, {"pipelines"}) == [
        "steps/bad.py (line 4) imports pipelines.train",
        "steps/bad.py (line 5) imports pipelines",
        "steps/worse.py (line 2) imports pipelines.train",
    ]


# ---- no import cycles ------------------------------------------------------------------------
# A cycle hidden by a function-level import is still a cycle: the two modules cannot be understood, tested or
# moved apart. Break one by moving what both need into a module lower down, not by importing it lazily.
def _module_graph(root: Path) -> dict[str, dict[str, int]]:
    """jude module -> {jude module it imports: the line of the first such import}, counting every import
    (module level, in functions, under TYPE_CHECKING). ``from p import m`` imports the module ``p.m`` when there
    is one, else ``p``; a name resolves to the longest module of ``root`` that prefixes it."""
    paths = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}

    def module_of(name: str) -> str | None:
        parts = name.split(".")
        return next((m for m in (".".join(parts[:n]) for n in range(len(parts), 0, -1)) if m in paths), None)

    graph: dict[str, dict[str, int]] = {m: {} for m in paths}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [module_of(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in paths else module_of(source)
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                if target is not None and target != module:
                    graph[module].setdefault(target, node.lineno)
    return graph


def _import_cycles(root: Path) -> list[str]:
    """Every elementary import cycle between modules under ``root``, each as 'a (line n) -> b (line m) -> a'."""
    graph = _module_graph(root)
    cycles = []

    def walk(start: str, path: list[str]) -> None:
        for nxt in sorted(graph[path[-1]]):
            if nxt == start:
                hops = [f"{m} (line {graph[m][n]})" for m, n in zip(path, path[1:] + [start])]
                cycles.append(" -> ".join(hops + [start]))
            elif nxt > start and nxt not in path:  # each cycle once: from its smallest module
                walk(start, path + [nxt])

    for start in sorted(graph):
        walk(start, [start])
    return cycles


def test_no_import_cycles_between_jude_modules():
    assert _import_cycles(JUDE) == []


def test_the_cycle_check_sees_function_level_relative_and_type_checking_imports(tmp_path):
    root = tmp_path / "jude"
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "__init__.py").write_text("")
    (root / "labels" / "judges.py").write_text("def make():\n    from jude.labels.rubric import RubricJudge\n")
    (root / "labels" / "rubric.py").write_text("from .judges import make\n")
    (root / "labels" / "report.py").write_text("from jude.labels import judges\n")  # one way: no cycle
    (root / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from jude import b\n")
    (root / "b.py").write_text("import jude.a\n")
    assert _import_cycles(root) == [
        "jude.a (line 3) -> jude.b (line 1) -> jude.a",
        "jude.labels.judges (line 2) -> jude.labels.rubric (line 1) -> jude.labels.judges",
    ]
