"""A historical backfill over the synthetic marketplace's full history of row versions: inferences vs naive.

    python bench/bootstrap_bench.py [--jobs 600] [--members 400] [--events 24000] [--model minilm] [--quick]
                                    [--out FILE]

Every version of every entity row that naive database change tracking emits
(`jude.data.changes.row_versions`: each save, and each single counter increment) goes
through `jude.bootstrap.backfill`: template -> content hash -> dedup -> bulk embed ->
Redis online store (a private key prefix, deleted afterwards) + a Delta history (a
temporary directory). A naive backfill embeds every upserted row version; the backfill
embeds each distinct text once. Needs Redis at $JUDE_TEST_REDIS_URL (default
redis://127.0.0.1:6379/0). Prints entities/s end to end and ends with
`dedup reduction: <naive inferences / inferences made>`. ``--out FILE`` writes the run's figures and summary
lines as JSON (``bench/results_io.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from results_io import BenchResults  # noqa: E402

from jude.env import apply_offline_env  # noqa: E402

apply_offline_env()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=600)
    p.add_argument("--members", type=int, default=400)
    p.add_argument("--events", type=int, default=24_000, help="events in the change stream (ChangeStreamConfig)")
    p.add_argument("--model", default="minilm", help="a model directory or 'minilm'")
    p.add_argument("--chunk-size", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="a smoke run: 60 jobs, 40 members, 1,500 events")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the results as JSON (bench/results_io.py)")
    a = p.parse_args()
    results = BenchResults("bootstrap_bench", a)
    import redis

    from jude.bootstrap.backfill import backfill
    from jude.bootstrap.engines import LocalEngine
    from jude.bootstrap.selection import history_rows
    from jude.config import SyntheticConfig
    from jude.data.changes import ChangeStreamConfig
    from jude.data.synthetic import generate_marketplace
    from jude.stores.offline import DeltaHistory
    from jude.stores.online import RedisOnlineStore

    jobs, members, events = (60, 40, 1500) if a.quick else (a.jobs, a.members, a.events)
    print(f"machine: {os.cpu_count()} CPUs, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    start = time.perf_counter()
    market = generate_marketplace(SyntheticConfig(n_jobs=jobs, n_members=members, seed=0))
    rows = history_rows(market, ChangeStreamConfig(n_events=events))
    naive = int((rows["op"] == "upsert").sum())
    print(
        f"marketplace: {jobs} jobs, {members} members, {events} events; row versions: {len(rows)} ({naive} upserts), "
        f"generated in {time.perf_counter() - start:.1f}s"
    )
    client = redis.Redis.from_url(os.environ.get("JUDE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    prefix = f"jude-bench:{uuid.uuid4().hex}:"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = LocalEngine(a.model)
            report = backfill(
                rows,
                engine,
                RedisOnlineStore(client, prefix=prefix),
                DeltaHistory(os.path.join(tmp, "history")),
                "bench-1",
                chunk_size=a.chunk_size,
            )
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    r = report
    print(
        f"entities: {r.entities}, distinct texts: {r.distinct_texts}, inferences: {r.inferences}, "
        f"history rows: {r.history_rows}, online writes: {r.online_applied}"
    )
    results.row(
        jobs=jobs,
        members=members,
        events=events,
        row_versions=len(rows),
        naive_inferences=naive,
        entities=r.entities,
        distinct_texts=r.distinct_texts,
        inferences=r.inferences,
        history_rows=r.history_rows,
        online_writes=r.online_applied,
        seconds=r.seconds,
        entities_per_s=r.entities_per_s,
        inferences_per_s=r.inferences_per_s,
    )
    results.say(
        f"end to end: {r.seconds:.1f}s, {r.entities_per_s:.1f} entities/s, {r.inferences_per_s:.1f} inferences/s",
        seconds=r.seconds,
        entities_per_s=r.entities_per_s,
        inferences_per_s=r.inferences_per_s,
    )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results.say(f"naive inferences (one per upserted row version): {naive}", naive_inferences=naive)
    results.say(f"dedup reduction: {naive / r.inferences:.2f}", dedup_reduction=naive / r.inferences)
    results.write(a.out)


if __name__ == "__main__":
    main()
