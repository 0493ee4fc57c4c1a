"""The nearline processor takes the grounded world's change stream (``data.synthetic.world: grounded``).

A small run: the stream of a small grounded marketplace, delivered with duplicates and out of order, through the
processor (the machine's Redis as the online store, the hash model); the online store ends as the oracle says.
"""

from __future__ import annotations

import pytest

from jude.cli import build_parser
from jude.config import SyntheticConfig
from jude.data.changes import ChangeStreamConfig, generate_change_stream, to_events
from jude.data.grounded.taxonomy import grounded_occupation_of
from jude.data.synthetic import generate_marketplace
from jude.nearline.inference import HashInference
from jude.nearline.processor import Processor, Target
from jude.nearline.publish import synthetic_events
from jude.stores.online import RedisOnlineStore
from tests.nearline.nearline_support import VERSION, FakeSource, MemoryHistory, online_mismatches

GROUNDED = dict(world="grounded", occupations=30, areas=10, n_jobs=80, n_members=60, days=30, impressions_per_member=15)


@pytest.mark.services
def test_the_processor_applies_a_grounded_stream(redis_client, redis_prefix):
    market = generate_marketplace(SyntheticConfig(seed=2, **GROUNDED))
    cfg = ChangeStreamConfig(n_events=1500, duplicates=0.05, shuffle_window=30, apply_edit_share=0.3)
    events = to_events(generate_change_stream(market, cfg))
    store = RedisOnlineStore(redis_client, prefix=redis_prefix)
    for t in ("job", "profile", "resume"):
        store.set_active(t, VERSION)
    source, model, history = FakeSource(), HashInference(), MemoryHistory()
    processor = Processor(source, store, history, [Target(VERSION, model)])
    for start in range(0, len(events), 200):
        processor.process([source.message(e) for e in events[start : start + 200]])
    assert source.dead == [] and len(source.acked) == len(events)
    assert online_mismatches(store, events, model) == []
    assert model.texts < 0.5 * len(events)  # change detection: most events leave the text as it was


def test_jude_nearline_publish_can_replay_the_grounded_worlds_stream():
    args = build_parser().parse_args(["nearline", "publish", "--synthetic", "--events", "4000", "--world", "grounded"])
    events, _ = synthetic_events(n_events=args.events, seed=args.seed, world=args.world)
    assert len(events) == 4000
    titles = {e["fields"]["title"] for e in events if e["entity_type"] == "job" and e["op"] == "upsert"}
    assert titles and all(grounded_occupation_of(t) is not None for t in titles)
