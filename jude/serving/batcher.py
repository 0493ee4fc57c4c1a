"""Dynamic micro-batching: concurrent requests share one forward pass.

Requests (each a list of prepared texts) wait in a bounded queue. One worker
task takes as many whole requests as fit ``max_batch_size`` texts and
``max_batch_tokens`` tokens, runs the engine in a worker thread (the event loop
keeps accepting requests meanwhile) and hands each request its rows back.

Batching is greedy: while the model computes one batch the next requests pile
up, and the worker takes them all at once when it is free. A lone request never
waits (latency at concurrency 1 is one forward pass). Only when the previous
batch held several requests (the server is under concurrent load) does the worker
wait up to ``max_wait_ms`` more to fill the batch.

When the queue holds ``max_queue_size`` texts, :meth:`MicroBatcher.submit`
raises :class:`QueueFullError` (the HTTP layer answers 429 with Retry-After).
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from jude.serving.engine import InferenceEngine, Prepared


class QueueFullError(RuntimeError):
    """The server is overloaded; ``retry_after`` is a hint in whole seconds."""

    def __init__(self, queued: int, limit: int, retry_after: int):
        super().__init__(f"the request queue is full ({queued} texts waiting, limit {limit}); "
                         f"retry after {retry_after}s")
        self.retry_after = retry_after


@dataclass
class _Job:
    items: list[Prepared]
    future: asyncio.Future
    tokens: int = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = sum(p.n_tokens for p in self.items)


class MicroBatcher:
    """Groups concurrent requests into micro-batches for one :class:`InferenceEngine`."""

    def __init__(self, engine: InferenceEngine, max_batch_size: int = 32, max_batch_tokens: int = 8192,
                 max_wait_ms: float = 2.0, max_queue_size: int = 1024, metrics=None):
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue_size = max_queue_size
        self.metrics = metrics
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued_texts = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jude-model")
        self._last_batch_jobs = 0
        self._batch_seconds = 0.05  # running mean of one batch's compute time, for Retry-After

    # ---- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="jude-batcher")

    async def stop(self) -> None:
        """Finish nothing new; fail what is still queued; stop the worker."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._queued_texts = 0
        self._executor.shutdown(wait=False)

    @property
    def queued_texts(self) -> int:
        return self._queued_texts

    # ---- the request side -------------------------------------------------------------
    async def submit(self, items: list[Prepared]) -> np.ndarray:
        """Embed one request's prepared texts -> pooled (N, D) float32 rows, in order."""
        if self._task is None:
            raise RuntimeError("the batcher is not started")
        if not items:
            return np.zeros((0, self.engine.info.dimension), dtype=np.float32)
        if self._queued_texts + len(items) > self.max_queue_size:
            batches_ahead = math.ceil((self._queued_texts + len(items)) / self.max_batch_size)
            raise QueueFullError(self._queued_texts, self.max_queue_size,
                                 max(1, math.ceil(batches_ahead * self._batch_seconds)))
        job = _Job(items, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._queued_texts += len(items)
        self._report_queue()
        self._wakeup.set()
        return await job.future

    def _report_queue(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(self._queued_texts)

    # ---- the worker -------------------------------------------------------------------
    def _take(self, batch: list[_Job], n: int, tokens: int) -> tuple[int, int]:
        """Move whole jobs from the queue into ``batch`` while they fit the limits."""
        while self._queue:
            job = self._queue[0]
            if job.future.done():  # the client went away
                self._queue.popleft()
                self._queued_texts -= len(job.items)
                continue
            fits = n + len(job.items) <= self.max_batch_size and tokens + job.tokens <= self.max_batch_tokens
            if batch and not fits:
                break
            self._queue.popleft()
            self._queued_texts -= len(job.items)
            batch.append(job)
            n += len(job.items)
            tokens += job.tokens
        return n, tokens

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch: list[_Job] = []
            n, tokens = self._take(batch, 0, 0)
            if (self.max_wait_s > 0 and self._last_batch_jobs > 1 and n < self.max_batch_size
                    and tokens < self.max_batch_tokens):
                # under concurrent load: let a few more requests join this batch
                deadline = loop.time() + self.max_wait_s
                while n < self.max_batch_size and loop.time() < deadline:
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), deadline - loop.time())
                    except asyncio.TimeoutError:
                        break
                    n, tokens = self._take(batch, n, tokens)
            self._report_queue()
            if not batch:
                continue
            self._last_batch_jobs = len(batch)
            items = [p for job in batch for p in job.items]
            t0 = time.perf_counter()
            try:
                emb = await loop.run_in_executor(self._executor, self.engine.embed_prepared, items)
            except Exception as e:  # the model failed: every request in the batch gets the error
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(e)
                continue
            elapsed = time.perf_counter() - t0
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * elapsed
            if self.metrics is not None:
                self.metrics.batch_size.observe(len(items))
                self.metrics.batch_tokens.observe(sum(p.n_tokens for p in items))
            start = 0
            for job in batch:
                rows = emb[start:start + len(job.items)]
                start += len(job.items)
                if not job.future.done():
                    job.future.set_result(rows)
