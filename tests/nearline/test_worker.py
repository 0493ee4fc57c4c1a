"""The worker in-process: its config, metrics and probes, retries, versions; and the `jude nearline` commands.

The model is :class:`HashInference` throughout (the model is not what is tested here).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from jude.cli import main as jude_main
from jude.config import NearlineConfig
from jude.nearline.inference import HashInference
from jude.nearline.processor import Processor, Target
from jude.nearline.sources import Message, RedisStreamPublisher, RedisStreamSource, encode_event, publish_events
from jude.nearline.worker import ProbeServer, Worker, build_worker, load_config
from jude.stores.online import RedisOnlineStore
from tests.nearline.nearline_support import VERSION, MemoryHistory, online_mismatches, resume

ROOT = Path(__file__).resolve().parents[2]


def test_the_local_config_file_is_valid_and_lists_only_what_differs():
    cfg = load_config(ROOT / "configs" / "nearline.yaml")
    assert cfg.targets[0].model_uri == "minilm" and cfg.targets[0].embedding_version == "minilm-1"
    doc = yaml.safe_load((ROOT / "configs" / "nearline.yaml").read_text())["nearline"]
    defaults = NearlineConfig().model_dump()
    assert [k for k in doc if NearlineConfig.model_validate(doc).model_dump()[k] == defaults[k]] == []


def test_config_layers_and_errors_name_the_field_and_value(tmp_path, monkeypatch):
    path = tmp_path / "nearline.yaml"
    path.write_text("nearline:\n  batch_size: 10\n  targets: [{server: 'jude:50051'}]\n")
    monkeypatch.setenv("JUDE_NEARLINE_CONFIG", '{"batch_size": 20, "metrics_host": "0.0.0.0"}')
    cfg = load_config(path, overrides={"block_ms": 50})
    assert (cfg.batch_size, cfg.metrics_host, cfg.block_ms, cfg.targets[0].server) == (20, "0.0.0.0", 50, "jude:50051")
    monkeypatch.delenv("JUDE_NEARLINE_CONFIG")
    with pytest.raises(ValueError, match=r"batch_size: Input should be greater than or equal to 1 \(got 0\)"):
        load_config(overrides={"batch_size": 0})
    with pytest.raises(ValueError, match="exactly one of model_uri .* or server"):
        load_config(overrides={"targets": [{"model_uri": "minilm", "server": "h:1"}]})
    with pytest.raises(ValueError, match="each embedding_version once"):
        load_config(
            overrides={
                "targets": [{"server": "a:1", "embedding_version": "v"}, {"server": "b:1", "embedding_version": "v"}]
            }
        )


@pytest.fixture()
def built(redis_client, redis_prefix, tmp_path):
    """A worker built from a config (Redis source and store under the test's prefix, a Delta history)."""
    cfg = NearlineConfig(
        stream_prefix=redis_prefix,
        online_prefix=redis_prefix,
        history_path=str(tmp_path / "history"),
        targets=[{"model_uri": "hash", "embedding_version": VERSION}],
        block_ms=50,
        claim_idle_ms=100,
        lag_interval_s=0.01,
    )
    model = HashInference()
    worker = build_worker(cfg, inference_factory=lambda t: model)
    yield worker, model, cfg
    worker.source.close()


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def run_until(worker: Worker, done, timeout_s: float = 30.0) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while not done() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert done(), "the worker did not finish in time"


@pytest.mark.services
def test_worker_serves_metrics_and_probes_while_it_processes(built, redis_client, redis_prefix):
    worker, model, cfg = built
    events = [
        resume("R1", 1000, "Welder."),
        resume("R1", 2000, "Welder.", file_name="a.pdf"),
        resume("R2", 1000, "Baker."),
    ]
    publish_events(events, RedisStreamPublisher(redis_client, prefix=redis_prefix))
    probes = ProbeServer(worker, "127.0.0.1", 0).start()
    try:
        assert get(probes.port, "/ready")[0] == 503  # not started yet
        run_until(worker, lambda: worker.metrics.acked._value.get() == 3)
        status, text = get(probes.port, "/metrics")
        assert status == 200
        for line in (
            'jude_nearline_events_total{entity_type="resume"} 3.0',
            'jude_nearline_embedded_total{entity_type="resume"} 2.0',
            'jude_nearline_written_total{entity_type="resume",status="applied",store="online"} 3.0',
            'jude_nearline_written_total{entity_type="resume",status="applied",store="offline"} 3.0',
            "jude_nearline_acked_total 3.0",
            "jude_nearline_event_to_online_seconds_count 3.0",
        ):
            assert line in text, line
        assert get(probes.port, "/health") == (200, '{"ok": true, "status": "stopped"}')
        assert get(probes.port, "/ready")[0] == 503  # stopped
        assert get(probes.port, "/nope")[0] == 404
    finally:
        probes.stop()
    assert online_mismatches(RedisOnlineStore(redis_client, prefix=redis_prefix), events, model) == []


@pytest.mark.services
@pytest.mark.parametrize("index_feed", [True, False])
def test_the_index_feed_is_written_unless_switched_off(redis_client, redis_prefix, tmp_path, index_feed):
    """nearline.index_feed (default on): the applied job writes go to the version's job-index feed, which
    `jude serve --recommend` follows; off, the stores are written the same and the feed is never touched."""
    from tests.nearline.nearline_support import job

    cfg = NearlineConfig(
        stream_prefix=redis_prefix,
        online_prefix=redis_prefix,
        history_path=str(tmp_path / "history"),
        targets=[{"model_uri": "hash", "embedding_version": VERSION}],
        block_ms=50,
        lag_interval_s=0.01,
        index_feed=index_feed,
    )
    assert NearlineConfig().index_feed is True
    model = HashInference()
    worker = build_worker(cfg, inference_factory=lambda t: model)
    try:
        events = [job("J1", 1000), job("J2", 1000, location="Paris"), resume("R1", 1000, "Welder.")]
        publish_events(events, RedisStreamPublisher(redis_client, prefix=redis_prefix))
        run_until(worker, lambda: worker.metrics.acked._value.get() == 3)
    finally:
        worker.source.close()
    assert online_mismatches(RedisOnlineStore(redis_client, prefix=redis_prefix), events, model) == []
    feed = f"{redis_prefix}index:{VERSION}:job"
    if index_feed:
        assert redis_client.xlen(feed) == 2 and redis_client.exists(f"{redis_prefix}jobattrs:J2")
    else:
        assert not redis_client.exists(feed) and not redis_client.keys(f"{redis_prefix}jobattrs:*")


def test_nearline_run_switches_the_index_feed_by_flag_over_the_config(tmp_path, monkeypatch):
    import jude.nearline.worker as worker_module

    seen = []
    monkeypatch.setattr(worker_module, "run", lambda cfg: seen.append(cfg.index_feed) or 0)
    monkeypatch.delenv("JUDE_NEARLINE_CONFIG", raising=False)
    off = tmp_path / "off.yaml"
    off.write_text("nearline:\n  index_feed: false\n")
    assert jude_main(["nearline", "run"]) == 0
    assert jude_main(["nearline", "run", "--no-index-feed"]) == 0
    assert jude_main(["nearline", "run", "--config", str(off)]) == 0
    assert jude_main(["nearline", "run", "--config", str(off), "--index-feed"]) == 0
    assert seen == [True, False, False, True]


@pytest.mark.services
def test_the_worker_makes_its_versions_live_and_activates_the_first(built):
    worker, _, _ = built
    store = worker.processor.store
    for t in ("job", "profile", "resume"):
        assert store.live_versions(t) == [VERSION] and store.active_version(t) == VERSION
    assert worker.source.group == VERSION


@pytest.mark.services
def test_a_model_outside_the_registry_needs_an_embedding_version(redis_prefix, tmp_path):
    cfg = NearlineConfig(stream_prefix=redis_prefix, online_prefix=redis_prefix, targets=[{"model_uri": "some/dir"}])
    with pytest.raises(ValueError, match=r"targets\[0\].embedding_version: the model 'hash' is not a registry version"):
        build_worker(cfg, inference_factory=lambda t: HashInference())


@pytest.mark.services
def test_a_batch_whose_stores_fail_is_retried_and_the_worker_is_unready_meanwhile(redis_client, redis_prefix):
    store = RedisOnlineStore(redis_client, prefix=redis_prefix)
    store.set_active("resume", VERSION)
    source = RedisStreamSource(redis_client, group=VERSION, consumer="w", prefix=redis_prefix)
    publish_events([resume("R1", 1000, "Welder.")], RedisStreamPublisher(redis_client, prefix=redis_prefix))
    seen_ready = []

    class Failing(MemoryHistory):
        def append(self, rows):
            seen_ready.append(worker.ready)
            return super().append(rows)

    worker = Worker(source, Processor(source, store, Failing(fail=2), [Target(VERSION, HashInference())]))
    worker.retry_backoff_max_s = 0.01
    worker._set_ready(True, "running")
    worker.handle(source.read(10, 100))
    assert seen_ready == [True, False, False]  # not ready while retrying, ready again after
    assert worker.ready and worker.metrics.retries.labels("batch")._value.get() == 2
    assert worker.metrics.acked._value.get() == 1 and source.backlog() == 0


# ---------------------------------------------------------------------------- jude nearline publish / get


def cli_config(tmp_path: Path, prefix: str) -> str:
    path = tmp_path / "nearline.yaml"
    path.write_text(yaml.safe_dump({"nearline": {"stream_prefix": prefix, "online_prefix": prefix}}))
    return str(path)


@pytest.mark.services
def test_publish_reads_event_files_of_every_format(redis_client, redis_prefix, tmp_path, capsys):
    events = [resume("R1", 1000, "Welder."), resume("R2", 2000, None)]
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    (tmp_path / "e.json").write_text(json.dumps(events))
    frame = pd.DataFrame(events)
    frame.assign(fields=frame.fields.map(json.dumps)).to_csv(tmp_path / "e.csv", index=False)
    frame.to_parquet(tmp_path / "e.parquet")
    config = cli_config(tmp_path, redis_prefix)
    files = [str(tmp_path / f"e.{ext}") for ext in ("jsonl", "json", "csv", "parquet")]
    assert jude_main(["nearline", "publish", "--config", config, *files, "--event", json.dumps(events[0])]) == 0
    assert "published 9 change events to redis" in capsys.readouterr().out
    got = [f[b"event"] for _, f in redis_client.xrange(f"{redis_prefix}changes:resume")]
    assert got == [encode_event(e) for e in [*events * 4, events[0]]]


@pytest.mark.services
def test_publish_refuses_what_it_cannot_read(redis_prefix, tmp_path):
    config = cli_config(tmp_path, redis_prefix)
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(SystemExit, match="unknown event file type '.txt'"):
        jude_main(["nearline", "publish", "--config", config, str(tmp_path / "e.txt")])
    with pytest.raises(SystemExit, match="--event 1 is not JSON"):
        jude_main(["nearline", "publish", "--config", config, "--event", "{"])
    with pytest.raises(SystemExit, match="nothing to publish"):
        jude_main(["nearline", "publish", "--config", config])


@pytest.mark.services
def test_get_prints_the_online_record_of_each_id(built, redis_prefix, tmp_path, capsys):
    worker, _, _ = built
    worker.processor.process([_message(resume("R1", 1000, "Welder."))])
    assert jude_main(["nearline", "get", "resume", "R1", "R9", "--config", cli_config(tmp_path, redis_prefix)]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["found"] and first["event_time_ms"] == 1000 and first["dimension"] == 16 and len(first["vector"]) == 4
    assert first["embedding_version"] == VERSION and first["model_version"] == "hash"
    assert second == {"entity_type": "resume", "entity_id": "R9", "found": False, "embedding_version": VERSION}


def _message(event) -> Message:
    """A message as if read from the stream (acknowledging an id the group does not hold is a no-op)."""
    return Message("resume", "1-0", event["entity_id"], encode_event(event), 1)
