"""The inference engine: texts in, embeddings out. It knows nothing about HTTP or gRPC.

The engine splits the work in two so the micro-batcher can sit in between:

1. :meth:`InferenceEngine.prepare` tokenises one request's texts (each with its
   own token limit: raw text uses ``max_tokens``, an entity uses its template's
   budget), counts tokens and truncates or refuses over-long texts. The batcher
   calls it in its worker thread, so tokenising never runs on the event loop.
2. :meth:`InferenceEngine.embed_prepared` runs the model on any mix of prepared
   texts from many requests: sorted by length, cut into sub-chunks of at most
   ``max_forward_tokens`` padded tokens, each padded on its own and run through
   the backend, pooled (B, D).

Why sub-chunks: a forward's cost grows with its padded size (rows x longest row).
Sorting a micro-batch by length and running it in small chunks pads each chunk
only to its own longest text, and small chunks keep a CPU's caches warm: on 2
CPU cores, chunks of about 384 padded tokens were about 30 % faster than one
forward over the whole micro-batch (random batches of 32 short texts pad to
about 1.6x their real tokens). On a GPU, where a bigger forward costs little
more than a small one, raise ``max_forward_tokens``.

The backend is the model's forward pass on padded ids: :class:`TorchBackend`
(the :class:`Embedder`'s own modules, in ``jude.serving.torch_backend``) or ``jude.serving.onnx_backend.OnnxBackend``
(ONNX Runtime over a graph exported from the same directory). Both return the
pooled, not yet normalised embeddings; :func:`normalize_rows` applies the
model's L2 normalisation (or not, for TEI's ``normalize=false``), so the server
returns exactly what :meth:`jude.modeling.embedder.Embedder.encode` returns.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from jude.modeling import templates
from jude.modeling.embedder import Embedder
from jude.serving.torch_backend import TorchBackend  # the default backend, re-exported here

log = logging.getLogger("jude.serving")

BACKENDS = ("auto", "torch", "onnx")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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
    backend: str = "torch"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """One tokenised text: ids truncated to its limit, plus how many tokens it had."""

    input_ids: list[int]
    n_tokens: int  # tokens embedded (after truncation, special tokens included)
    truncated: bool


class Backend(Protocol):
    """The model's forward pass: padded ids and mask (B, T) int64 -> pooled, unnormalised (B, D) float32."""

    name: str

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...


