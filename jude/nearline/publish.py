"""The producer side for users and tests: change events from files or the synthetic marketplace onto a stream.

``jude nearline publish`` uses these:

- :func:`read_events`: a file of change events. JSON lines (``.jsonl``/``.ndjson``, one
  event per line), JSON (``.json``: a list of events), Parquet or CSV with the contract
  columns ``entity_type, entity_id, op, event_time, fields``; in CSV (and optionally in
  Parquet) ``fields`` is the JSON text of the object.
- :func:`synthetic_events`: the synthetic marketplace's change stream
  (``jude.data.changes``), in event-time order; the small world's by default, the
  grounded world's with ``world="grounded"`` (``jude nearline publish --synthetic
  --world grounded``).
- :func:`open_transport`: the Redis Streams or Kafka publisher a
  :class:`~jude.config.NearlineConfig` points at (same names the worker reads).

Events are not validated here (the worker dead-letters a bad one with its reason);
only what routing needs (entity type and id) is checked by ``publish_events``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from jude.config import NearlineConfig
from jude.nearline.sources import EVENT_KEYS, KafkaPublisher, RedisStreamPublisher, Transport

FORMATS = (".jsonl", ".ndjson", ".json", ".parquet", ".csv")


def _fields(value: Any, where: str) -> dict:
    """A ``fields`` cell: a dict, JSON text of one, or empty (a delete)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: column 'fields' is not JSON ({e.msg}): {value[:80]!r}") from None
    if hasattr(value, "items"):
        return {k: v for k, v in dict(value).items() if v is not None}
    raise ValueError(f"{where}: column 'fields' must be an object, got {type(value).__name__}")


def read_events(path: str | os.PathLike) -> list[dict]:
    """The change events in ``path`` as dicts, in file order (module docstring for the formats)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{p}: unknown event file type {suffix!r}; expected one of {list(FORMATS)}")
    if not p.is_file():
        raise ValueError(f"{p}: no such file")
    if suffix in (".jsonl", ".ndjson"):
        events = []
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{p} line {n}: not JSON ({e.msg})") from None
        return events
    if suffix == ".json":
        doc = json.loads(p.read_text(encoding="utf-8"))
        if not isinstance(doc, list):
            raise ValueError(f"{p}: expected a JSON list of events, got {type(doc).__name__}")
        return doc
    import pandas as pd

    frame = pd.read_parquet(p) if suffix == ".parquet" else pd.read_csv(p, dtype={"entity_id": str})
    missing = [k for k in EVENT_KEYS if k not in frame.columns]
    if missing:
        raise ValueError(f"{p}: missing column(s) {missing}; expected {list(EVENT_KEYS)}")
    events = []
    for i, row in enumerate(frame[list(EVENT_KEYS)].to_dict("records")):
        row["fields"] = _fields(row["fields"], f"{p} row {i}")
        if hasattr(row["event_time"], "isoformat"):
            row["event_time"] = row["event_time"].isoformat()
        events.append(row)
    return events


def synthetic_events(
    n_events: int = 24_000, seed: int = 0, duplicates: float = 0.0, shuffle_window: int = 0, world: str = "synthetic"
):
    """The synthetic marketplace's change stream (the default marketplace of ``world``: ``synthetic``, the small
    world, or ``grounded``, ``data.synthetic.world``) -> (events, the stream frame)."""
    from jude.config import SyntheticConfig
    from jude.data.changes import ChangeStreamConfig, generate_change_stream, to_events
    from jude.data.synthetic import generate_marketplace

    market = generate_marketplace(SyntheticConfig(seed=seed, world=world))
    cfg = ChangeStreamConfig(seed=seed, n_events=n_events, duplicates=duplicates, shuffle_window=shuffle_window)
    stream = generate_change_stream(market, cfg)
    return to_events(stream), stream


def open_transport(cfg: NearlineConfig) -> Transport:
    """The publisher for ``cfg.source`` at its address and stream prefix."""
    if cfg.source == "redis":
        import redis

        client = redis.Redis.from_url(cfg.redis_url, socket_connect_timeout=5)
        return RedisStreamPublisher(client, prefix="jude:" if cfg.stream_prefix is None else cfg.stream_prefix)
    prefix = "jude." if cfg.stream_prefix is None else cfg.stream_prefix
    shared = {k: v for k, v in cfg.kafka_config.items() if k.startswith(("security.", "sasl.", "ssl.", "client."))}
    return KafkaPublisher(cfg.kafka_bootstrap, prefix=prefix, config=shared)
