"""The Ray Data engine on a local 2-CPU Ray: the same stores as the local engine, byte for byte (slow)."""

import pytest

from jude.bootstrap.backfill import backfill
from jude.bootstrap.bulk import BulkOptions
from jude.bootstrap.engines import LocalEngine
from jude.bootstrap.selection import select
from jude.stores.offline import DeltaHistory
from jude.stores.online import RedisOnlineStore
from tests.bootstrap.test_backfill import VERSION, history_state, online_state

SMALL_BATCHES = BulkOptions(token_budget=512)  # several batches per chunk: both actors get work
ray = pytest.importorskip("ray", reason="the Ray engine needs the [ray] extra: pip install -e '.[ray]'")


@pytest.mark.slow
@pytest.mark.services
def test_ray_engine_writes_the_same_stores_as_the_local_engine(
    tiny_model_dir, snapshot, redis_client, redis_prefix, tmp_path
):
    from jude.bootstrap.engines import RayEngine

    rows = select(snapshot, ["job", "resume"], ids=sorted(set(snapshot["entity_id"]))[:80])
    stores = {}
    for name in ("local", "ray"):
        online = RedisOnlineStore(redis_client, prefix=f"{redis_prefix}{name}:")
        history = DeltaHistory(str(tmp_path / name))
        if name == "local":
            engine = LocalEngine(tiny_model_dir, SMALL_BATCHES)
        else:
            engine = RayEngine(tiny_model_dir, SMALL_BATCHES, actors=2, num_cpus=2)
        try:
            report = backfill(rows, engine, online, history, VERSION, chunk_size=30)
        finally:
            if name == "ray":
                ray.shutdown()
        assert report.inferences == report.distinct_texts > 0
        stores[name] = (online_state(online, rows), history_state(history))
    assert stores["ray"][0] == stores["local"][0]
    assert stores["ray"][1].equals(stores["local"][1])
