"""The real nearline worker (``jude.nearline.worker.run``) with the tests' model and, optionally, the ack audit.

    python -m tests.nearline.worker_main --config-json '{...}' [--audit FILE] [--embed-delay S]

- The model is :class:`HashInference` (optionally slowed down, so a test can kill or
  stop a worker while a batch is in flight).
- ``--audit FILE``: before every acknowledgement, the messages' writes are read back
  from Redis and the Delta history; one JSON line per ack goes to FILE with the ids
  and whatever was missing (``violations``). The line is written before the ack, so a
  kill between the two only over-counts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from jude.nearline.inference import HashInference
from jude.nearline.worker import build_worker, load_config, run
from jude.stores.offline import DeltaHistory
from tests.nearline.nearline_support import audit_violations


class SlowHash(HashInference):
    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay

    def embed_texts(self, entity_type, texts):
        time.sleep(self.delay)
        return super().embed_texts(entity_type, texts)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config-json", required=True)
    parser.add_argument("--audit", default=None)
    parser.add_argument("--embed-delay", type=float, default=0.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    cfg = load_config(overrides=json.loads(args.config_json))
    worker = build_worker(cfg, inference_factory=lambda target: SlowHash(args.embed_delay))
    if args.audit:
        source, original = worker.source, worker.source.ack
        client = worker.processor.store.client
        history = DeltaHistory(cfg.history_path)
        version = worker.processor.targets[0].embedding_version

        def audited_ack(messages):
            messages = list(messages)
            violations = audit_violations(messages, client, cfg.online_prefix, history, version)
            with open(args.audit, "a") as f:
                line = {"pid": os.getpid(), "acked": [m.id for m in messages], "violations": violations}
                line["deliveries"] = [m.deliveries for m in messages]
                f.write(json.dumps(line))
                f.write("\n")
            original(messages)

        source.ack = audited_ack
    return run(cfg, worker=worker)


if __name__ == "__main__":
    sys.exit(main())
