"""The online store: the latest embedding of every entity, in Redis, read by rankers.

Layout (``prefix`` defaults to ``jude:``):

- ``{prefix}emb:{embedding_version}:{entity_type}:{entity_id}``: a hash with
  ``vec`` (vector bytes, little-endian float32, or float16 when the store is built
  with ``dtype="float16"``), ``dtype``, ``hash`` (content hash), ``ts`` (event time,
  int epoch ms), ``model`` (the model version that embedded it) and ``del``
  (``1``: a tombstone, no vector). Embeddings of different versions never share a key.
- ``{prefix}active:{entity_type}``: the embedding version readers get.
- ``{prefix}live:{entity_type}``: the set of versions writers keep up to date
  (two while a new version is being bootstrapped beside the active one).

**Last write wins, by event time, atomically.** Every record write goes through one
Lua script that reads the stored event time and writes only if the new event is not
older, in one server-side step, so two workers (or a redelivery racing a fresher
event) cannot interleave a read and a write. A delete writes a tombstone carrying the
delete's event time: an upsert from before the delete that arrives late is refused
instead of resurrecting the entity; readers see a tombstone as missing.

**The tie rule.** Writes are ordered by ``(event_time, op, content_hash)`` with a
delete above an upsert: at an equal event time a delete beats an upsert, and of two
upserts the one with the larger content hash (bytewise) wins. A write equal to the stored one in
all three is applied again (an idempotent overwrite: a redelivered event rewrites what
it wrote). The order is total, so the final state is the maximum of the writes,
whatever order they arrive in: redeliveries, duplicates and races all converge.

**Touch.** An upsert without a vector advances the stored event time of an entity
whose content has not changed (same content hash), without inference. The processor
sends it when change detection skips an event, so that a delete older than the
skipped edit, arriving late, is still refused. If the stored hash differs (or the
entity is missing or deleted) the touch is not applied and returns ``needs_vector``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from jude.data.schema import ENTITY_TYPES

DTYPES = {"float32": "<f4", "float16": "<f2"}
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PIPELINE_CHUNK = 1000  # commands per round trip: large batches stay pipelined without one giant reply

# KEYS[1]: the record key.
# ARGV: event_time_ms, op, content_hash, model_version, vector bytes ('' = touch), dtype, tombstone ttl ms ('0' = none)
# Returns 1 applied, 0 refused (older than the stored write), 2 touch not applied (stored content differs).
_WRITE_LUA = """
local function bytes_gt(a, b)  -- a > b byte by byte (Lua's '>' on strings follows the server's locale)
  if a == b then return false end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local t = tonumber(ARGV[1])
local rank = 0
if ARGV[2] == 'delete' then rank = 1 end
local h = ARGV[3]
local cur = redis.call('HMGET', KEYS[1], 'ts', 'del', 'hash')
if cur[1] then
  local st = tonumber(cur[1])
  local srank = 0
  if cur[2] == '1' then srank = 1 end
  local sh = cur[3] or ''
  if st > t or (st == t and (srank > rank or (srank == rank and bytes_gt(sh, h)))) then
    return 0
  end
end
if rank == 1 then
  redis.call('HDEL', KEYS[1], 'vec', 'dtype')
  redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'del', '1', 'hash', '', 'model', ARGV[4])
  if ARGV[7] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[7]) end
  return 1
end
if ARGV[5] == '' then
  if (not cur[1]) or cur[2] == '1' or cur[3] ~= h then return 2 end
  redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'model', ARGV[4])
  return 1
end
redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'del', '0', 'hash', h, 'model', ARGV[4], 'vec', ARGV[5], 'dtype', ARGV[6])
redis.call('PERSIST', KEYS[1])
return 1
"""

# KEYS: active pointer, live set. ARGV[1]: version. Returns the previous active version (or false).
_SET_ACTIVE_LUA = """
local previous = redis.call('GET', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[1])
return previous
"""

# KEYS: active pointer, live set. ARGV[1]: version. Returns -1 (it is the active one), else SREM's count.
_RETIRE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return -1 end
return redis.call('SREM', KEYS[2], ARGV[1])
"""


