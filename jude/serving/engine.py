"""The inference engine: texts in, embeddings out. It knows nothing about HTTP or gRPC.

The engine splits the work in two so the micro-batcher can sit in between:

1. :meth:`InferenceEngine.prepare` tokenises one request's texts (each with its
   own token limit: raw text uses ``max_tokens``, an entity uses its template's
   budget), counts tokens and truncates or refuses over-long texts.
2. :meth:`InferenceEngine.embed_prepared` runs the model on any mix of prepared
   texts from many requests: sorted by length, split into chunks that fit the
   token budget, padded per chunk, pooled (B, D).

Embeddings come back *pooled but not normalised*; :func:`normalize_rows` applies
the model's L2 normalisation (or not, for TEI's ``normalize=false``), so the
server returns exactly what :meth:`jude.modeling.embedder.Embedder.encode` returns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jude.modeling import templates
from jude.modeling.embedder import Embedder, pool


class InputError(ValueError):
    """A request the engine cannot serve as asked (empty text, too long with truncate=false)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


@dataclass
class ModelInfo:
    """What `/info` reports about the loaded model."""

    model_name: str
    model_uri: str
    registry_version: str | None
    path: str
    dimension: int
    max_tokens: int
    max_lengths: dict[str, int]
    templates_version: str
    template_style: str
    pooling: str
    normalize: bool
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """One tokenised text: ids truncated to its limit, plus how many tokens it had."""

    input_ids: list[int]
    n_tokens: int  # tokens embedded (after truncation, special tokens included)
    truncated: bool


