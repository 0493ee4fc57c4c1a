"""Dynamic micro-batching: concurrent requests share one forward pass.

Requests wait in a bounded queue, either as raw texts (:meth:`MicroBatcher.submit_texts`,
what the server sends) or already tokenised (:meth:`MicroBatcher.submit`). One
worker task takes as many whole requests as fit ``max_batch_size`` texts and
``max_batch_tokens`` tokens and hands the batch to one worker thread, which
tokenises the raw texts (one tokenizer call per request, off the event loop) and
runs the engine; the event loop meanwhile only accepts and answers HTTP requests.
Each request gets its rows back; a request whose text is too long with
``truncate=false`` gets its 422 alone, the rest of its batch is served.

Batching is greedy: while the model computes one batch the next requests pile
up, and the worker takes them all at once when it is free. With
``batches_in_flight`` 2, the next batch is taken while the forward of the one before
still runs: its tokenising overlaps that forward, and the two forwards run side by
side where the engine allows it (``InferenceEngine(concurrent_forwards=2)``, which
``jude serve`` sets from the same setting). A lone request never
waits (latency at concurrency 1 is one forward pass). Only when the previous
batch held several requests (the server is under concurrent load) does the worker
wait up to ``max_wait_ms`` more to fill the batch.

Overload is refused, not queued (the HTTP layer answers 429 with Retry-After,
gRPC RESOURCE_EXHAUSTED), on either of two bounds:

- count: the queue would hold more than ``max_queue_size`` texts;
- time: the time the request has already waited since the server accepted it
  (:mod:`jude.serving.deadline`: in the event loop, before it reached the queue)
  plus the estimated wait, (tokens queued + the request's own tokens) / measured
  throughput, would exceed ``max_queue_wait_s``. Throughput is an exponentially
  weighted average of recent batches (tokens per second of model time, measured
  in the worker thread). A request still queued when its budget has run out is
  refused when the worker reaches it, so an answered request started within the
  budget and finished within the budget plus one batch. A request that finds the
  queue empty and has not yet used its budget is accepted however long it is,
  and until the first batch has been measured only the count bound applies.

The tokens of a raw-text request are not known before the worker tokenises it:
they are estimated from its characters at the measured tokens per character of
recent batches (each text capped at its token limit), which is what the queue's
token count (``jude_queue_tokens``) holds for such requests.
"""

from __future__ import annotations

import asyncio
import collections
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from jude.serving import deadline
from jude.serving.engine import InferenceEngine, InputError, Prepared

# Weight of the older measurements in the throughput average, per batch (about the last 10 batches count).
_THROUGHPUT_DECAY = 0.9
# Tokens per character before any text has been tokenised (English subword vocabularies: about 0.25).
_PRIOR_TOKENS_PER_CHAR = 0.3