class WriteStatus(str, Enum):
    """What the server did with one record write."""

    APPLIED = "applied"
    REFUSED = "refused"  # older than the stored write (by event time, then the tie rule)
    NEEDS_VECTOR = "needs_vector"  # a touch whose stored content differs: embed and write again


_STATUS = {1: WriteStatus.APPLIED, 0: WriteStatus.REFUSED, 2: WriteStatus.NEEDS_VECTOR}


@dataclass(frozen=True)
class OnlineRecord:
    """One write to the online store.

    ``vector`` is required for an upsert unless it is a touch (``vector=None``: the
    content is unchanged, only the event time advances); a delete ignores it.
    """

    entity_type: str
    entity_id: str
    embedding_version: str
    event_time_ms: int
    op: Literal["upsert", "delete"] = "upsert"
    vector: np.ndarray | Sequence[float] | None = None
    content_hash: str | None = None
    model_version: str = ""


class Embeddings(NamedTuple):
    """A batch read, aligned with the ids asked for.

    ``vectors``: (N, D) float32, zero rows where not found (D is 0 when nothing was found).
    ``found``: (N,) bool; False for an unknown id or a tombstone.
    ``meta``: one row per id: entity_id, found, content_hash, event_time_ms, model_version,
    embedding_version (None / <NA> where not found).
    """

    vectors: np.ndarray
    found: np.ndarray
    meta: pd.DataFrame


def check_version(version: object, field: str = "embedding_version") -> str:
    """An embedding version is a key segment: letters, digits, '.', '_' or '-' (no ':')."""
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise ValueError(
            f"{field} must be 1-128 characters of letters, digits, '.', '_' or '-' starting with a letter or "
            f"digit (it is part of the Redis key), got {version!r}"
        )
    return version


def check_entity_type(entity_type: object) -> str:
    if entity_type not in ENTITY_TYPES:
        raise ValueError(f"entity_type must be one of {list(ENTITY_TYPES)}, got {entity_type!r}")
    return entity_type  # type: ignore[return-value]


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


