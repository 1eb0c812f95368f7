"""Plates stay out of the logs: no per-request lines (their URLs carry the plate) and no plate
in the police hotlist worker's hit line (the hit itself goes to lez.hotlist only)."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from lez.app import compose
from lez.app.settings import Settings
from lez.app.sim.div_service import create_app
from lez.core.bus import ensure_topics, make_producer
from lez.core.events import FrameRef, PassageEvent
from lez.core.registry import InMemoryAuditSink
from lez.core.stage import StopFlag
from tests.conftest import ROOT
from tests.integration.test_police_hotlist import AT, STOLEN, adapter
from tests.integration.test_police_hotlist import AUTHORITIES as POLICE_AUTHORITIES
from tests.unit.test_fidus_client import serve

PLATE = "1-ABC-123"

_SCRIPT = textwrap.dedent(
    f"""
    import http.server, logging, threading
    import httpx
    from lez.app.cli import main

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    main(["topics", "create"])  # no broker set: logging is set up the lez way, then it refuses
    port = server.server_address[1]
    httpx.get(f"http://127.0.0.1:{{port}}/v1/vehicles?plate={PLATE}&country=BE")
    logging.getLogger("lez.check").warning("still logging")
    """
)


def test_the_cli_logs_no_request_line_with_a_plate_in_its_url() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "LEZ_LOG_LEVEL": "INFO"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "still logging" in proc.stderr, proc.stderr  # the logs are on, and checked
    assert PLATE not in proc.stderr and PLATE not in proc.stdout


@pytest.mark.integration
def test_a_hotlist_hit_is_logged_without_its_plate(
    broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(topic_prefix=f"p{uuid.uuid4().hex[:8]}.")
    ensure_topics(settings, broker)
    producer = make_producer(broker)
    passage = PassageEvent(
        passage_id="CAM-1:0",
        camera_id="CAM-1",
        captured_at=AT,
        frames=(FrameRef(seq=0, captured_at=AT, broker_ts_ms=1),),
        plate=PLATE,
        country="BE",
        confidence=0.99,
        format_valid=True,
        agreeing_frames=1,
    )
    producer.send(settings.topic("plates"), key=b"CAM-1", value=passage.to_bytes())
    producer.flush()
    producer.close()
    caplog.set_level(logging.INFO, logger="fidus_adapter.hotlist")
    with serve(create_app([STOLEN], [], authorities=POLICE_AUTHORITIES)) as div:
        police = adapter(div.url, "POLICE-BXL", InMemoryAuditSink())
        worker = compose.hotlist_worker(settings, broker, police)
        stop = StopFlag()
        thread = threading.Thread(target=worker.run, args=(stop,))
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while worker.hits < 1 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            thread.join(timeout=30)
    hit_lines = [r for r in caplog.records if "hotlist hit" in r.getMessage()]
    assert len(hit_lines) == 1
    assert PLATE not in hit_lines[0].getMessage()
    assert getattr(hit_lines[0], "passage_id", None) == "CAM-1:0"
