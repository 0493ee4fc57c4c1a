"""Where the ``champion`` stands, in words: what ``make train`` ends with, why a pipeline finds no champion,
and promotion by hand.

Every pipeline after training (deploy, monitor, bootstrap, ranker) serves or reads the ``champion``. When there
is none, each stops before it does any work and says the same thing: which versions exist, their ``promotion``
tag (why the gate or the registration kept each one back), and what to do:

- train a model that passes the promotion rule (``make train``), then ``make deploy``;
- or promote a version by hand, with a reason that is written into its tag:
  ``jude registry promote VERSION --reason TEXT``. Moving the alias in the MLflow UI works too; ``make
  sync-stages`` then brings the ZenML Model stages in line.

The version tags, :func:`describe_versions`, :func:`no_champion_message` and :data:`REMEDY` are
:mod:`jude.registry.standing` (which :mod:`jude.registry.uri` uses too), re-exported here.
"""

from __future__ import annotations

import getpass
import os
import re
from typing import Any

from jude.registry.standing import PROMOTION_TAG, WAS_CHAMPION_TAG, describe_versions
from jude.registry.standing import REMEDY as REMEDY  # re-exported (see the module docstring)
from jude.registry.standing import no_champion_message as no_champion_message  # re-exported


def training_outcome(record: dict[str, Any]) -> str:
    """The last line of ``make train``: what was registered, with which aliases, and why (or why nothing was).

    ``record`` is ``register_embedder``'s output: ``registered``, ``name``, ``version``, ``variant``, ``aliases``
    (the new version's), ``promotion`` (its tag) and ``champion``, the version holding ``champion`` once the new
    one is registered (None: no champion). A record without ``champion`` (written before it was recorded) is read
    from the promotion tag, which names the champion a later version waits to meet.
    """
    if not record.get("registered"):
        return (
            f"jude: NOTHING REGISTERED for {record.get('name', 'the model')} and no champion: {record.get('reason')}. "
            "Train longer or on more data, or change the rule (promotion: in the config)"
        )
    aliases = record.get("aliases") or []
    version, promotion = record["version"], record.get("promotion", "")
    head = f"jude: registered {record['name']} v{version} ({record.get('variant', '?')})"
    if "champion" in aliases:
        return f"{head} as champion — {promotion}"
    promote = f"to promote it anyway: `jude registry promote {version} --reason TEXT`"
    champion = record["champion"] if "champion" in record else _champion_in_tag(promotion)
    if champion is not None and str(champion) != str(version):
        return (
            f"{head} as challenger; v{champion} stays champion — {promotion}. "
            f"`make deploy` runs the gate (v{version} against champion v{champion}); {promote}"
        )
    return f"{head} as challenger only, NO CHAMPION — {promotion}. `make deploy` runs the gate again; {promote}"


_WAITS_FOR_CHAMPION = re.compile(r"compares it with champion v(\d+)")  # jude.registry.mlflow_registry._waiting_note


def _champion_in_tag(promotion: str) -> str | None:
    """The champion a later version's registration tag names (``… compares it with champion v3``), else None."""
    found = _WAITS_FOR_CHAMPION.search(promotion or "")
    return found.group(1) if found else None


def promote_by_hand(name: str, version: str, reason: str, who: str | None = None, client: Any = None) -> str:
    """Make ``version`` the champion by hand; the former champion becomes ``previous``. Returns the tag written.

    ``reason`` must say why (it is written, with who, into the version's ``promotion`` tag). Raises
    ``ValueError`` for an empty reason or an unknown version.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not reason or not reason.strip():
        raise ValueError("promotion by hand needs --reason: say why this version should be champion")
    client = client or MlflowClient()
    try:
        client.get_model_version(name, str(version))
    except MlflowException as e:
        raise ValueError(
            f"registered model {name!r} has no version {version!r}: {describe_versions(client, name)}"
        ) from e
    who = who or os.environ.get("JUDE_USER") or _user()
    from jude.registry.lock import promotion_lock

    with promotion_lock(name):  # not in the middle of a gate (jude.registry.lock)
        return _promote_by_hand(client, name, str(version), reason, who)


def _promote_by_hand(client: Any, name: str, version: str, reason: str, who: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        former = str(client.get_model_version_by_alias(name, "champion").version)
    except MlflowException:
        former = None
    if former == str(version):
        return f"v{version} is already champion"
    tag = f"promoted to champion by hand by {who} — {reason.strip()}"
    if former is not None:
        client.set_registered_model_alias(name, "previous", former)
        client.set_model_version_tag(
            name, former, PROMOTION_TAG, f"replaced as champion by version {version} (by hand, by {who}) — {reason}"
        )
    client.set_registered_model_alias(name, "champion", str(version))
    client.set_model_version_tag(name, str(version), PROMOTION_TAG, tag)
    client.set_model_version_tag(name, str(version), WAS_CHAMPION_TAG, "true")
    return tag


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a container without /etc/passwd entry
        return f"uid {os.getuid()}"
