"""MLflow: tracking, the model registry and its aliases.

The registered model is ``jude-embedder``; its versions carry the aliases
``challenger`` (the latest trained), ``champion`` (the one served) and
``previous`` (the champion before the last promotion).

A version is an MLflow pyfunc model whose artifact ``jude_model`` is the
sentence-transformers directory (``jude.json`` inside), so

- ``mlflow.pyfunc.load_model("models:/jude-embedder@champion").predict(["text"])``
  embeds texts anywhere MLflow runs, and
- :func:`download_model` gives the plain directory to ``Embedder.load``,
  ``SentenceTransformer(...)`` or ``jude serve``, always by the pinned version
  that :func:`jude.registry.uri.resolve` found for the URI.

The tracking store defaults to sqlite under ``<project>/.jude/`` (the project is
``$JUDE_HOME`` or the working directory); ``$MLFLOW_TRACKING_URI`` overrides it
(:mod:`jude.registry.tracking`). That module, and the version tags ``PROMOTION_TAG`` and ``WAS_CHAMPION_TAG``
(:mod:`jude.registry.standing`), sit below :mod:`jude.registry.uri`, which uses them without importing this
module; their names are re-exported here.

A run that is stopped never leaves half a version: :func:`log_model_version`
holds SIGINT/SIGTERM during the registry writes and deletes a version whose
aliases could not be set. A run killed outright (``kill -9``) cannot end its
MLflow run; :func:`fail_stale_runs` marks such runs KILLED the next time.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from jude.registry.descriptions import headline_tags, model_description, version_description
from jude.registry.lock import promotion_lock
from jude.registry.standing import PROMOTION_TAG, WAS_CHAMPION_TAG
from jude.registry.tracking import project_dir as project_dir  # re-exported, as are the names below
from jude.registry.tracking import resolve_tracking_uri, state_dir
from jude.registry.uri import ResolvedModel, pinned_uri, resolve

MODEL_ARTIFACT = "jude_model"
EVAL_SET_ARTIFACT = "eval/eval_set.json"
ALIASES = ("challenger", "champion", "previous")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# who runs an MLflow run (tag_owner), so that a later run can tell one that a killed process left RUNNING
OWNER_HOST_TAG, OWNER_PID_TAG = "jude.host", "jude.pid"
# MLflow 3's UI opens an experiment in its GenAI (traces) view unless told it holds model training runs;
# this tag (read by the UI as the experiment's kind) opens it in the classic "Model training" runs view.
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"


def configure(uri: str | None = None, experiment: str | None = None) -> str:
    """Point mlflow at the tracking store (and experiment, created with its artifacts under .jude/)."""
    tracking = resolve_tracking_uri(uri)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    if experiment:
        client = MlflowClient(tracking)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            location = None
            if tracking.startswith("sqlite:"):
                db = Path(tracking.removeprefix("sqlite:///"))
                location = (db.parent / "mlartifacts").as_uri()
            client.create_experiment(experiment, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING})
        elif found.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:  # made before the tag, or by someone else
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
        mlflow.set_experiment(experiment)
    return tracking


def tag_owner() -> None:
    """Tag the active MLflow run with this process (host and pid), so a later run can tell if it was left behind."""
    mlflow.set_tags({OWNER_HOST_TAG: socket.gethostname(), OWNER_PID_TAG: str(os.getpid())})


def fail_stale_runs(experiment: str, tracking_uri: str | None = None) -> list[str]:
    """Mark KILLED the runs of ``experiment`` that a process now gone left RUNNING; returns their ids.

    A process ended by ``kill -9`` (or the OOM killer) cannot end its MLflow run.
    A run counts as stale only when :func:`tag_owner` recorded this host and that
    pid no longer exists: runs of another host, of a live process or without the
    tags are left alone, since they may still be running.
    """
    client = MlflowClient(resolve_tracking_uri(tracking_uri))
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    host = socket.gethostname()
    stale = []
    for run in client.search_runs([found.experiment_id], filter_string="attributes.status = 'RUNNING'"):
        pid = run.data.tags.get(OWNER_PID_TAG, "")
        if run.data.tags.get(OWNER_HOST_TAG) != host or not pid.isdigit() or _process_exists(int(pid)):
            continue
        client.set_terminated(run.info.run_id, "KILLED")
        client.set_tag(run.info.run_id, "jude.stale", f"process {pid} exited without ending the run; marked KILLED")
        stale.append(run.info.run_id)
    return stale


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the pid exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass
class ModelVersionInfo:
    name: str
    version: str
    run_id: str | None
    aliases: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""

    @property
    def uri(self) -> str:
        return pinned_uri(self.name, self.version)


class JudeEmbedderPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: a list (or a one-column frame) of texts -> a frame of embeddings.

    Inputs are raw texts; render entities with ``jude.modeling.templates`` first
    (or use ``jude serve``'s ``/v1/entities/{type}/embed``).
    """

    def load_context(self, context: Any) -> None:
        from jude.modeling.embedder import Embedder

        self.embedder = Embedder.load(context.artifacts[MODEL_ARTIFACT])

    def predict(self, context, model_input: list[str], params=None) -> list[list[float]]:
        # list[str] type hints let MLflow infer the signature and validate inputs (texts in, vectors out)
        return self.embedder.encode([str(t) for t in model_input]).tolist()


