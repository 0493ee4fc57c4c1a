"""Which entities fall in the reference and the current window, and embedding them.

- **reference**: the entities of the training period, i.e. what the champion
  learnt from. Jobs posted, and members updated, before the end of the
  training period. That end is ``monitor.reference_end`` when set, else the
  same time split the training pipeline uses: the first
  ``1 - val_fraction - test_fraction`` of the period covered by the
  interactions.
- **current**: the entities created or updated in the last
  ``monitor.current_days`` days of the data (the data's own "today", its
  latest timestamp, so a replay of old data behaves like production).

Profiles and resumes are two views of the same members table, so they share a
window; jobs have their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from jude.config import MonitorConfig
from jude.data.schema import ENTITY_TYPES
from jude.monitoring.drift import DriftInputError, EmbeddingSet

ID_COLUMN = {"job": "job_id", "profile": "member_id", "resume": "member_id"}


@dataclass(frozen=True)
class Windows:
    """The time bounds of both windows: reference = [.., reference_end), current = [current_start, now]."""

    reference_end: pd.Timestamp
    current_start: pd.Timestamp
    now: pd.Timestamp


def _table(entity_type: str, jobs: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    if entity_type not in ENTITY_TYPES:
        raise DriftInputError(
            f"monitor.entity_types: unknown entity type {entity_type!r}; expected {list(ENTITY_TYPES)}"
        )
    return jobs if entity_type == "job" else members


def _created(entity_type: str, table: pd.DataFrame) -> pd.Series:
    """When an entity came into being: a job's posting time; a member's last update (no creation time is kept)."""
    col = "posted_at" if entity_type == "job" else "updated_at"
    return pd.to_datetime(table[col])


def _touched(entity_type: str, table: pd.DataFrame) -> pd.Series:
    """The latest of created / updated."""
    updated = pd.to_datetime(table["updated_at"])
    if entity_type == "job":
        return pd.concat([pd.to_datetime(table["posted_at"]), updated], axis=1).max(axis=1)
    return updated


def compute_windows(
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    interactions: pd.DataFrame | None,
    cfg: MonitorConfig,
    val_fraction: float,
    test_fraction: float,
) -> Windows:
    """Window bounds from the data's timestamps and the configuration."""
    stamps = [
        pd.to_datetime(jobs["posted_at"]),
        pd.to_datetime(jobs["updated_at"]),
        pd.to_datetime(members["updated_at"]),
    ]
    now = max(s.max() for s in stamps if len(s))
    if cfg.reference_end is not None:
        try:
            reference_end = pd.Timestamp(cfg.reference_end)
        except ValueError as e:
            raise ValueError(f"monitor.reference_end must be an ISO date, got {cfg.reference_end!r}") from e
        if reference_end.tzinfo is not None:
            reference_end = reference_end.tz_convert(None)
    else:
        # The training pipeline's own time split: the first (1 - val - test) of the interaction period.
        if interactions is None or len(interactions) == 0:
            raise DriftInputError("no interactions to find the end of the training period; set monitor.reference_end")
        from jude.training.pairs import cut_points

        reference_end = cut_points(interactions, val_fraction, test_fraction)[0]
    current_start = now - pd.Timedelta(days=cfg.current_days)
    return Windows(reference_end=reference_end, current_start=current_start, now=now)


def reference_entities(entity_type: str, jobs: pd.DataFrame, members: pd.DataFrame, w: Windows) -> pd.DataFrame:
    """Entities of the training period (created before ``w.reference_end``)."""
    table = _table(entity_type, jobs, members)
    return table[(_created(entity_type, table) < w.reference_end).to_numpy()].reset_index(drop=True)


def current_entities(entity_type: str, jobs: pd.DataFrame, members: pd.DataFrame, w: Windows) -> pd.DataFrame:
    """Entities created or updated since ``w.current_start``."""
    table = _table(entity_type, jobs, members)
    return table[(_touched(entity_type, table) >= w.current_start).to_numpy()].reset_index(drop=True)