def _rust_tokenizer(tokenizer: Any) -> Any | None:
    """A private copy of a fast tokenizer's Rust backend, or None where it would tokenise differently.

    Calling the Rust tokenizer directly skips the Python wrapper (about 3x less
    time per text) and, being a copy, shares no truncation/padding state with the
    :class:`Embedder`'s tokenizer, which other threads may use. It is used only
    where it gives the same ids as the tokenizer itself on a few probe texts.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        from tokenizers import Tokenizer

        rust = Tokenizer.from_str(backend.to_str())
        rust.no_truncation()
        rust.no_padding()
        probes = ["Senior Python developer in Berlin.", "  naïve café, 東京 🙂\tOK", "UPPER lower 12,5 %", "a"]
        want = tokenizer(probes, add_special_tokens=True, truncation=False, padding=False, verbose=False)
        got = [e.ids for e in rust.encode_batch_fast(probes, add_special_tokens=True)]
    except Exception as e:  # any surprise: the tokenizer's own (slower) path is always right
        log.debug("tokenising through the transformers tokenizer: %s", e)
        return None
    return rust if got == [list(ids) for ids in want["input_ids"]] else None


class InferenceEngine:
    """A loaded :class:`Embedder` with the serving-side tokenisation, chunking and a forward backend.

    ``max_batch_tokens``/``max_batch_size`` bound what the batcher puts into one
    micro-batch; ``max_forward_tokens`` bounds the padded size (rows x longest row)
    of each forward that :meth:`embed_prepared` cuts the micro-batch into.
    ``backend`` defaults to :class:`TorchBackend` over ``embedder``.
    """

    def __init__(
        self,
        embedder: Embedder,
        info: ModelInfo,
        max_batch_tokens: int = 8192,
        max_batch_size: int = 32,
        max_forward_tokens: int = 384,
        backend: Backend | None = None,
        concurrent_forwards: int = 1,
    ):
        if max_forward_tokens < 1:
            raise ValueError(f"max_forward_tokens must be >= 1, got {max_forward_tokens}")
        if concurrent_forwards < 1:
            raise ValueError(f"concurrent_forwards must be >= 1, got {concurrent_forwards}")
        self.embedder = embedder.eval()
        self.info = info
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_forward_tokens = max_forward_tokens
        self.backend: Backend = backend or TorchBackend(embedder)
        self.info.backend = self.backend.name
        if getattr(self.backend, "choice", None):  # backend='auto': what it chose and why (GET /info)
            self.info.extra["backend_choice"] = self.backend.choice
        self.tokenizer = embedder.tokenizer
        self._rust = _rust_tokenizer(embedder.tokenizer)
        self._pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0)
        self._pad_left = embedder.meta.padding_side == "left"
        self._specials = frozenset(self.tokenizer.all_special_ids)
        # One micro-batch's forward at a time by default (the backend already uses every core); more where the
        # server runs several batches in flight (serve.batches_in_flight), each forward on its own threads.
        self.concurrent_forwards = concurrent_forwards
        self._lock = threading.BoundedSemaphore(concurrent_forwards)
        # Last-token pooling: an EOS already at the end of a text is dropped and the EOS id appended after
        # tokenising, unless the tokenizer ends every text with EOS itself: exactly Embedder.tokenize.
        self._eos = embedder.tokenizer.eos_token if embedder.meta.append_eos else None
        self._eos_id = int(embedder.tokenizer.eos_token_id) if embedder.appends_eos else None

    # ---- construction ---------------------------------------------------------------
    @classmethod
    def from_embedder(
        cls,
        embedder: Embedder,
        model_uri: str = "",
        registry_version: str | None = None,
        max_tokens: int | None = None,
        path: str = "",
        model_name: str | None = None,
        **kwargs: Any,
    ) -> InferenceEngine:
        meta = embedder.meta
        model_max = max(meta.max_lengths.values())
        tok_max = getattr(embedder.tokenizer, "model_max_length", None) or model_max
        limit = min(max_tokens or model_max, int(tok_max) if tok_max < 10**9 else model_max)
        info = ModelInfo(
            model_name=model_name or Path(path or str(meta.base_model)).name,
            model_uri=model_uri or str(meta.base_model),
            registry_version=registry_version,
            path=path,
            dimension=embedder.dimension,
            max_tokens=limit,
            max_lengths=dict(meta.max_lengths),
            templates_version=meta.templates_version,
            template_style=meta.template_style,
            pooling=meta.pooling,
            normalize=meta.normalize,
        )
        return cls(embedder, info, **kwargs)

    # ---- step 1: per request ----------------------------------------------------------
    def render_entities(self, entity_type: str, records: list[dict[str, Any]]) -> list[str]:
        """The training templates, in the model's style (jude.modeling.templates.render)."""
        return [templates.render(entity_type, r, style=self.info.template_style) for r in records]

    def entity_max_tokens(self, entity_type: str) -> int:
        return int(self.info.max_lengths.get(entity_type, self.info.max_tokens))

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        if self._rust is not None:
            return [e.ids for e in self._rust.encode_batch_fast(texts, add_special_tokens=True)]
        enc = self.tokenizer(
            texts, add_special_tokens=True, truncation=False, padding=False, return_attention_mask=False, verbose=False
        )
        return [list(ids) for ids in enc["input_ids"]]

    def prepare(
        self, texts: list[str], max_tokens: int | None = None, truncate: bool = True, param: str = "input"
    ) -> list[Prepared]:
        """Tokenise ``texts``; truncate to ``max_tokens`` or raise :class:`InputError` (422)."""
        limit = max_tokens or self.info.max_tokens
        if self._eos:
            texts = [t[: -len(self._eos)] if t.endswith(self._eos) else t for t in texts]
        token_ids = self._token_ids(texts)
        if self._eos_id is not None:
            token_ids = [ids + [self._eos_id] for ids in token_ids]
        out: list[Prepared] = []
        for i, ids in enumerate(token_ids):
            n = len(ids)
            if n > limit:
                if not truncate:
                    where = f"{param}[{i}]" if len(texts) > 1 or param == "input" else param
                    raise InputError(
                        f"{where} has {n} tokens; the limit is {limit} (send truncate=true to cut it)",
                        param=param,
                        status=422,
                    )
                ids = self._truncate(ids, limit)
            out.append(Prepared(input_ids=ids, n_tokens=len(ids), truncated=n > limit))
        return out

    def _truncate(self, ids: list[int], limit: int) -> list[int]:
        """Keep the first tokens and the closing special token(s), as the tokenizer does."""
        n_special_end = 0
        while n_special_end < len(ids) and ids[len(ids) - 1 - n_special_end] in self._specials:
            n_special_end += 1
        n_special_end = min(n_special_end, 1)
        tail = ids[len(ids) - n_special_end :] if n_special_end else []
        return list(ids[: limit - len(tail)]) + list(tail)

    # ---- step 2: per micro-batch ------------------------------------------------------
    def _chunks(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Cut longest-first indices into chunks whose padded size (rows x longest) fits ``max_forward_tokens``.

        A text longer than the budget gets a chunk of its own; a chunk also holds
        at most ``max_batch_size`` texts.
        """
        chunks: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            longest = lengths[cur[0]] if cur else lengths[i]  # longest first: the chunk's first text
            if cur and (longest * (len(cur) + 1) > self.max_forward_tokens or len(cur) >= self.max_batch_size):
                chunks.append(cur)
                cur = []
            cur.append(i)
        if cur:
            chunks.append(cur)
        return chunks

    def _pad(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Pad token ids to (B, T) int64 on the model's padding side, with the attention mask (B, T)."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for b, r in enumerate(rows):
            span = slice(width - len(r), width) if self._pad_left else slice(0, len(r))
            ids[b, span] = r
            mask[b, span] = 1
        return ids, mask

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
                ids, mask = self._pad([items[i].input_ids for i in chunk])
                out[chunk] = self.backend.forward(ids, mask)
        return out

    def embed(
        self, texts: list[str], max_tokens: int | None = None, truncate: bool = True, normalize: bool | None = None
    ) -> np.ndarray:
        """Convenience without the batcher: prepare, embed, normalise (N, D)."""
        emb = self.embed_prepared(self.prepare(texts, max_tokens, truncate))
        return normalize_rows(emb) if (self.info.normalize if normalize is None else normalize) else emb


def normalize_rows(emb: np.ndarray) -> np.ndarray:
    """L2-normalise each row (N, D), as torch.nn.functional.normalize does (eps 1e-12)."""
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return (emb / np.maximum(norms, 1e-12)).astype(np.float32)


def _auto_onnx(embedder: Embedder, path: str, dtype: str) -> tuple[Path | None, str]:
    """``backend='auto'``: the checked ONNX export on CPU where onnxruntime is installed and the export is exact
    (:func:`jude.serving.onnx_backend.checked_onnx`), else torch -> (export or None, why)."""
    if embedder.device.type != "cpu":
        return None, f"torch on {embedder.device.type}"
    if dtype != "float32":
        return None, f"torch: dtype {dtype} (the ONNX export is float32)"
    from jude.serving.onnx_backend import OnnxUnavailableError, checked_onnx

    try:
        onnx_path, cosine = checked_onnx(embedder, path)
    except OnnxUnavailableError as e:
        return None, f"torch: {e}"
    return onnx_path, f"onnx on CPU, export checked against torch: min cosine {cosine:.6f}"


def make_backend(
    embedder: Embedder,
    path: str,
    backend: Literal["auto", "torch", "onnx"] = "torch",
    threads: int | None = None,
    dtype: str = "float32",
) -> Backend:
    """The forward backend for a loaded embedder: torch (in ``dtype``) or ONNX Runtime (exported from ``path``);
    ``auto``: ONNX Runtime on CPU where it is installed and its export is exact, torch otherwise (GPU included).

    ``threads``: intra-op threads of the forward (torch: ``torch.set_num_threads``,
    process-wide; ONNX Runtime: the session's pool); None leaves each library's
    default (one per core).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    if backend == "auto":
        onnx_path, why = _auto_onnx(embedder, path, dtype)
        log.info("backend=auto: %s (%s)", "onnx" if onnx_path else "torch", why)
        if onnx_path is not None:
            from jude.serving.onnx_backend import OnnxBackend

            chosen: Backend = OnnxBackend(onnx_path, embedder.meta.pooling, threads=threads)
        else:
            if threads:
                torch.set_num_threads(threads)
            chosen = TorchBackend(embedder)
        chosen.choice = f"auto: {why}"
        return chosen
    if backend == "torch":
        if threads:
            torch.set_num_threads(threads)
        if dtype != "float32":
            embedder.backbone.to(DTYPES[dtype])
        return TorchBackend(embedder)
    if dtype != "float32":
        raise ValueError(
            f"backend='onnx' runs the float32 export; dtype={dtype!r} is for backend='torch' (GPU pods: "
            "torch with dtype bfloat16)"
        )
    from jude.serving.onnx_backend import OnnxBackend, ensure_onnx

    device = "cuda" if embedder.device.type == "cuda" else "cpu"
    return OnnxBackend(ensure_onnx(embedder, path), embedder.meta.pooling, threads=threads, device=device)


def load_engine(
    model_uri: str,
    max_tokens: int | None = None,
    max_batch_tokens: int = 8192,
    max_batch_size: int = 32,
    device: str | None = None,
    *,
    backend: Literal["auto", "torch", "onnx"] = "torch",
    max_forward_tokens: int = 384,
    threads: int | None = None,
    dtype: str = "float32",
    concurrent_forwards: int = 1,
) -> InferenceEngine:
    """Load a model once: a local sentence-transformers directory, 'minilm', or a registry URI.

    The URI is resolved once (:func:`jude.registry.uri.resolve`): an alias
    (``models:/jude-embedder@champion``) becomes one version, which is both what
    is downloaded (``models:/jude-embedder/<n>``) and what ``/info`` reports, even
    if the alias moves meanwhile. Version and ``runs:/...`` URIs download through
    :func:`jude.registry.mlflow_registry.download_model`; a local path is used as
    is without importing MLflow. The saved directory already has LoRA merged
    (``Embedder.save``); an unmerged adapter is merged here.

    ``backend="onnx"`` runs ONNX Runtime over ``<model dir>/onnx/model.onnx``,
    exported from the same weights the first time (:func:`jude.serving.onnx_backend.ensure_onnx`).
    """
    from jude.registry.uri import resolve

    model = resolve(model_uri)
    if model.local:
        local = Path(model.pinned_uri).expanduser()
        path = str(local) if local.exists() else model.pinned_uri  # 'minilm': Embedder.load finds the package
    else:
        from jude.registry.mlflow_registry import download_model

        path = str(download_model(model))
    if model.registered:
        model_name = str(model.name)
    elif model_uri == "minilm":
        model_name = "all-MiniLM-L6-v2"
    else:
        model_name = Path(path).name
    embedder = Embedder.load(path, device=device)
    if embedder.has_lora:  # a directory saved with an unmerged adapter: serve merged weights
        embedder.backbone = embedder.backbone.merge_and_unload()
    return InferenceEngine.from_embedder(
        embedder,
        model_uri=model_uri,
        registry_version=model.version,
        max_tokens=max_tokens,
        path=path,
        model_name=model_name,
        max_batch_tokens=max_batch_tokens,
        max_batch_size=max_batch_size,
        max_forward_tokens=max_forward_tokens,
        backend=make_backend(embedder, path, backend, threads=threads, dtype=dtype),
        concurrent_forwards=concurrent_forwards,
    )