class InferenceEngine:
    """A loaded :class:`Embedder` with the serving-side tokenisation and batching rules."""

    def __init__(self, embedder: Embedder, info: ModelInfo, max_batch_tokens: int = 8192,
                 max_batch_size: int = 32):
        self.embedder = embedder.eval()
        self.info = info
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.tokenizer = embedder.tokenizer
        self._lock = threading.Lock()  # one forward at a time: torch already uses every core
        self._eos = embedder.tokenizer.eos_token if embedder.meta.append_eos else None

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_embedder(cls, embedder: Embedder, model_uri: str = "", registry_version: str | None = None,
                      max_tokens: int | None = None, path: str = "", model_name: str | None = None,
                      **kwargs: Any) -> "InferenceEngine":
        meta = embedder.meta
        model_max = max(meta.max_lengths.values())
        tok_max = getattr(embedder.tokenizer, "model_max_length", None) or model_max
        limit = min(max_tokens or model_max, int(tok_max) if tok_max < 10**9 else model_max)
        info = ModelInfo(
            model_name=model_name or Path(path or str(meta.base_model)).name,
            model_uri=model_uri or str(meta.base_model), registry_version=registry_version,
            path=path, dimension=embedder.dimension, max_tokens=limit, max_lengths=dict(meta.max_lengths),
            templates_version=meta.templates_version, template_style=meta.template_style,
            pooling=meta.pooling, normalize=meta.normalize)
        return cls(embedder, info, **kwargs)

    # ---- step 1: per request ----------------------------------------------------------
    def render_entities(self, entity_type: str, records: list[dict[str, Any]]) -> list[str]:
        """The training templates, in the model's style (jude.modeling.templates.render)."""
        return [templates.render(entity_type, r, style=self.info.template_style) for r in records]

    def entity_max_tokens(self, entity_type: str) -> int:
        return int(self.info.max_lengths.get(entity_type, self.info.max_tokens))

    def prepare(self, texts: list[str], max_tokens: int | None = None, truncate: bool = True,
                param: str = "input") -> list[Prepared]:
        """Tokenise ``texts``; truncate to ``max_tokens`` or raise :class:`InputError` (422)."""
        limit = max_tokens or self.info.max_tokens
        if self._eos:
            texts = [t if t.endswith(self._eos) else t + self._eos for t in texts]
        enc = self.tokenizer(texts, add_special_tokens=True, truncation=False, padding=False,
                             return_attention_mask=False, verbose=False)
        out: list[Prepared] = []
        for i, ids in enumerate(enc["input_ids"]):
            n = len(ids)
            if n > limit:
                if not truncate:
                    where = f"{param}[{i}]" if len(texts) > 1 or param == "input" else param
                    raise InputError(f"{where} has {n} tokens; the limit is {limit} "
                                     f"(send truncate=true to cut it)", param=param, status=422)
                ids = self._truncate(ids, limit)
            out.append(Prepared(input_ids=list(ids), n_tokens=len(ids), truncated=n > limit))
        return out

    def _truncate(self, ids: list[int], limit: int) -> list[int]:
        """Keep the first tokens and the closing special token(s), as the tokenizer does."""
        n_special_end = 0
        specials = set(self.tokenizer.all_special_ids)
        while n_special_end < len(ids) and ids[len(ids) - 1 - n_special_end] in specials:
            n_special_end += 1
        n_special_end = min(n_special_end, 1)
        tail = ids[len(ids) - n_special_end:] if n_special_end else []
        return list(ids[:limit - len(tail)]) + list(tail)

    # ---- step 2: per micro-batch ------------------------------------------------------
    def _chunks(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Split length-sorted indices into chunks whose padded size fits the token budget."""
        chunks: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            longest = max([lengths[j] for j in cur] + [lengths[i]])
            if cur and (longest * (len(cur) + 1) > self.max_batch_tokens or len(cur) >= self.max_batch_size):
                chunks.append(cur)
                cur = []
            cur.append(i)
        if cur:
            chunks.append(cur)
        return chunks

    @torch.inference_mode()
    def embed_prepared(self, items: list[Prepared]) -> np.ndarray:
        """Pooled, not yet normalised embeddings (N, D) float32, in the order of ``items``."""
        out = np.zeros((len(items), self.info.dimension), dtype=np.float32)
        if not items:
            return out
        lengths = [p.n_tokens for p in items]
        # longest first: padding only within a chunk of similar lengths
        order = sorted(range(len(items)), key=lambda i: -lengths[i])
        with self._lock:
            for chunk in self._chunks(order, lengths):
                batch = self.tokenizer.pad({"input_ids": [items[i].input_ids for i in chunk]},
                                           padding=True, return_tensors="pt", return_attention_mask=True)
                feats = {k: v.to(self.embedder.device) for k, v in batch.items()}
                hidden = self.embedder.backbone(input_ids=feats["input_ids"],
                                                attention_mask=feats["attention_mask"])
                hidden = hidden.last_hidden_state if hasattr(hidden, "last_hidden_state") else hidden[0]  # (B, T, H)
                emb = pool(hidden, feats["attention_mask"], self.embedder.meta.pooling).float()  # (B, D)
                out[chunk] = emb.cpu().numpy()
        return out

    def embed(self, texts: list[str], max_tokens: int | None = None, truncate: bool = True,
              normalize: bool | None = None) -> np.ndarray:
        """Convenience without the batcher: prepare, embed, normalise (N, D)."""
        emb = self.embed_prepared(self.prepare(texts, max_tokens, truncate))
        return normalize_rows(emb) if (self.info.normalize if normalize is None else normalize) else emb


def normalize_rows(emb: np.ndarray) -> np.ndarray:
    """L2-normalise each row (N, D), as torch.nn.functional.normalize does (eps 1e-12)."""
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return (emb / np.maximum(norms, 1e-12)).astype(np.float32)


def load_engine(model_uri: str, max_tokens: int | None = None, max_batch_tokens: int = 8192,
                max_batch_size: int = 32, device: str | None = None) -> InferenceEngine:
    """Load a model once: a local sentence-transformers directory, 'minilm', or a registry URI.

    Registry URIs (``models:/jude-embedder@champion``, ``models:/jude-embedder/3``,
    ``runs:/...``) go through :func:`jude.registry.mlflow_registry.download_model`;
    a local path is used as is without importing MLflow. The saved directory
    already has LoRA merged (``Embedder.save``); an unmerged adapter is merged here.
    """
    registry_version = None
    local = Path(model_uri).expanduser()
    if local.exists() or model_uri == "minilm":
        path = str(local) if local.exists() else "minilm"
    else:
        from jude.registry import mlflow_registry as reg

        path = str(reg.download_model(model_uri))
        ref = model_uri.removeprefix("models:/")
        if model_uri.startswith("models:/") and "@" in ref:
            name, alias = ref.split("@", 1)
            mv = reg.get_version(name, alias)
            registry_version = mv.version if mv else None
        elif model_uri.startswith("models:/"):
            registry_version = ref.split("/", 1)[1]
    if model_uri.startswith("models:/"):
        model_name = model_uri.removeprefix("models:/").split("@")[0].split("/")[0]
    elif model_uri == "minilm":
        model_name = "all-MiniLM-L6-v2"
    else:
        model_name = Path(path).name
    embedder = Embedder.load(path, device=device)
    if embedder.has_lora:  # a directory saved with an unmerged adapter: serve merged weights
        embedder.backbone = embedder.backbone.merge_and_unload()
    return InferenceEngine.from_embedder(embedder, model_uri=model_uri, registry_version=registry_version,
                                         max_tokens=max_tokens, path=path, model_name=model_name,
                                         max_batch_tokens=max_batch_tokens,
                                         max_batch_size=max_batch_size)