def embed_window(
    embedder: Any, entity_type: str, frame: pd.DataFrame, window: str, model_version: str, show_progress: bool = True
) -> EmbeddingSet:
    """Render each entity with the model's template and embed it: an :class:`EmbeddingSet` with provenance.

    An empty window is not embedded; it is an error naming the entity type and window.
    """
    if len(frame) == 0:
        raise DriftInputError(
            f"the {window} window of {entity_type!r} is empty (0 entities); widen the window "
            f"(monitor.current_days / monitor.reference_end)"
        )
    vectors = embedder.encode_entities(entity_type, frame, show_progress=show_progress)  # (N, D)
    meta = embedder.meta
    return EmbeddingSet(
        entity_type=entity_type,
        ids=frame[ID_COLUMN[entity_type]].astype(str).to_numpy(),
        vectors=vectors,
        model_version=str(model_version),
        base_model=str(meta.base_model),
        templates_version=f"{meta.templates_version}/{meta.template_style}",
        window=window,
    )


def sample_entities(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows, seeded, in their original order: sampling *before* embedding saves the expensive part."""
    if len(frame) <= n:
        return frame
    return frame.sample(n=n, random_state=seed).sort_index().reset_index(drop=True)


def embed_windows(
    embedder: Any,
    model_version: str,
    reference: tuple[pd.DataFrame, pd.DataFrame],
    current: tuple[pd.DataFrame, pd.DataFrame],
    interactions: pd.DataFrame | None,
    cfg: MonitorConfig,
    val_fraction: float,
    test_fraction: float,
    show_progress: bool = True,
) -> list[EmbeddingSet]:
    """Select, sample and embed both windows of every configured entity type.

    ``reference`` and ``current`` are ``(jobs, members)`` tables: the same
    tables in production; for the synthetic demo the current tables may come
    from a shifted marketplace on the same timeline. Returns
    ``[reference, current]`` per entity type, in ``cfg.entity_types`` order.
    """
    ref_jobs, ref_members = reference
    cur_jobs, cur_members = current
    w_ref = compute_windows(ref_jobs, ref_members, interactions, cfg, val_fraction, test_fraction)
    w_cur = compute_windows(
        cur_jobs,
        cur_members,
        None,
        cfg.model_copy(update={"reference_end": str(w_ref.reference_end)}),
        val_fraction,
        test_fraction,
    )
    sets: list[EmbeddingSet] = []
    for i, entity_type in enumerate(cfg.entity_types):
        ref = sample_entities(
            reference_entities(entity_type, ref_jobs, ref_members, w_ref), cfg.sample_size, cfg.seed + 2 * i
        )
        cur = sample_entities(
            current_entities(entity_type, cur_jobs, cur_members, w_cur), cfg.sample_size, cfg.seed + 2 * i + 1
        )
        sets.append(embed_window(embedder, entity_type, ref, "reference", model_version, show_progress))
        sets.append(embed_window(embedder, entity_type, cur, "current", model_version, show_progress))
    return sets


def current_tables(
    jobs: pd.DataFrame, members: pd.DataFrame, data: Any, cfg: MonitorConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables the current window is cut from.

    In production these are the same tables as the reference. For the demo
    (``monitor.synthetic_shift`` other than ``none``) they come from the
    synthetic marketplace regenerated with that shift on the same timeline,
    so the current window holds new roles, new cities or another writing style.
    """
    if cfg.synthetic_shift == "none":
        return jobs, members
    if data.source != "synthetic":
        raise ValueError(
            f"monitor.synthetic_shift={cfg.synthetic_shift!r} needs data.source='synthetic', got {data.source!r}"
        )
    from jude.data.synthetic import generate_marketplace

    shifted = generate_marketplace(data.synthetic.model_copy(update={"shift": cfg.synthetic_shift}))
    return shifted.jobs, shifted.members


def load_monitored_model(monitor: MonitorConfig, registry: Any) -> tuple[Any, str]:
    """The model to monitor (the champion by default) and its version id.

    The URI is resolved once (:func:`jude.registry.uri.resolve`) and the pinned
    version downloaded, so the version id always names the model that embeds,
    even if the alias moves meanwhile: ``<name>/<n>`` for a registry model, the
    path for a local directory.
    """
    from jude.modeling.embedder import Embedder
    from jude.registry.mlflow_registry import configure, download_model
    from jude.registry.uri import ModelNotFoundError, NoChampionError, resolve

    configure(registry.tracking_uri)
    uri = monitor.model_uri or f"models:/{registry.model_name}@champion"
    try:
        model = resolve(uri, registry.tracking_uri)
    except ModelNotFoundError as e:
        hint = (
            "; run the train pipeline first" if monitor.model_uri is None and not isinstance(e, NoChampionError) else ""
        )
        raise type(e)(f"monitor.model_uri: {e}{hint}") from e  # a NoChampionError stays one
    return Embedder.load(download_model(model, tracking_uri=registry.tracking_uri)), model.label
