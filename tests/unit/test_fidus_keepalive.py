"""The registry's kept-alive connection (fidus_adapter.keepalive): a connection the server
closed while idle, or that fails before any answer, is opened again, signed afresh."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fidus_adapter.keepalive import KeepAliveGet, TransportFailure


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str]] = []
    drop_after_answer = False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append((self.path, self.headers.get("X-Try", "")))
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        # like a server's keep-alive timeout: closed with no "Connection: close" said
        self.close_connection = type(self).drop_after_answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    _Handler.seen = []
    _Handler.drop_after_answer = False
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: ThreadingHTTPServer, prefix: str = "") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{prefix}"


def test_target_keeps_the_base_path_and_quotes_the_query(server: ThreadingHTTPServer) -> None:
    kept = KeepAliveGet(_url(server, "/fidus/"), 2.0)
    target = kept.target("/v1/vehicles", {"plate": "GV 426 SH", "country": "IT"})
    assert target == "/fidus/v1/vehicles?plate=GV%20426%20SH&country=IT"
    assert kept.get(target, dict) == (200, target.encode())
    kept.close()


def test_reuses_one_connection_and_reopens_one_the_server_closed(
    server: ThreadingHTTPServer,
) -> None:
    kept = KeepAliveGet(_url(server), 2.0)
    tries = iter(range(100))

    def headers() -> dict[str, str]:
        return {"X-Try": str(next(tries))}

    assert kept.get("/a", headers)[0] == 200
    first = kept._conn
    assert kept.get("/b", headers)[0] == 200
    assert kept._conn is first  # kept alive
    _Handler.drop_after_answer = True
    assert kept.get("/c", headers)[0] == 200
    assert kept.get("/d", headers)[0] == 200  # the server had closed it: a new one
    assert [p for p, _ in _Handler.seen] == ["/a", "/b", "/c", "/d"]
    assert len({t for _, t in _Handler.seen}) == 4  # each sent once, each signed afresh
    kept.close()


def test_no_server_is_a_transport_failure() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    kept = KeepAliveGet(f"http://127.0.0.1:{port}", 0.5)
    with pytest.raises(TransportFailure):
        kept.get("/v1/vehicles", dict)


def test_refuses_what_is_no_http_url() -> None:
    with pytest.raises(ValueError):
        KeepAliveGet("ftp://registry.example", 1.0)


def test_a_proxy_of_the_environment_leaves_the_requests_to_httpx(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fidus_adapter.keepalive import direct

    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                "all_proxy", "NO_PROXY", "no_proxy"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    assert direct("http://div.internal:8100")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    assert not direct("http://div.internal:8100")
    assert direct("https://div.internal:8100")
    monkeypatch.setenv("NO_PROXY", "div.internal")
    assert direct("http://div.internal:8100")
    assert not direct("ftp://div.internal")
