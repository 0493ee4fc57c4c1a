"""The processor on the machine's Redis (online store) and a Delta history, with a fake source and the hash model.

The model is :class:`HashInference` (a vector per text): what is tested is change
detection, the writes and the acknowledgements, not the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jude.nearline.inference import HashInference, InferenceRejected
from jude.nearline.processor import Processor, Target
from jude.stores.offline import DeltaHistory
from jude.stores.online import OnlineRecord, RedisOnlineStore, WriteStatus
from tests.nearline.nearline_support import (
    VERSION,
    FakeSource,
    MemoryHistory,
    expected_hash,
    job,
    online_mismatches,
    point_in_time,
    resume,
)

pytestmark = pytest.mark.services


@pytest.fixture()
def store(redis_client, redis_prefix):
    store = RedisOnlineStore(redis_client, prefix=redis_prefix)
    for t in ("job", "profile", "resume"):
        store.set_active(t, VERSION)
    return store


def make(store, history, inference=None, source=None, **kwargs):
    source = source or FakeSource()
    inference = inference or HashInference()
    return Processor(source, store, history, [Target(VERSION, inference)], **kwargs), source, inference


def test_unchanged_text_is_not_embedded_and_identical_texts_in_a_batch_are_embedded_once(store, tmp_path):
    history = DeltaHistory(tmp_path / "history")
    processor, source, model = make(store, history)
    first = [
        resume("R1", 1000, "Data engineer, Spark."),
        resume("R1", 2000, "Data engineer, Spark.", uploaded_at="again"),  # same text: an extra field changed
        resume("R2", 1500, "Data engineer, Spark."),  # another entity with the same text
    ]
    result = processor.process([source.message(e) for e in first])
    assert model.texts == 1 and result.embedded["resume"] == 1
    assert len(source.acked) == 3

    later = [resume("R1", 3000, "Data engineer, Spark.", file_name="cv.pdf"), resume("R2", 3000, "Nurse, Lyon.")]
    result = processor.process([source.message(e) for e in later])
    assert result.unchanged["resume"] == 1 and result.changed["resume"] == 1
    assert model.texts == 2  # only R2's new text
    got = store.get_embeddings("resume", ["R1", "R2"])
    assert got.meta.event_time_ms.tolist() == [3000, 3000]  # the unchanged edit advanced R1's event time
    np.testing.assert_allclose(got.vectors[0], model.vector("Resume:\nData engineer, Spark."))
    np.testing.assert_allclose(got.vectors[1], model.vector("Resume:\nNurse, Lyon."))
    rows = history.read("resume", VERSION)
    assert sorted(zip(rows.entity_id, rows.event_time)) == [
        ("R1", 1000),
        ("R1", 2000),
        ("R1", 3000),
        ("R2", 1500),
        ("R2", 3000),
    ]  # one row per event, the unchanged ones with the stored vector
    r1 = rows[rows.entity_id == "R1"]
    assert len({tuple(v) for v in r1.vector}) == 1 and r1.content_hash.nunique() == 1


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        (b"\xff not json", "<event>", "not UTF-8"),
        ({**resume("X", 1, "t"), "entity_type": "company"}, "entity_type", "'company'"),
        ({**resume("X", 1, "t"), "event_time": "yesterday"}, "event_time", "'yesterday'"),
        ({**resume("X", 1, "t"), "event_time": "2026-01-01T00:00:00"}, "event_time", "timezone"),
        (job("J", 1, remote="sometimes"), "fields.remote", "'sometimes'"),
        ({**job("J", 1), "fields": {"title": "Nurse"}}, "fields.company", "missing"),
        (job("J", 1, seniority="chief"), "fields.seniority", "'chief'"),
        (resume("X", 1, ""), "fields.resume_text", "''"),
    ],
)
def test_a_bad_event_is_dead_lettered_naming_field_and_value_and_the_rest_is_written(
    store, tmp_path, raw, field, fragment
):
    processor, source, _ = make(store, MemoryHistory())
    good = [resume("R1", 1000, "Welder."), resume("R2", 1000, "Baker.")]
    messages = [source.message(good[0]), source.message(raw), source.message(good[1])]
    bad = messages[1]
    result = processor.process(messages)
    [(message, reason)] = source.dead
    assert message is bad
    assert f"'{field}'" in reason and fragment in reason, reason
    assert result.reasons == [reason]
    assert [m.id for m in source.acked] == ["m1", "m3"]
    assert store.get_embeddings("resume", ["R1", "R2"]).found.all()


def test_a_delete_leaves_a_tombstone_and_a_history_row_and_a_late_upsert_does_not_resurrect(store, tmp_path):
    history = DeltaHistory(tmp_path / "history")
    processor, source, _ = make(store, history)
    processor.process([source.message(resume("R1", 1000, "Welder."))])
    processor.process([source.message(resume("R1", 3000, None))])
    processor.process([source.message(resume("R1", 2000, "Welder, certified."))])  # late: from before the delete
    got = store.get_embeddings("resume", ["R1"])
    assert not got.found[0]
    rows = history.read("resume", VERSION)
    assert list(zip(rows.event_time, rows.op)) == [(1000, "upsert"), (2000, "upsert"), (3000, "delete")]
    pit = history.point_in_time("resume", VERSION, pd.DataFrame({"entity_id": ["R1"] * 3, "ts": [1500, 2500, 3500]}))
    assert pit.found.tolist() == [True, True, False]
    assert pit.content_hash[1] == expected_hash(resume("R1", 2000, "Welder, certified."))


def test_nothing_is_acknowledged_or_written_online_when_the_history_append_fails(store):
    history = MemoryHistory(fail=1)
    processor, source, _ = make(store, history)
    messages = [source.message(resume("R1", 1000, "Welder."))]
    with pytest.raises(OSError, match="unreachable"):
        processor.process(messages)
    assert source.acked == [] and history.rows == []
    assert not store.get_embeddings("resume", ["R1"]).found[0]  # history first: the online write never happened
    processor.commit(processor.prepare(messages))  # the redelivery
    assert len(source.acked) == 1 and len(history.rows) == 1
    assert store.get_embeddings("resume", ["R1"]).found[0]


class RefusingModel(HashInference):
    """Refuses (as the server's INVALID_ARGUMENT would) any entity whose text contains 'REFUSE'."""

    def embed_texts(self, entity_type, texts):
        for i, text in enumerate(texts):
            if "REFUSE" in text:
                raise InferenceRejected(i, f"entities[{i}].resume_text: refused")
        return super().embed_texts(entity_type, texts)


def test_an_entity_the_model_refuses_is_dead_lettered_and_the_rest_written(store):
    processor, source, _ = make(store, MemoryHistory(), inference=RefusingModel())
    events = [resume("R1", 1000, "Welder."), resume("R2", 1000, "REFUSE me"), resume("R3", 1000, "Baker.")]
    result = processor.process([source.message(e) for e in events])
    [(message, reason)] = source.dead
    assert message.id == "m2" and "entities[1].resume_text: refused" in reason
    assert sorted(m.id for m in source.acked) == ["m1", "m3"] and result.acked == 2
    assert store.get_embeddings("resume", ["R1", "R2", "R3"]).found.tolist() == [True, False, True]


def test_a_touch_that_lost_a_race_is_written_again_with_its_vector(store):
    processor, source, model = make(store, MemoryHistory())
    processor.process([source.message(resume("R1", 1000, "Welder."))])
    original = store.write_many

    def racing_write_many(records):
        # Another worker writes different content (older than our event) between our read and our write.
        other = OnlineRecord("resume", "R1", VERSION, 1500, "upsert", np.ones(16, np.float32), "other-hash", "m")
        assert original([other]) == [WriteStatus.APPLIED]
        store.write_many = original
        return original(records)

    store.write_many = racing_write_many
    result = processor.process([source.message(resume("R1", 2000, "Welder.", file_name="cv.pdf"))])
    assert result.unchanged["resume"] == 1 and model.texts == 1  # the touch needed no new inference
    got = store.get_embeddings("resume", ["R1"])
    assert (got.meta.content_hash[0], int(got.meta.event_time_ms[0])) == (
        expected_hash(resume("R1", 0, "Welder.")),
        2000,
    )
    np.testing.assert_allclose(got.vectors[0], model.vector("Resume:\nWelder."))


def test_every_live_version_is_written_by_its_own_model_and_a_retired_one_is_not(store):
    old, new = HashInference(dimension=8, model="old"), HashInference(dimension=12, model="new")
    for t in ("job", "profile", "resume"):
        store.add_live_version(t, "v2")
    source = FakeSource()
    processor = Processor(source, store, MemoryHistory(), [Target(VERSION, old), Target("v2", new)])
    processor.process([source.message(resume("R1", 1000, "Welder."))])
    a, b = store.get_embeddings("resume", ["R1"], VERSION), store.get_embeddings("resume", ["R1"], "v2")
    assert (a.vectors.shape, b.vectors.shape) == ((1, 8), (1, 12))
    assert (a.meta.model_version[0], b.meta.model_version[0]) == ("old", "new")
    assert a.meta.content_hash[0] != b.meta.content_hash[0]  # the version is part of the hash

    store.retire_version("resume", "v2")
    result = processor.process([source.message(resume("R1", 2000, "Welder, certified."))])
    assert result.not_live[("resume", "v2")] == 1
    assert store.get_embeddings("resume", ["R1"], "v2").meta.event_time_ms[0] == 1000
    assert store.get_embeddings("resume", ["R1"], VERSION).meta.event_time_ms[0] == 2000


def test_each_event_is_validated_once_and_rendered_once_and_the_model_gets_the_hashed_text(store, monkeypatch):
    """Two targets of one template style and a retried commit: still one check and one render per event."""
    import jude.nearline.events as events_module
    import jude.nearline.processor as processor_module

    calls = {"validate": 0, "render": 0}
    adapter = events_module._FIELD_ADAPTERS["resume"]["resume_text"]

    class CountingAdapter:
        def validate_python(self, value):
            calls["validate"] += 1
            return adapter.validate_python(value)

    render = processor_module.render_entity

    def counting_render(*args):
        calls["render"] += 1
        return render(*args)

    monkeypatch.setitem(events_module._FIELD_ADAPTERS["resume"], "resume_text", CountingAdapter())
    monkeypatch.setattr(processor_module, "render_entity", counting_render)
    for t in ("job", "profile", "resume"):
        store.add_live_version(t, "v2")
    sent: list[str] = []

    class Recording(HashInference):
        def embed_texts(self, entity_type, texts):
            sent.extend(texts)
            return super().embed_texts(entity_type, texts)

    old, new = HashInference(dimension=8, model="old"), Recording(dimension=8, model="new")
    source = FakeSource()
    processor = Processor(source, store, MemoryHistory(), [Target(VERSION, old), Target("v2", new)])
    items = processor.prepare([source.message(resume(f"R{i}", 1000, f"Welder {i}.")) for i in range(3)])
    processor.commit(items)
    processor.commit(items)  # a retried commit (the worker's, after a store failure) renders nothing again
    assert calls == {"validate": 3, "render": 3}
    assert sent == [f"Resume:\nWelder {i}." for i in range(3)]  # the texts themselves, not the fields again
    got = store.get_embeddings("resume", ["R0"], "v2")
    assert got.meta.content_hash[0] == expected_hash(resume("R0", 0, "Welder 0."), "v2")


def test_the_naive_updater_embeds_every_upsert(store):
    processor, source, model = make(store, MemoryHistory(), change_detection=False, dedupe=False)
    events = [resume("R1", 1000, "Welder."), resume("R1", 2000, "Welder."), resume("R2", 1000, "Welder.")]
    processor.process([source.message(e) for e in events])
    assert model.texts == 3
    assert online_mismatches(store, events, model) == []


def test_the_history_answers_point_in_time_right_when_events_arrive_out_of_order(store):
    """An unchanged edit (t=2000) processed before a late, different edit (t=1500): at t=2500 the truth is t=2000's."""
    history = MemoryHistory()
    processor, source, _ = make(store, history)
    for e in [resume("R1", 1000, "A"), resume("R1", 2000, "A", uploaded_at="x"), resume("R1", 1500, "B")]:
        processor.process([source.message(e)])
    rows = history.frame()
    assert point_in_time(rows, "resume", VERSION, "R1", 1700)["content_hash"] == expected_hash(resume("R1", 0, "B"))
    assert point_in_time(rows, "resume", VERSION, "R1", 2500)["content_hash"] == expected_hash(resume("R1", 0, "A"))


# ---------------------------------------------------------------------------- property: delivery never matters

TEXTS = ["Welder.", "Baker.", "Nurse, Lyon."]


@st.composite
def logs_and_deliveries(draw):
    """An event log (2 entities, distinct times per entity) and a messy delivery of it, in batches."""
    events = []
    for entity in ("R1", "R2"):
        times = draw(st.lists(st.integers(1, 60), min_size=1, max_size=6, unique=True))
        for t in times:
            text = draw(st.sampled_from([*TEXTS, None]))  # None: a delete
            events.append(resume(entity, t * 1000, text))
    order = draw(st.permutations(range(len(events))))
    dups = draw(st.lists(st.sampled_from(range(len(events))), max_size=4))
    delivery = [*order, *dups]
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(delivery) - 1)), max_size=4, unique=True)))
    batches = [delivery[a:b] for a, b in zip([0, *cuts], [*cuts, len(delivery)]) if delivery[a:b]]
    redeliver = draw(st.lists(st.sampled_from(range(len(batches))), max_size=2))  # crashed after writing, before ack
    return events, batches, redeliver


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=logs_and_deliveries())
def test_redelivery_duplicates_and_out_of_order_events_leave_the_same_final_state(redis_client, case):
    from uuid import uuid4

    events, batches, redeliver = case
    prefix = f"jude-test:{uuid4().hex}:"
    store = RedisOnlineStore(redis_client, prefix=prefix)
    store.set_active("resume", VERSION)
    history = MemoryHistory()
    try:
        processor, source, model = make(store, history)
        messages = [source.message(e, id=f"e{i}") for i, e in enumerate(events)]
        for b, batch in enumerate(batches):
            for _ in range(1 + redeliver.count(b)):
                processor.process([messages[i] for i in batch])

        assert online_mismatches(store, events, model) == []
        rows = history.frame()
        for entity in ("R1", "R2"):
            mine = sorted((e for e in events if e["entity_id"] == entity), key=lambda e: e["event_time"])
            for e in mine:  # at each event's time, the history says what that event made
                ms = int(pd.Timestamp(e["event_time"]).value // 1_000_000)
                got = point_in_time(rows, "resume", VERSION, entity, ms)
                if e["op"] == "delete":
                    assert got is None
                else:
                    assert got["content_hash"] == expected_hash(e)
                    np.testing.assert_allclose(got["vector"], model.vector(f"Resume:\n{e['fields']['resume_text']}"))
    finally:
        keys = list(redis_client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            redis_client.delete(*keys)
