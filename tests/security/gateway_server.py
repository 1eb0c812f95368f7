"""The ingest gateway served for real: uvicorn in a thread on a free loopback port, over a
camera registry file of the given keys and a real broker (shared by the gateway door tests)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from camera_ingest.gateway import GatewayConfig, RegistryFile, create_app
from camera_ingest.keys import hash_api_key
from lez.app.broker import free_port
from lez.app.settings import Settings
from lez.core.bus import ensure_topics
from lez.core.cameras import Camera, CameraRegistry

Serve = Callable[[GatewayConfig], str]


@contextmanager
def gateway_servers(
    broker: str, tmp_path: Path, keys: dict[str, str], prefix: str
) -> Iterator[Serve]:
    """Start gateways (given their config) on free ports; all of them stop on exit."""
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of(
        [Camera(camera_id=c, api_key_hash=hash_api_key(k)) for c, k in keys.items()]
    ).dump(cameras)
    settings = Settings(
        kafka_bootstrap=broker, topic_prefix=f"{prefix}{uuid.uuid4().hex[:8]}.", var_dir=tmp_path
    )
    ensure_topics(settings, broker, ["frames"])
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(config: GatewayConfig) -> str:
        app = create_app(settings, registry=RegistryFile(cameras), config=config)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for server, thread in servers:
            server.should_exit = True
            thread.join(timeout=10)
