"""The engine and the batcher's worker: sub-chunks, tokenising off the event loop, token estimates."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from jude.serving.batcher import MicroBatcher
from jude.serving.engine import InferenceEngine
from tests.serving.conftest import app_client

TEXTS = [
    "Nurse",
    "Senior Python developer with Kubernetes experience in Berlin. Skills: python, sql, kafka, terraform.",
    "Data engineer building streaming pipelines with Kafka, Flink and a lot of SQL every single day. " * 3,
    "  naïve café in Zürich, 東京 and São Paulo 🙂\tremote OK",
    "Frontend engineer (React, TypeScript)",
    "UX researcher",
    "Warehouse operations lead, night shifts, forklift licence",
]


def test_sub_chunks_fit_the_forward_budget(minilm):
    engine = InferenceEngine.from_embedder(minilm, max_forward_tokens=100, max_batch_size=8)
    lengths = [90, 60, 40, 33, 30, 25, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 300]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    chunks = engine._chunks(order, lengths)
    assert [i for chunk in chunks for i in chunk] == order, "every text once, longest first"
    for chunk in chunks:
        padded = len(chunk) * max(lengths[i] for i in chunk)
        assert len(chunk) == 1 or padded <= 100, f"chunk {chunk} pads to {padded} tokens"
        assert len(chunk) <= 8
    assert [17] in chunks, "a text over the budget runs alone"


@pytest.mark.parametrize("budget", [16, 384, 100_000])
def test_embeddings_do_not_depend_on_the_chunking(minilm, budget):
    engine = InferenceEngine.from_embedder(minilm, max_forward_tokens=budget)
    np.testing.assert_allclose(engine.embed(TEXTS), minilm.encode(TEXTS), atol=1e-5)


def test_the_direct_tokenizer_gives_the_tokenizers_ids(minilm):
    engine = InferenceEngine.from_embedder(minilm)
    assert engine._rust is not None, "MiniLM's fast tokenizer is called directly"
    got = [p.input_ids for p in engine.prepare(TEXTS, max_tokens=512)]
    assert got == [list(ids) for ids in minilm.tokenizer(TEXTS)["input_ids"]]


def test_truncation_keeps_the_closing_special_token(minilm):
    engine = InferenceEngine.from_embedder(minilm)
    (p,) = engine.prepare([TEXTS[2]], max_tokens=16)
    want = minilm.tokenizer([TEXTS[2]], truncation=True, max_length=16)["input_ids"][0]
    assert p.input_ids == list(want) and p.n_tokens == 16 and p.truncated


@pytest.mark.anyio
async def test_requests_are_tokenised_in_the_worker_thread_not_on_the_event_loop(engine, monkeypatch):
    threads: list[str] = []
    prepare = engine.prepare

    def recording_prepare(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(engine, "prepare", recording_prepare)
    async with app_client(engine) as c:
        rs = await asyncio.gather(*[c.post("/v1/embeddings", json={"input": t}) for t in TEXTS])
        job = await c.post("/v1/entities/resume/embed", json={"entity": {"resume_text": "Ten years of Java."}})
    assert [r.status_code for r in rs] == [200] * len(TEXTS) and job.status_code == 200
    assert len(threads) == len(TEXTS) + 1
    assert all(name.startswith("jude-model") for name in threads), threads


@pytest.mark.anyio
async def test_a_request_too_long_without_truncation_fails_alone_in_its_batch(engine):
    long_text = "kafka " * 200
    async with app_client(engine, max_tokens=32) as c:
        rs = await asyncio.gather(
            *[c.post("/v1/embeddings", json={"input": t}) for t in TEXTS[:3]],
            c.post("/v1/embeddings", json={"input": ["ok", long_text], "truncate": False}),
            *[c.post("/v1/embeddings", json={"input": t}) for t in TEXTS[3:]],
        )
    codes = [r.status_code for r in rs]
    assert codes == [200] * 3 + [422] + [200] * (len(TEXTS) - 3)
    message = rs[3].json()["error"]["message"]
    assert message.startswith("input[1] has ") and "the limit is 32" in message


@pytest.mark.anyio
async def test_queued_tokens_are_estimated_at_the_measured_tokens_per_character(engine):
    batcher = MicroBatcher(engine)
    await batcher.start()
    try:
        texts = [t for t in TEXTS if t != TEXTS[2]] * 3
        _, items = await batcher.submit_texts(texts, max_tokens=512)
    finally:
        await batcher.stop()
    real = sum(p.n_tokens for p in items)
    assert batcher.tokens_per_char == pytest.approx(real / sum(len(t) for t in texts))
    assert batcher.estimate_tokens(texts, 512) == pytest.approx(real, rel=0.1)
    assert batcher.estimate_tokens([TEXTS[2] * 10], max_tokens=64) == 64, "a text is priced at most at its limit"


def test_jude_serve_takes_the_backend_flag():
    from jude.cli import build_parser

    assert build_parser().parse_args(["serve", "--backend", "onnx"]).backend == "onnx"
    assert build_parser().parse_args(["serve"]).backend is None, "unset: the config (or torch) decides"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--backend", "tensorrt"])


@pytest.mark.anyio
@pytest.mark.parametrize("in_flight", [1, 2])
async def test_batches_in_flight_run_side_by_side_and_answer_alike(minilm, monkeypatch, in_flight):
    """batches_in_flight 2 (with the engine's concurrent_forwards 2, as `jude serve` sets them): a batch is
    tokenised and run while the one before is still in its forward; 1: strictly one after the other. Every request
    gets exactly what the engine alone gives."""
    engine = InferenceEngine.from_embedder(minilm, concurrent_forwards=in_flight)
    events: list[tuple] = []
    inside = most_inside = 0
    guard = threading.Lock()
    prepare, forward = engine.prepare, engine.backend.forward

    def recording_prepare(*args, **kwargs):
        events.append(("prepare", time.perf_counter()))
        return prepare(*args, **kwargs)

    def slow_forward(ids, mask):
        nonlocal inside, most_inside
        with guard:
            inside += 1
            most_inside = max(most_inside, inside)
        start = time.perf_counter()
        try:
            time.sleep(0.15)  # long enough for the next batch to be taken meanwhile
            return forward(ids, mask)
        finally:
            events.append(("forward", start, time.perf_counter()))
            with guard:
                inside -= 1

    monkeypatch.setattr(engine, "prepare", recording_prepare)
    monkeypatch.setattr(engine.backend, "forward", slow_forward)
    batcher = MicroBatcher(engine, max_batch_size=2, max_wait_ms=0, batches_in_flight=in_flight)
    await batcher.start()
    try:
        got = await asyncio.gather(*[batcher.submit_texts([t]) for t in TEXTS[:6]])
    finally:
        await batcher.stop()
    monkeypatch.undo()
    want = engine.embed(TEXTS[:6], normalize=False)
    for (emb, _), w in zip(got, want):
        np.testing.assert_allclose(emb[0], w, atol=1e-5)
    spans = [(e[1], e[2]) for e in events if e[0] == "forward"]
    prepared = [e[1] for e in events if e[0] == "prepare"]
    assert any(start < t < end for t in prepared for start, end in spans) == (in_flight == 2)
    assert most_inside == in_flight  # two forwards side by side only when allowed, and then they happen


def test_batches_in_flight_or_concurrent_forwards_below_one_is_refused(engine, minilm):
    with pytest.raises(ValueError, match="batches_in_flight must be >= 1, got 0"):
        MicroBatcher(engine, batches_in_flight=0)
    with pytest.raises(ValueError, match="concurrent_forwards must be >= 1, got 0"):
        InferenceEngine.from_embedder(minilm, concurrent_forwards=0)