def log_model_version(
    model_dir: str | Path,
    model_name: str,
    metrics: dict[str, float] | None = None,
    eval_set: dict | None = None,
    tags: dict[str, str] | None = None,
    first_champion: tuple[bool, str] | None = None,
    variant: str = "finetuned",
    data: str = "",
) -> ModelVersionInfo:
    """Inside an active MLflow run: log the model (named ``model_name``), register a new version, alias it.

    The new version becomes ``challenger``. The model's first version becomes
    ``champion`` too only when ``first_champion`` is ``(True, why)``: the caller
    found that it beats the base model on the held-out set
    (:func:`jude.registry.promotion.first_version_verdict`). Otherwise, and for
    every later version, it waits for the deploy pipeline's gate, which compares
    it with the champion (or, while there is none, the base model). Every version's
    ``promotion`` tag says which and why.

    ``metrics`` (the evaluation's ``base/...``, ``<variant>/...`` figures on ``eval_set``)
    give the version its headline tags and description (:mod:`jude.registry.descriptions`),
    with ``data``, a phrase saying what it was trained on; the registered model's own
    description (what it is, the aliases, how to serve it) is written too.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_model_version must be called inside an active MLflow run")
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "jude.json").read_text()) if (model_dir / "jude.json").exists() else {}
    if eval_set is not None:
        mlflow.log_dict(eval_set, EVAL_SET_ARTIFACT)
    info = mlflow.pyfunc.log_model(
        name=model_name,  # the logged model's name in the run's Models tab (MLflow 3 logged models)
        python_model=str(Path(__file__).with_name("pyfunc_model.py")),  # model from code, no pickle
        artifacts={MODEL_ARTIFACT: str(model_dir)},
        pip_requirements=["jude", "torch", "transformers", "peft", "sentence-transformers"],
        metadata={"jude": meta},
    )
    client = MlflowClient()
    # Registrations and promotions of the model take turns (jude.registry.lock): two trainings that finish
    # together must not both find "no version yet" and both crown themselves champion.
    with promotion_lock(model_name):
        previous_challenger = get_version(model_name, "challenger")
        champion = get_version(model_name, "champion")
        version_tags = {"run_id": run.info.run_id, **headline_tags(metrics, variant, eval_set), **(tags or {})}
        first = not client.search_model_versions(f"name='{model_name}'")
        crowned = first and first_champion is not None and first_champion[0]
        version_tags[PROMOTION_TAG] = _first_version_note(first_champion) if first else _waiting_note(champion)
        if crowned:
            version_tags[WAS_CHAMPION_TAG] = "true"
        # The version and its aliases land together or not at all: a stop signal waits the few
        # milliseconds until they are written, and an error half-way removes the version again.
        with _signals_held():
            mv = mlflow.register_model(info.model_uri, model_name, tags=version_tags)
            try:
                client.set_registered_model_alias(model_name, "challenger", mv.version)
                if crowned:
                    client.set_registered_model_alias(model_name, "champion", mv.version)
            except BaseException:
                _undo_registration(model_name, str(mv.version), previous_challenger)
                raise
    version = str(mv.version)
    client.update_model_version(
        model_name, version, version_description(model_name, version, meta, metrics, variant, eval_set, data)
    )
    client.update_registered_model(model_name, model_description(model_name))
    return version_info(model_name, version)


def _waiting_note(champion: ModelVersionInfo | None) -> str:
    """The ``promotion`` tag of a later version at registration: it waits for the gate, against what."""
    against = f"champion v{champion.version}" if champion else "the last champion, or else the base model"
    return (
        f"waiting for the promotion gate — registered as challenger; `python run.py --pipeline deploy` "
        f"compares it with {against}"
    )


def _first_version_note(verdict: tuple[bool, str] | None) -> str:
    """The ``promotion`` tag of a model's first version: champion or not, and why."""
    if verdict is None:
        return (
            "kept as challenger — the first version, registered without a comparison with the base model; "
            "the deploy pipeline's gate compares it with the base model"
        )
    crowned, why = verdict
    return f"{'promoted to champion' if crowned else 'kept as challenger'} — the first version: {why}"


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done, then deliver them; a no-op off the main thread.

    Python runs signal handlers in the main thread only, so swapping the handlers
    there for a recorder holds the signals whatever threads torch has started.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for sig in held:
            signal.raise_signal(sig)  # the restored handler runs now


