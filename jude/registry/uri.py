"""Model URIs: one parser and one resolver for everything that loads a model.

The server, the monitor, the deployer and the registry's own download accept

- ``models:/<name>@<alias>``: the version the alias points at *now*,
- ``models:/<name>/<version>``: that version (a positive integer),
- a local sentence-transformers directory, or ``minilm`` (the packaged base
  model): used as is,
- ``runs:/<run_id>/<path>``: a run's artifact, which never changes.

An alias moves (the promotion gate moves ``champion``), so a caller that
downloads by alias and looks the version up separately can serve one version
and report another. :func:`resolve` therefore turns a URI into a
:class:`ResolvedModel` once; the caller downloads its ``pinned_uri``
(``models:/<name>/<version>``) and reports its ``version``, both from the same
lookup.

:func:`parse_model_uri` only reads the string (no registry, no filesystem), so
the deployer can pin a URI without a tracking store. MLflow is imported only
when a registry URI is resolved: a local directory never needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jude.registry.standing import no_champion_message
from jude.registry.tracking import resolve_tracking_uri

MODELS_SCHEME = "models:/"
RUNS_SCHEME = "runs:/"
PACKAGED_MODEL = "minilm"  # the packaged all-MiniLM-L6-v2 (jude.modeling.model_dir.packaged_minilm_path)

# name: anything but '/' and '@'; then '@alias' or '/version'
_MODELS_RE = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))")
_FORMS = "models:/<name>@<alias>, models:/<name>/<version>, runs:/<run_id>/<path>, a local directory or 'minilm'"


class ModelURIError(ValueError):
    """A model URI that is not one of the accepted forms. The message names the URI."""


class ModelNotFoundError(FileNotFoundError):
    """A well-formed model URI that points at nothing: no such directory, model, version or alias."""


class NoChampionError(ModelNotFoundError):
    """``models:/<name>@champion`` while the model has no champion: the message gives each version's ``promotion``
    tag (why it is not champion) and what to do (:func:`jude.registry.standing.no_champion_message`)."""


@dataclass(frozen=True)
class ModelRef:
    """What a model URI says, before any lookup: a registry name with an alias or a version, or neither."""

    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class ResolvedModel:
    """A model URI resolved to one immutable model.

    For a registry URI: ``name``, ``version`` (the alias's target at lookup
    time), ``pinned_uri`` = ``models:/<name>/<version>`` and the ``alias`` it was
    reached by (None for a version URI). For a local directory, ``minilm`` or a
    ``runs:/`` URI: no name or version, and ``pinned_uri`` is the URI as given.
    """

    name: str | None
    version: str | None
    pinned_uri: str
    alias: str | None = None

    @property
    def registered(self) -> bool:
        """True for a registry version (``models:/...``)."""
        return self.version is not None

    @property
    def local(self) -> bool:
        """True for a local directory or ``minilm``: nothing to download."""
        return not self.registered and not self.pinned_uri.startswith(RUNS_SCHEME)

    @property
    def label(self) -> str:
        """How logs and reports name the model: ``<name>/<version>``, else the URI itself."""
        return f"{self.name}/{self.version}" if self.registered else self.pinned_uri


def pinned_uri(name: str, version: str | int) -> str:
    """``models:/<name>/<version>``: the URI of one registry version, which no alias move can change."""
    return f"{MODELS_SCHEME}{name}/{version}"


def parse_model_uri(uri: str) -> ModelRef:
    """Read a model URI without looking anything up.

    ``models:/name@alias`` and ``models:/name/<n>`` give the name and the alias or
    version; anything else that is not a ``models:/`` URI (a path, ``minilm``,
    ``runs:/...``) gives a :class:`ModelRef` with no name. A ``models:/`` URI of
    another shape (no alias or version, a version that is not a positive
    integer, an empty alias, extra path parts) raises :class:`ModelURIError`.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ModelURIError(f"model URI must be a non-empty string, got {uri!r}; expected {_FORMS}")
    if not uri.startswith(MODELS_SCHEME):
        return ModelRef(uri=uri)
    m = _MODELS_RE.fullmatch(uri)
    if m is None:
        raise ModelURIError(
            f"model URI {uri!r} is malformed: a registry URI is models:/<name>@<alias> or models:/<name>/<version>"
        )
    version = m.group("version")
    if version is not None and not (version.isdigit() and int(version) > 0):
        raise ModelURIError(f"model URI {uri!r}: the version must be a positive integer, got {version!r}")
    return ModelRef(uri=uri, name=m.group("name"), version=version, alias=m.group("alias"))


def resolve(uri: str, tracking_uri: str | None = None) -> ResolvedModel:
    """Resolve ``uri`` to one immutable model (see the module docstring).

    Registry URIs are looked up in ``tracking_uri`` (default: ``$MLFLOW_TRACKING_URI``,
    else sqlite under ``.jude/``, see :func:`jude.registry.tracking.resolve_tracking_uri`).
    Raises :class:`ModelURIError` for a malformed URI and :class:`ModelNotFoundError`
    for an unknown directory, registered model, version or alias; both name the URI.
    """
    ref = parse_model_uri(uri)
    if ref.name is None:
        if uri.startswith(RUNS_SCHEME) or uri == PACKAGED_MODEL or Path(uri).expanduser().exists():
            return ResolvedModel(name=None, version=None, pinned_uri=uri)
        raise ModelNotFoundError(f"model {uri!r}: no such local directory, and not a registry URI ({_FORMS})")
    return _resolve_registered(ref, tracking_uri)


def _resolve_registered(ref: ModelRef, tracking_uri: str | None) -> ResolvedModel:
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    assert ref.name is not None
    tracking = resolve_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    where = f"in the registry at {tracking}"

    def missing(e: MlflowException) -> bool:
        return e.error_code == "RESOURCE_DOES_NOT_EXIST"

    try:
        registered = client.get_registered_model(ref.name)
    except MlflowException as e:
        if missing(e):
            raise ModelNotFoundError(f"model {ref.uri!r}: no registered model {ref.name!r} {where}") from e
        raise
    if ref.alias is not None:
        try:
            version = str(client.get_model_version_by_alias(ref.name, ref.alias).version)
        except MlflowException as e:
            aliases = dict(getattr(registered, "aliases", None) or {})
            if ref.alias in aliases:  # the alias exists: this is another failure, not a missing alias
                raise
            if ref.alias == "champion":
                raise NoChampionError(f"model {ref.uri!r}: {no_champion_message(client, ref.name, where)}") from e
            known = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "none"
            raise ModelNotFoundError(
                f"model {ref.uri!r}: registered model {ref.name!r} has no alias {ref.alias!r} {where} "
                f"(its aliases: {known})"
            ) from e
    else:
        version = str(ref.version)
        try:
            client.get_model_version(ref.name, version)
        except MlflowException as e:
            if missing(e):
                raise ModelNotFoundError(
                    f"model {ref.uri!r}: registered model {ref.name!r} has no version {version} {where}"
                ) from e
            raise
    return ResolvedModel(name=ref.name, version=version, pinned_uri=pinned_uri(ref.name, version), alias=ref.alias)
