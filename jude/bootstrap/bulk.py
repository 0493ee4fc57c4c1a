"""The bulk embedding path: many unique texts through one model, faster than ``SentenceTransformer.encode``.

What makes it faster (exact, same vectors up to float rounding):

- **Token-budget batching.** Texts are sorted by token length and each batch is filled
  until ``batch_size x longest length`` would pass ``token_budget``: short texts go in
  large batches, long ones in small, and padding is nearly gone (a fixed batch count pads
  every batch to its longest text and spends attention on the padding).
- **Tokenising ahead.** A second thread tokenises the next batches while the model runs
  the current one (the Rust tokenizer and torch's kernels both release the GIL).
- ``torch.inference_mode`` and an explicit thread count (``threads``; None keeps torch's).

Approximate options, off by default (the bench reports their cosine agreement to float32):

- ``quantize_int8``: dynamic int8 quantisation of the Linear layers (CPU only).
- ``float16_output``: vectors rounded to float16 (what a float16 online store keeps).
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from jude.modeling.embedder import Embedder


@dataclass(frozen=True)
class BulkOptions:
    """How :class:`BulkEncoder` batches and runs (see the module docstring)."""

    max_length: int | None = None  # None: the model's own budget per entity type (jude.json max_lengths)
    # padded tokens per batch: 8 texts of 256 tokens, 64 of 32. Measured on MiniLM, 2 CPU cores, 800 marketplace
    # texts: 2048 embedded 34 texts/s, 1024 32, 4096 31, 8192 26 (a batch's activations stay in cache).
    token_budget: int = 2048
    max_batch_size: int = 512
    prefetch: int = 2  # batches tokenised ahead
    threads: int | None = None
    quantize_int8: bool = False
    float16_output: bool = False

    def __post_init__(self) -> None:
        for name in ("max_length", "token_budget", "max_batch_size", "prefetch"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.max_length is not None and self.token_budget < self.max_length:
            raise ValueError(
                f"token_budget must be >= max_length ({self.max_length}) so one text fits a batch, "
                f"got {self.token_budget}"
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {self.threads}")


def token_budget_batches(lengths: np.ndarray, token_budget: int, max_batch_size: int) -> list[np.ndarray]:
    """Index batches over texts of ``lengths`` tokens: longest first, each within ``token_budget`` padded tokens.

    Every index appears exactly once. A batch of b texts whose longest has L tokens costs
    b * L padded tokens; a text longer than the budget still gets a batch of its own.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)  # the first of a batch is its longest (sorted)
        size = max(1, min(max_batch_size, token_budget // longest))
        batches.append(order[start : start + size])
        start += size
    return batches


class BulkEncoder:
    """Embeds lists of texts with a loaded :class:`Embedder` (see the module docstring)."""

    def __init__(self, embedder: Embedder, options: BulkOptions | None = None):
        self.options = options or BulkOptions()
        model = embedder
        if self.options.quantize_int8:
            if embedder.device.type != "cpu":
                raise ValueError(f"quantize_int8 runs on the CPU only; the model is on {embedder.device}")
            model = copy.deepcopy(embedder)
            model.backbone = torch.ao.quantization.quantize_dynamic(model.backbone, {nn.Linear}, dtype=torch.qint8)
        self.embedder = model.eval()
        self.inferences = 0  # texts embedded so far (tests and reports count inferences with it)

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    def max_length(self, entity_type: str | None = None) -> int:
        """The token limit for texts of ``entity_type``: ``options.max_length``, else the model's for that type."""
        if self.options.max_length is not None:
            return self.options.max_length
        lengths = self.embedder.meta.max_lengths
        return lengths.get(entity_type, max(lengths.values())) if entity_type else max(lengths.values())

    def token_lengths(self, texts: list[str], max_length: int) -> np.ndarray:
        """Tokens per text after truncation to ``max_length`` (one fast batched tokenizer call)."""
        enc = self.embedder.tokenizer(texts, truncation=True, max_length=max_length, add_special_tokens=True)
        return np.array([len(ids) for ids in enc["input_ids"]], dtype=np.int64)

    def _tokenised(
        self, texts: list[str], batches: list[np.ndarray], max_length: int
    ) -> Iterator[tuple[np.ndarray, dict]]:
        """(indices, CPU features) per batch, tokenised by a second thread ``prefetch`` batches ahead."""
        q: queue.Queue = queue.Queue(maxsize=self.options.prefetch)
        stop = threading.Event()

        def produce() -> None:
            try:
                for idx in batches:
                    if stop.is_set():
                        return
                    feats = self.embedder.tokenize([texts[i] for i in idx], max_length, to_device=False)
                    q.put((idx, feats))
                q.put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                q.put(exc)

        worker = threading.Thread(target=produce, name="bulk-tokenize", daemon=True)
        worker.start()
        try:
            while (item := q.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)

    def encode(self, texts: list[str], entity_type: str | None = None) -> np.ndarray:
        """(N, D) float32 embeddings of ``texts`` (of ``entity_type``: its token limit), in input order."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, got a single string")
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)  # (N, D)
        if not texts:
            return out
        opts = self.options
        max_length = self.max_length(entity_type)
        budget = max(opts.token_budget, max_length)
        batches = token_budget_batches(self.token_lengths(texts, max_length), budget, opts.max_batch_size)
        previous_threads = torch.get_num_threads()
        if opts.threads is not None:
            torch.set_num_threads(opts.threads)
        device = self.embedder.device
        try:
            with torch.inference_mode():
                for idx, feats in self._tokenised(texts, batches, max_length):
                    emb = self.embedder({k: v.to(device) for k, v in feats.items()})  # (B, D)
                    out[idx] = emb.float().cpu().numpy()
        finally:
            if opts.threads is not None:
                torch.set_num_threads(previous_threads)
        self.inferences += len(texts)
        if opts.float16_output:
            out = out.astype(np.float16).astype(np.float32)
        return out