def _undo_registration(name: str, version: str, previous_challenger: ModelVersionInfo | None) -> None:
    """Delete a version whose aliases could not all be set, and give ``challenger`` back to its holder."""
    client = MlflowClient()
    client.delete_model_version(name, version)
    if previous_challenger is not None:
        client.set_registered_model_alias(name, "challenger", previous_challenger.version)


def version_info(name: str, version: str) -> ModelVersionInfo:
    client = MlflowClient()
    mv = client.get_model_version(name, version)
    run_id = mv.run_id or (mv.tags or {}).get("run_id")
    metrics = client.get_run(run_id).data.metrics if run_id else {}
    return ModelVersionInfo(
        name=name,
        version=str(mv.version),
        run_id=run_id,
        aliases=list(getattr(mv, "aliases", []) or []),
        metrics=dict(metrics),
        source=mv.source or "",
    )


def get_version(name: str, alias: str) -> ModelVersionInfo | None:
    """The version holding ``alias``, or None (also when the model does not exist yet)."""
    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except mlflow.exceptions.MlflowException:
        return None
    return version_info(name, str(mv.version))


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)


def _find_model_dir(root: Path) -> Path:
    for cand in [root / "artifacts" / MODEL_ARTIFACT, root / MODEL_ARTIFACT, root]:
        if (cand / "config.json").exists():
            return cand
    for meta in root.rglob("jude.json"):
        return meta.parent
    raise FileNotFoundError(f"no model directory (config.json) under {root}")


def download_model(model: str | ResolvedModel, dst: str | None = None, tracking_uri: str | None = None) -> Path:
    """A local sentence-transformers directory for ``model``.

    ``model`` is a :class:`jude.registry.uri.ResolvedModel`, or a URI that is
    resolved first (:func:`jude.registry.uri.resolve`): ``models:/name@alias``,
    ``models:/name/version``, ``runs:/...``, ``minilm`` or a local directory
    (returned as is). A registry model is always downloaded by its pinned
    version, so what lands on disk is the version the caller resolved and
    reports, even if the alias has moved since. Registry versions are cached
    under ``.jude/models/<name>-v<version>`` (or ``dst``).
    """
    if not isinstance(model, ResolvedModel):
        model = resolve(model, tracking_uri)
    uri = model.pinned_uri
    if model.local:
        local = Path(uri).expanduser()
        if local.exists():
            return local
        from jude.modeling.model_dir import packaged_minilm_path

        return packaged_minilm_path()  # resolve() lets only an existing path or 'minilm' through
    tracking = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    # another tracking store (a team server) numbers its versions from 1 too: its downloads get their own folder
    cache = state_dir() / "models"
    if tracking != f"sqlite:///{state_dir() / 'mlflow.db'}":
        cache = cache / hashlib.sha256(tracking.encode()).hexdigest()[:12]
    if model.registered:
        target = Path(dst) if dst else cache / f"{model.name}-v{model.version}"
    else:
        target = Path(dst) if dst else cache / uri.removeprefix("runs:/").replace("/", "_")
    if target.exists():
        return _find_model_dir(target)
    tmp = target.with_name(target.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp))
    tmp.rename(target)
    return _find_model_dir(target)


def load_eval_set(version: ModelVersionInfo) -> dict:
    """The held-out evaluation set logged with a version's training run."""
    if not version.run_id:
        raise FileNotFoundError(f"model version {version.uri} has no training run to read the eval set from")
    return mlflow.artifacts.load_dict(f"runs:/{version.run_id}/{EVAL_SET_ARTIFACT}")