class QueueFullError(RuntimeError):
    """The server is overloaded (queue full, or the wait would exceed the budget); ``retry_after`` in whole seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(f"{message}; retry after {retry_after}s")
        self.retry_after = retry_after


@dataclass
class _Job:
    """One request in the queue: tokenised ``items``, or raw ``texts`` the worker thread tokenises."""

    future: asyncio.Future
    n_texts: int
    tokens: int  # exact for tokenised items, estimated for raw texts
    items: list[Prepared] | None = None
    texts: list[str] | None = None
    max_tokens: int | None = None
    truncate: bool = True
    param: str = "input"
    accepted_at: float = 0.0  # time.monotonic() when the server accepted the request


@dataclass
class _Done:
    """What the worker thread hands back for one batch."""

    results: list[np.ndarray | InputError]  # per job: its rows, or why it alone was refused
    texts: int
    tokens: int
    seconds: float
    seen_tokens: int  # tokens and characters of the raw texts tokenised (untruncated): the estimate's ratio
    seen_chars: int


class MicroBatcher:
    """Groups concurrent requests into micro-batches for one :class:`InferenceEngine`."""

    def __init__(
        self,
        engine: InferenceEngine,
        max_batch_size: int = 32,
        max_batch_tokens: int = 8192,
        max_wait_ms: float = 2.0,
        max_queue_size: int = 1024,
        max_queue_wait_s: float | None = 2.0,
        metrics=None,
        batches_in_flight: int = 1,
    ):
        if batches_in_flight < 1:
            raise ValueError(f"batches_in_flight must be >= 1, got {batches_in_flight}")
        self.engine = engine
        self.max_batch_size = max_batch_size
        self.max_batch_tokens = max_batch_tokens
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue_size = max_queue_size
        self.max_queue_wait_s = max_queue_wait_s
        self.metrics = metrics
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued_texts = 0
        self._queued_tokens = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.batches_in_flight = batches_in_flight
        self._executor = ThreadPoolExecutor(max_workers=batches_in_flight, thread_name_prefix="jude-model")
        self._slots: asyncio.Semaphore | None = None  # one per batch in flight
        self._in_flight: set[asyncio.Task] = set()
        self._clock = threading.Lock()
        self._last_end = 0.0  # perf_counter when the last batch's compute ended
        self._last_batch_jobs = 0
        # decayed sums of the tokens and model seconds of recent batches: their ratio is the throughput
        self._done_tokens = 0.0
        self._done_seconds = 0.0
        # decayed sums of the tokens and characters of recent raw texts: their ratio prices a text before tokenising
        self._seen_tokens = 0.0
        self._seen_chars = 0.0

    # ---- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._slots = asyncio.Semaphore(self.batches_in_flight)
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
        for task in list(self._in_flight):  # batches the model is on: their requests are failed, not left hanging
            task.cancel()
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._queued_texts = 0
        self._queued_tokens = 0
        self._executor.shutdown(wait=False)

    @property
    def queued_texts(self) -> int:
        return self._queued_texts

    @property
    def queued_tokens(self) -> int:
        return self._queued_tokens

    @property
    def throughput(self) -> float | None:
        """Measured tokens per second of model time (recent batches weigh most); None before the first batch."""
        if self._done_seconds <= 0:
            return None
        return self._done_tokens / self._done_seconds

    @property
    def tokens_per_char(self) -> float:
        """Measured tokens per character of recent raw texts (a prior until the first is tokenised)."""
        if self._seen_chars <= 0:
            return _PRIOR_TOKENS_PER_CHAR
        return self._seen_tokens / self._seen_chars

    def estimate_tokens(self, texts: list[str], max_tokens: int | None) -> int:
        """The tokens ``texts`` will likely have, each capped at ``max_tokens`` (what a raw request is queued at)."""
        ratio = self.tokens_per_char
        limit = max_tokens or self.engine.info.max_tokens
        return sum(min(limit, max(1, math.ceil(len(t) * ratio))) for t in texts)

    def estimated_wait(self, tokens: int = 0) -> float | None:
        """Seconds until the queue, plus ``tokens`` more, is through the model; None while unmeasured."""
        rate = self.throughput
        return None if rate is None else (self._queued_tokens + tokens) / rate

    def admit(self, n_texts: int, n_tokens: int = 0, waited: float = 0.0) -> None:
        """Raise :class:`QueueFullError` if a request of ``n_texts`` texts (``n_tokens`` tokens) must be refused.

        ``waited``: seconds the request has already waited since the server accepted it.
        :meth:`submit` and :meth:`submit_texts` call it; a caller may call it earlier
        (``n_tokens=0``) to refuse before doing any work.
        """
        if self._queued_texts + n_texts > self.max_queue_size:
            self._refused("queue_full")
            raise QueueFullError(
                f"the request queue is full ({self._queued_texts} texts waiting, limit {self.max_queue_size})",
                self._retry_after(),
            )
        if self.max_queue_wait_s is None:
            return
        if waited > self.max_queue_wait_s:
            self._refused("wait_over_budget")
            raise QueueFullError(
                f"the server is overloaded: the request already waited {waited:.2f}s before reaching the model's "
                f"queue, over the {self.max_queue_wait_s:g}s budget (max_queue_wait_s)",
                self._retry_after(),
            )
        if self._queued_tokens == 0:
            return
        wait = self.estimated_wait(n_tokens)
        if wait is not None and waited + wait > self.max_queue_wait_s:
            self._refused("wait_over_budget")
            raise QueueFullError(
                f"the server is overloaded: the estimated wait is {wait:.2f}s ({self._queued_tokens} tokens queued, "
                f"{self.throughput:.0f} tokens/s) after {waited:.2f}s waited, over the {self.max_queue_wait_s:g}s "
                "budget (max_queue_wait_s)",
                self._retry_after(),
            )

    def _retry_after(self) -> int:
        """Whole seconds until the current queue has drained (at least 1)."""
        wait = self.estimated_wait()
        return max(1, math.ceil(wait if wait is not None else 1.0))

    def _refused(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.rejected.labels(reason).inc()

    # ---- the request side -------------------------------------------------------------
    async def submit(self, items: list[Prepared]) -> np.ndarray:
        """Embed one request's tokenised texts -> pooled (N, D) float32 rows, in order."""
        if not items:
            self._require_started()
            return np.zeros((0, self.engine.info.dimension), dtype=np.float32)
        job = _Job(self._future(), n_texts=len(items), tokens=sum(p.n_tokens for p in items), items=items)
        return await self._enqueue(job)

    async def submit_texts(
        self, texts: list[str], max_tokens: int | None = None, truncate: bool = True, param: str = "input"
    ) -> tuple[np.ndarray, list[Prepared]]:
        """Tokenise (in the worker thread) and embed one request's texts -> (pooled (N, D) rows, their tokens).

        Raises :class:`jude.serving.engine.InputError` (422) for a text over ``max_tokens``
        with ``truncate=False``, as :meth:`InferenceEngine.prepare` does.
        """
        if not texts:
            self._require_started()
            return np.zeros((0, self.engine.info.dimension), dtype=np.float32), []
        job = _Job(
            self._future(),
            n_texts=len(texts),
            tokens=self.estimate_tokens(texts, max_tokens),
            texts=texts,
            max_tokens=max_tokens,
            truncate=truncate,
            param=param,
        )
        rows = await self._enqueue(job)
        return rows, job.items

    def _require_started(self) -> None:
        if self._task is None:
            raise RuntimeError("the batcher is not started")

    def _future(self) -> asyncio.Future:
        self._require_started()
        return asyncio.get_running_loop().create_future()

    async def _enqueue(self, job: _Job) -> np.ndarray:
        job.accepted_at = deadline.accepted_at()
        self.admit(job.n_texts, job.tokens, waited=time.monotonic() - job.accepted_at)
        self._queue.append(job)
        self._queued_texts += job.n_texts
        self._queued_tokens += job.tokens
        self._report_queue()
        self._wakeup.set()
        return await job.future

    def _report_queue(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(self._queued_texts)
            self.metrics.queue_tokens.set(self._queued_tokens)

    # ---- the worker -------------------------------------------------------------------
    def _take(self, batch: list[_Job], n: int, tokens: int) -> tuple[int, int]:
        """Move whole jobs from the queue into ``batch`` while they fit the limits; refuse those out of time."""
        now = time.monotonic()
        while self._queue:
            job = self._queue[0]
            if job.future.done():  # the client went away
                self._queue.popleft()
                self._queued_texts -= job.n_texts
                self._queued_tokens -= job.tokens
                continue
            if self.max_queue_wait_s is not None and now - job.accepted_at > self.max_queue_wait_s:
                # its budget ran out in the queue (the estimate was wrong, or a slow batch): refuse it rather
                # than answer it late
                self._queue.popleft()
                self._queued_texts -= job.n_texts
                self._queued_tokens -= job.tokens
                self._refused("wait_over_budget")
                job.future.set_exception(
                    QueueFullError(
                        f"the server is overloaded: the request waited {now - job.accepted_at:.2f}s in the queue, "
                        f"over the {self.max_queue_wait_s:g}s budget (max_queue_wait_s)",
                        self._retry_after(),
                    )
                )
                continue
            fits = n + job.n_texts <= self.max_batch_size and tokens + job.tokens <= self.max_batch_tokens
            if batch and not fits:
                break
            self._queue.popleft()
            self._queued_texts -= job.n_texts
            self._queued_tokens -= job.tokens
            batch.append(job)
            n += job.n_texts
            tokens += job.tokens
        return n, tokens

    def _compute(self, batch: list[_Job]) -> _Done:
        """In the worker thread: tokenise the raw requests, run the whole batch through the engine."""
        t0 = time.perf_counter()
        results: list[np.ndarray | InputError | None] = [None] * len(batch)
        items: list[Prepared] = []
        spans: list[tuple[int, int, int]] = []  # (job, first row, end row)
        seen_tokens = seen_chars = 0
        for k, job in enumerate(batch):
            if job.items is None:
                try:
                    job.items = self.engine.prepare(job.texts, job.max_tokens, job.truncate, job.param)
                except InputError as e:  # too long with truncate=false: this request alone is refused
                    results[k] = e
                    continue
                for text, p in zip(job.texts, job.items):
                    if not p.truncated:
                        seen_tokens += p.n_tokens
                        seen_chars += len(text)
            spans.append((k, len(items), len(items) + len(job.items)))
            items.extend(job.items)
        emb = self.engine.embed_prepared(items) if items else None
        for k, start, end in spans:
            results[k] = emb[start:end]
        tokens = sum(p.n_tokens for p in items)
        t1 = time.perf_counter()
        with self._clock:
            # the model's time for this batch: from its start, or from the end of the batch before where the two
            # overlapped (batches_in_flight > 1), so the throughput is not halved by time spent waiting for it
            seconds = t1 - max(t0, self._last_end)
            self._last_end = t1
        return _Done(results, len(items), tokens, seconds, seen_tokens, seen_chars)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()  # a batch is taken only when the model's threads can start on it
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch: list[_Job] = []
            n, tokens = self._take(batch, 0, 0)
            if (
                self.max_wait_s > 0
                and self._last_batch_jobs > 1
                and n < self.max_batch_size
                and tokens < self.max_batch_tokens
            ):
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
                self._slots.release()
                continue
            self._last_batch_jobs = len(batch)
            task = asyncio.create_task(self._serve(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _serve(self, batch: list[_Job]) -> None:
        """Run one batch in a model thread and answer its requests; frees its slot however it ends."""
        try:
            try:
                done = await asyncio.get_running_loop().run_in_executor(self._executor, self._compute, batch)
            except asyncio.CancelledError:  # the server is stopping
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(RuntimeError("the server is shutting down"))
                raise
            except Exception as e:  # the model failed: every request in the batch gets the error
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(e)
                return
            self._measure(done)
            for job, result in zip(batch, done.results):
                if job.future.done():
                    continue
                if isinstance(result, InputError):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
        finally:
            self._slots.release()

    def _measure(self, done: _Done) -> None:
        """Fold one batch into the throughput and tokens-per-character averages (long batches weigh more)."""
        if done.texts:
            self._done_tokens = _THROUGHPUT_DECAY * self._done_tokens + done.tokens
            self._done_seconds = _THROUGHPUT_DECAY * self._done_seconds + done.seconds
        if done.seen_chars:
            self._seen_tokens = _THROUGHPUT_DECAY * self._seen_tokens + done.seen_tokens
            self._seen_chars = _THROUGHPUT_DECAY * self._seen_chars + done.seen_chars
        if self.metrics is not None and done.texts:
            self.metrics.throughput.set(self.throughput)
            self.metrics.batch_size.observe(done.texts)
            self.metrics.batch_tokens.observe(done.tokens)
