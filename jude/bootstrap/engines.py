"""Where the bulk embedding runs: in this process (``local``, the default) or on a Ray cluster (``ray``).

An engine turns a list of unique texts into (N, D) float32 vectors in input order and
counts its inferences. The backfill (``jude.bootstrap.backfill``) hands it one chunk of
texts at a time, so the stores are written chunk by chunk whichever engine embeds.

``ray`` needs the optional extra (``pip install -e '.[ray]'``). Its workers import
``jude``: the engine ships the package with ``runtime_env={"py_modules": [jude]}``, so a
remote cluster (KubeRay: ``ray_address: ray://<head-service>:10001``) needs only the
project's dependencies in its image, not the project itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from jude.bootstrap.bulk import BulkEncoder, BulkOptions

ENGINES = ("local", "ray")


class Engine(Protocol):
    inferences: int

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: list[str], entity_type: str | None = None) -> np.ndarray: ...


class LocalEngine:
    """The in-process bulk path (:class:`jude.bootstrap.bulk.BulkEncoder`)."""

    def __init__(self, model_dir: str | Path, options: BulkOptions | None = None, device: str | None = None):
        from jude.modeling.embedder import Embedder

        self.encoder = BulkEncoder(Embedder.load(model_dir, device=device), options)

    @property
    def inferences(self) -> int:
        return self.encoder.inferences

    @property
    def dimension(self) -> int:
        return self.encoder.dimension

    def encode(self, texts: list[str], entity_type: str | None = None) -> np.ndarray:
        return self.encoder.encode(texts, entity_type)


class _RayEncoder:
    """A Ray Data actor holding one model; each row it gets is one batch the driver planned."""

    def __init__(self, model_dir: str, options: BulkOptions, entity_type: str | None):
        from jude.modeling.embedder import Embedder

        self.encoder = BulkEncoder(Embedder.load(model_dir), options)
        self.entity_type = entity_type

    def __call__(self, batch: dict) -> dict:
        ids, vectors = [], []
        for idx, texts in zip(batch["idx"], batch["texts"]):
            ids.extend(int(i) for i in idx)
            vectors.extend(self.encoder.encode([str(t) for t in texts], self.entity_type))
        return {"i": np.asarray(ids, dtype=np.int64), "vector": np.stack(vectors)}


class RayEngine:
    """Ray Data: ``map_batches`` over an actor pool of ``actors`` models, ``cpus_per_actor`` CPUs each.

    The driver plans the token-budget batches (the same as the local engine's) and each
    actor embeds whole batches, so both engines compute the same vectors, bit for bit.
    ``address=None`` starts a local Ray with ``num_cpus`` CPUs.
    """

    def __init__(
        self,
        model_dir: str | Path,
        options: BulkOptions | None = None,
        actors: int = 2,
        cpus_per_actor: float = 1.0,
        address: str | None = None,
        num_cpus: int | None = None,
    ):
        try:
            import ray
        except ImportError as exc:
            raise ImportError("engine='ray' needs Ray Data: pip install -e '.[ray]' (or use engine='local')") from exc
        import jude
        from jude.modeling.embedder import Embedder

        self.ray = ray
        self.model_dir = str(model_dir)
        self.options = options or BulkOptions()
        self.actors, self.cpus_per_actor = actors, cpus_per_actor
        if not ray.is_initialized():
            ray.init(
                address=address,
                num_cpus=num_cpus if address is None else None,
                runtime_env={"py_modules": [str(Path(jude.__file__).parent)]},
                include_dashboard=False,
                log_to_driver=False,
            )
        self.planner = BulkEncoder(Embedder.load(self.model_dir), self.options)  # tokenizer and batch plan
        self.inferences = 0

    @property
    def dimension(self) -> int:
        return self.planner.dimension

    def encode(self, texts: list[str], entity_type: str | None = None) -> np.ndarray:
        from jude.bootstrap.bulk import token_budget_batches

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        max_length = self.planner.max_length(entity_type)
        budget = max(self.options.token_budget, max_length)
        lengths = self.planner.token_lengths(texts, max_length)
        batches = token_budget_batches(lengths, budget, self.options.max_batch_size)
        items = [{"idx": [int(i) for i in idx], "texts": [texts[i] for i in idx]} for idx in batches]
        blocks = min(len(items), 4 * self.actors)  # several blocks, so every actor gets batches
        ds = self.ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            _RayEncoder,
            fn_constructor_kwargs={"model_dir": self.model_dir, "options": self.options, "entity_type": entity_type},
            batch_size=1,
            concurrency=self.actors,
            num_cpus=self.cpus_per_actor,
        )
        for row in ds.take_all():
            out[int(row["i"])] = np.asarray(row["vector"], dtype=np.float32)
        self.inferences += len(texts)
        return out


def make_engine(name: str, model_dir: str | Path, options: BulkOptions | None = None, **ray_kwargs) -> Engine:
    """The engine called ``name`` (one of ``ENGINES``) over the model at ``model_dir``."""
    if name == "local":
        return LocalEngine(model_dir, options)
    if name == "ray":
        return RayEngine(model_dir, options, **ray_kwargs)
    raise ValueError(f"engine must be one of {list(ENGINES)}, got {name!r}")
