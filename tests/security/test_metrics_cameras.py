"""``/metrics`` lists no camera id without a token (issue 22, LOW).

Before: anyone who reached a ``/metrics`` port read every camera id (frames per camera, the
last frame's time per camera). Now, without ``LEZ_METRICS_TOKEN``, the series per camera are
merged into one (counts summed, the latest time kept); with the token they are there, to
the bearer only. A real metrics server of a worker, over HTTP.
"""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from lez.app.metrics import Metrics
from lez.core.metrics import Health, MetricsServer

TOKEN = "metrics-token-of-the-test-0123"


def _metrics() -> Metrics:
    m = Metrics()
    m.frames_received.labels(camera_id="CAM-SECRET-7").inc(3)
    m.frames_received.labels(camera_id="CAM-OTHER-2").inc(2)
    m.camera_last_frame.labels(camera_id="CAM-SECRET-7").set(1_700_000_100)
    m.camera_last_frame.labels(camera_id="CAM-OTHER-2").set(1_700_000_000)
    return m


def _get(token: str | None, bearer: str | None = None) -> httpx.Response:
    server = MetricsServer(_metrics(), Health(), host="127.0.0.1", port=0, token=token).start()
    try:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.get(f"http://127.0.0.1:{server.port}/metrics", headers=headers, timeout=5)
    finally:
        server.stop()


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_without_a_token_no_camera_id_is_listed_and_the_totals_stay() -> None:
    r = _get(None)
    assert r.status_code == 200
    assert "CAM-SECRET-7" not in r.text and "CAM-OTHER-2" not in r.text
    assert "camera_id" not in r.text
    samples = _samples(r.text)
    assert samples["lez_frames_received_total"] == [({}, 5.0)]
    assert samples["lez_camera_last_frame_timestamp_seconds"] == [({}, 1_700_000_100.0)]


def test_with_the_token_the_bearer_sees_each_camera() -> None:
    assert _get(TOKEN).status_code == 401
    r = _get(TOKEN, TOKEN)
    assert r.status_code == 200
    per_camera = {labels["camera_id"]: v for labels, v in
                  _samples(r.text)["lez_frames_received_total"]}
    assert per_camera == {"CAM-SECRET-7": 3.0, "CAM-OTHER-2": 2.0}
