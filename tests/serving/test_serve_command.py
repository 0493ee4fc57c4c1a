"""`jude serve` itself: a model that cannot load stops the server with a non-zero exit status."""

from __future__ import annotations

import logging
import socket
import threading

from jude.cli import main


def test_a_model_that_fails_to_load_stops_jude_serve_with_status_1(tmp_path, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["serve", "--model", str(tmp_path), "--port", str(port), "--log-level", "warning"]
    result = {}
    # in a thread (uvicorn leaves signals alone there), so a server that never stops fails the test, not hangs it
    thread = threading.Thread(target=lambda: result.update(status=main(argv)), daemon=True)
    with caplog.at_level(logging.INFO):
        thread.start()
        thread.join(120)
    assert not thread.is_alive(), "jude serve kept running after its model failed to load"
    assert result["status"] == 1
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1 and "config.json" in failures[0].getMessage()  # logged once, with the reason
