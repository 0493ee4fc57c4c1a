"""The job index in Milvus: the same interface as :class:`jude.retrieval.index.JobIndex`, in an engine that shards.

One collection per embedding version (``{prefix}jobs_{version}``), one row per job ever
seen: ``id`` (primary key), ``vector``, ``alive``, ``ts`` / ``rank`` / ``hash`` (the order key
of the last write applied), ``location`` and ``remote`` (-1 unknown). A delete keeps the
row with ``alive = false``, so a late, older upsert is still refused (the online store's
last-write-wins rule, checked against the stored order key before each upsert), and every
search filters ``alive == true``: a deleted job is never returned once its delete is
applied (Milvus's default ``Strong`` consistency for the writer's own session).

It runs against Milvus Lite (``pip install milvus-lite``: an embedded Milvus, one file)
for the tests, and a Milvus cluster (``uri="http://host:19530"``) at scale, where the
collection is sharded (``num_shards``) and its segments are replicated over query nodes
(``replica_number``): see docs/retrieval.md. The order-key check is a read then a write,
so one writer per job is assumed (the nearline's Kafka partitions are keyed by job id).

``index_type``: ``FLAT`` (exact: the oracle) or ``IVF_FLAT`` (``nlist``, searched with ``nprobe``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

import numpy as np

from jude.retrieval.index import Hit, IndexUpdate, normalized

_NAME = re.compile(r"[^A-Za-z0-9_]")


def _quote(text: str) -> str:
    return json.dumps(text)  # a Milvus string literal: double quotes, backslash escapes


class MilvusJobIndex:
    """``JobIndex``'s interface (apply, search, contains, live_ids, watermark) over a Milvus collection."""

    def __init__(
        self,
        uri: str,
        version: str,
        dim: int,
        *,
        prefix: str = "jude_",
        index_type: str = "IVF_FLAT",
        nlist: int = 128,
        nprobe: int = 32,
        num_shards: int = 1,
        token: str = "",
    ):
        from pymilvus import DataType, MilvusClient

        if index_type not in ("FLAT", "IVF_FLAT"):
            raise ValueError(f"index_type must be FLAT or IVF_FLAT, got {index_type!r}")
        self.client = MilvusClient(uri=uri, token=token)
        self.version = version
        self.dim = int(dim)
        self.kind = index_type
        self.nprobe = nprobe
        self.collection = f"{prefix}jobs_{_NAME.sub('_', version)}"
        self.watermark_ms: int | None = None
        if not self.client.has_collection(self.collection):
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            schema.add_field("alive", DataType.BOOL)
            schema.add_field("ts", DataType.INT64)
            schema.add_field("rank", DataType.INT8)
            schema.add_field("hash", DataType.VARCHAR, max_length=128)
            schema.add_field("location", DataType.VARCHAR, max_length=256)
            schema.add_field("remote", DataType.INT8)
            params = self.client.prepare_index_params()
            extra = {"nlist": nlist} if index_type == "IVF_FLAT" else {}
            params.add_index("vector", index_type=index_type, metric_type="IP", params=extra)
            self.client.create_collection(self.collection, schema=schema, index_params=params, num_shards=num_shards)
        else:
            self.client.load_collection(self.collection)
            got = self.client.query(self.collection, filter='id != ""', output_fields=["ts"])
            self.watermark_ms = max((int(r["ts"]) for r in got), default=None)

    # ---- writes --------------------------------------------------------------------------
    def apply(self, updates: Iterable[IndexUpdate]) -> int:
        """Last write wins per job against the order key stored in the collection; returns how many changed."""
        best: dict[str, IndexUpdate] = {}
        for u in updates:
            if u.op == "upsert" and (u.vector is None or np.asarray(u.vector).shape != (self.dim,)):
                raise ValueError(
                    f"index update for job {u.entity_id!r}: an upsert needs a vector of dimension {self.dim}"
                )
            if u.entity_id not in best or u.order() >= best[u.entity_id].order():
                best[u.entity_id] = u
        if not best:
            return 0
        stored = self._stored(list(best))
        rows = []
        for job_id, u in best.items():
            cur = stored.get(job_id)
            if cur is not None and u.order() < (int(cur["ts"]), int(cur["rank"]), cur["hash"]):
                continue
            vector = normalized(u.vector)[0] if u.op == "upsert" else np.zeros(self.dim, np.float32)
            if u.op == "delete" and cur is not None:
                vector = np.asarray(cur["vector"], dtype=np.float32)  # keep a valid vector; alive=false hides it
            rows.append(
                {
                    "id": job_id,
                    "vector": vector.tolist(),
                    "alive": u.op == "upsert",
                    "ts": int(u.event_time_ms),
                    "rank": u.order()[1],
                    "hash": u.content_hash or "",
                    "location": (u.location or (cur or {}).get("location") or "").strip().lower(),
                    "remote": -1 if u.remote is None else int(bool(u.remote)),
                }
            )
            self.watermark_ms = max(self.watermark_ms or u.event_time_ms, u.event_time_ms)
        if rows:
            self.client.upsert(self.collection, rows)
        return len(rows)

    def _stored(self, ids: list[str]) -> dict[str, dict]:
        out = {}
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            expr = f"id in [{', '.join(_quote(i) for i in chunk)}]"
            for r in self.client.query(
                self.collection, filter=expr, output_fields=["ts", "rank", "hash", "vector", "location"]
            ):
                out[r["id"]] = r
        return out

    @property
    def uses_ann(self) -> bool:
        return self.kind != "FLAT"

    def needs_retrain(self) -> bool:
        return False  # Milvus builds and rebuilds its segment indexes itself

    def retrain(self) -> bool:
        return False

    # ---- reads ---------------------------------------------------------------------------
    def contains(self, job_id: str) -> bool:
        got = self.client.query(
            self.collection, filter=f"id == {_quote(job_id)} and alive == true", output_fields=["id"]
        )
        return bool(got)

    def live_ids(self) -> list[str]:
        return [r["id"] for r in self.client.query(self.collection, filter="alive == true", output_fields=["id"])]

    def __len__(self) -> int:
        return len(self.live_ids())

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        remote: bool | None = None,
        location: str | None = None,
        exclude: Sequence[str] = (),
        exact: bool = False,
    ) -> list[Hit]:
        """Top ``k`` live jobs by cosine that pass the filters (expressions evaluated by Milvus, inside the search)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        terms = ["alive == true"]
        if remote is not None:
            terms.append(f"remote == {int(remote)}")
        if location is not None:
            terms.append(f"location == {_quote(location.strip().lower())}")
        if exclude:
            terms.append(f"id not in [{', '.join(_quote(i) for i in exclude)}]")
        params = {"metric_type": "IP", "params": {} if exact else {"nprobe": self.nprobe}}
        got = self.client.search(
            self.collection,
            data=[normalized(query)[0].tolist()],
            limit=k,
            filter=" and ".join(terms),
            search_params=params,
            output_fields=["id"],
        )
        return [Hit(h["id"], float(h["distance"])) for h in got[0]]

    def stats(self) -> dict:
        return {
            "embedding_version": self.version,
            "engine": "milvus",
            "collection": self.collection,
            "kind": self.kind,
            "jobs": len(self),
            "watermark_ms": self.watermark_ms,
        }

    def drop(self) -> None:
        self.client.drop_collection(self.collection)

    def close(self) -> None:
        self.client.close()