class RedisOnlineStore:
    """Versioned, last-write-wins embeddings in Redis (see the module docstring).

    ``client`` is a ``redis.Redis`` built with ``decode_responses=False`` (vectors are
    bytes). ``dtype`` is how new vectors are stored; reads decode each record by the
    dtype stored with it and always return float32. ``tombstone_ttl_s`` lets tombstones
    expire (None: kept forever); a late upsert older than a delete is refused only
    while the tombstone lives, so set it well above the longest redelivery delay.
    """

    def __init__(
        self,
        client,
        prefix: str = "jude:",
        dtype: Literal["float32", "float16"] = "float32",
        tombstone_ttl_s: float | None = None,
    ):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        if tombstone_ttl_s is not None and not tombstone_ttl_s > 0:
            raise ValueError(f"tombstone_ttl_s must be > 0 or None, got {tombstone_ttl_s!r}")
        kwargs = client.get_connection_kwargs() if hasattr(client, "get_connection_kwargs") else {}
        if kwargs.get("decode_responses"):
            raise ValueError("client: build it with decode_responses=False; the store reads vectors as bytes")
        self.client = client
        self.prefix = prefix
        self.dtype = dtype
        self.tombstone_ttl_ms = 0 if tombstone_ttl_s is None else max(1, int(tombstone_ttl_s * 1000))
        self._write = client.register_script(_WRITE_LUA)
        self._set_active = client.register_script(_SET_ACTIVE_LUA)
        self._retire = client.register_script(_RETIRE_LUA)

    # ---- keys ---------------------------------------------------------------------------
    def key(self, entity_type: str, entity_id: str, version: str) -> str:
        """The Redis key of one entity's record under one embedding version."""
        return f"{self.prefix}emb:{version}:{entity_type}:{entity_id}"

    def _active_key(self, entity_type: str) -> str:
        return f"{self.prefix}active:{entity_type}"

    def _live_key(self, entity_type: str) -> str:
        return f"{self.prefix}live:{entity_type}"

    # ---- writes -------------------------------------------------------------------------
    def write(self, record: OnlineRecord) -> WriteStatus:
        """Write one record; see :meth:`write_many`."""
        return self.write_many([record])[0]

    def write_many(self, records: Iterable[OnlineRecord]) -> list[WriteStatus]:
        """Write records (pipelined), each through the atomic last-write-wins script.

        Returns one :class:`WriteStatus` per record, in order. Every record is checked
        before anything is sent, so a bad record (named by its position) writes nothing.
        """
        args = [self._write_args(i, r) for i, r in enumerate(records)]
        out: list[WriteStatus] = []
        for start in range(0, len(args), _PIPELINE_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for key, argv in args[start : start + _PIPELINE_CHUNK]:
                self._write(keys=[key], args=argv, client=pipe)
            out.extend(_STATUS[int(code)] for code in pipe.execute())
        return out

    def _write_args(self, i: int, r: OnlineRecord) -> tuple[str, list]:
        where = f"record {i} ({r.entity_type}/{r.entity_id})"
        try:
            check_entity_type(r.entity_type)
            check_version(r.embedding_version)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if not isinstance(r.entity_id, str) or not r.entity_id:
            raise ValueError(f"{where}: entity_id must be a non-empty str, got {r.entity_id!r}")
        if isinstance(r.event_time_ms, bool) or not isinstance(r.event_time_ms, (int, np.integer)):
            raise ValueError(f"{where}: event_time_ms must be an int (epoch ms), got {r.event_time_ms!r}")
        if r.op not in ("upsert", "delete"):
            raise ValueError(f"{where}: op must be 'upsert' or 'delete', got {r.op!r}")
        vec = b""
        if r.op == "upsert":
            if not isinstance(r.content_hash, str) or not r.content_hash:
                raise ValueError(f"{where}: an upsert needs a content_hash, got {r.content_hash!r}")
            if r.vector is not None:
                arr = np.asarray(r.vector, dtype=np.float32)
                if arr.ndim != 1 or arr.size == 0:
                    raise ValueError(f"{where}: vector must be a non-empty 1-d array, got shape {arr.shape}")
                vec = arr.astype(DTYPES[self.dtype]).tobytes()
        argv = [
            int(r.event_time_ms),
            r.op,
            r.content_hash if r.op == "upsert" else "",
            r.model_version,
            vec,
            self.dtype,
            self.tombstone_ttl_ms,
        ]
        return self.key(r.entity_type, r.entity_id, r.embedding_version), argv

    # ---- reads --------------------------------------------------------------------------
    def get_embeddings(self, entity_type: str, ids: Sequence[str], version: str | None = None) -> Embeddings:
        """Batch read for rankers: the embeddings of ``ids`` under ``version``.

        ``version=None`` reads the entity type's active version (a ``LookupError`` if
        none is set). Rows follow ``ids``; unknown ids and tombstones are not found.
        """
        check_entity_type(entity_type)
        version = self._resolve(entity_type, version)
        ids = list(ids)
        rows = self._hmget(entity_type, ids, version, (b"vec", b"dtype", b"hash", b"ts", b"model", b"del"))
        found = np.array([r[0] is not None and r[5] != b"1" for r in rows], dtype=bool)
        vecs = [np.frombuffer(r[0], dtype=DTYPES[r[1].decode()]) for r, f in zip(rows, found) if f]
        dims = {v.shape[0] for v in vecs}
        if len(dims) > 1:
            raise ValueError(f"{entity_type} embeddings of version {version!r} have mixed dimensions {sorted(dims)}")
        dim = dims.pop() if dims else 0
        vectors = np.zeros((len(ids), dim), dtype=np.float32)  # (N, D)
        if vecs:
            vectors[found] = np.stack(vecs).astype(np.float32)
        meta = pd.DataFrame(
            {
                "entity_id": ids,
                "found": found,
                "content_hash": [r[2].decode() if f else None for r, f in zip(rows, found)],
                "event_time_ms": pd.array([int(r[3]) if f else None for r, f in zip(rows, found)], dtype="Int64"),
                "model_version": [r[4].decode() if f else None for r, f in zip(rows, found)],
                "embedding_version": version,
            }
        )
        return Embeddings(vectors, found, meta)

    def get_hashes(self, entity_type: str, ids: Sequence[str], version: str) -> list[str | None]:
        """The stored content hash of each id under ``version`` (None: unknown or deleted).

        Change detection: the processor embeds an event only when its hash differs.
        """
        check_entity_type(entity_type)
        check_version(version)
        rows = self._hmget(entity_type, list(ids), version, (b"hash", b"del"))
        return [r[0].decode() if r[0] and r[1] != b"1" else None for r in rows]

    def _hmget(self, entity_type: str, ids: list[str], version: str, fields: tuple[bytes, ...]) -> list[list]:
        out: list[list] = []
        for start in range(0, len(ids), _PIPELINE_CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for entity_id in ids[start : start + _PIPELINE_CHUNK]:
                pipe.hmget(self.key(entity_type, entity_id, version), fields)
            out.extend(pipe.execute())
        return out

    def _resolve(self, entity_type: str, version: str | None) -> str:
        if version is not None:
            return check_version(version)
        active = self.active_version(entity_type)
        if active is None:
            raise LookupError(f"no active embedding version for entity type {entity_type!r}; call set_active first")
        return active

    # ---- versions -----------------------------------------------------------------------
    def set_active(self, entity_type: str, version: str) -> str | None:
        """Point readers of ``entity_type`` at ``version`` (one atomic step); returns the previous one.

        The version joins the live set in the same step. Call it only once the version
        is complete (after its bootstrap): readers switch at once.
        """
        check_entity_type(entity_type)
        check_version(version)
        keys = [self._active_key(entity_type), self._live_key(entity_type)]
        previous = self._set_active(keys=keys, args=[version])
        return previous.decode() if previous else None

    def active_version(self, entity_type: str) -> str | None:
        """The embedding version readers of ``entity_type`` get (None before the first ``set_active``)."""
        check_entity_type(entity_type)
        value = self.client.get(self._active_key(entity_type))
        return value.decode() if value is not None else None

    def add_live_version(self, entity_type: str, version: str) -> None:
        """Have writers keep ``version`` up to date too (a bootstrap fills it meanwhile)."""
        check_entity_type(entity_type)
        self.client.sadd(self._live_key(entity_type), check_version(version))

    def live_versions(self, entity_type: str) -> list[str]:
        """The versions writers write (sorted)."""
        check_entity_type(entity_type)
        return sorted(v.decode() for v in self.client.smembers(self._live_key(entity_type)))

    def retire_version(self, entity_type: str, version: str, purge: bool = False) -> int:
        """Stop writing ``version``; with ``purge``, delete its records too (returns how many).

        The active version cannot be retired (``ValueError``): flip the pointer first.
        """
        check_entity_type(entity_type)
        check_version(version)
        keys = [self._active_key(entity_type), self._live_key(entity_type)]
        if int(self._retire(keys=keys, args=[version])) == -1:
            raise ValueError(
                f"version {version!r} is the active {entity_type} version; set_active another one before retiring it"
            )
        if not purge:
            return 0
        pattern = _glob_escape(self.key(entity_type, "", version)) + "*"
        removed = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= _PIPELINE_CHUNK:
                removed += self.client.unlink(*batch)
                batch = []
        if batch:
            removed += self.client.unlink(*batch)
        return removed
