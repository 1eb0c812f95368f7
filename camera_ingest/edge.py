"""The edge node: capture -> sample -> motion gate -> spool -> Kafka or the ingest gateway.

Frames are numbered (``SequenceStore``, monotonic across restarts), written to the spool and
sent from its head, in order, by one sender thread. An entry leaves the spool only when the
receiver acknowledged it (the broker with ``acks=all``, or a 2xx from the gateway). While
the receiver cannot be reached the sender backs off and the spool fills; what a full spool
drops is counted (``Spool.stats``) and reported. With ``metrics`` the node reports its spool
depth and the frames it took per camera; with ``health`` its sender loop beats (liveness).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import httpx
from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError

from camera_ingest.clock import SkewMonitor
from camera_ingest.errors import InvalidJpeg, LinkDown
from camera_ingest.gate import MotionGate, Sampler
from camera_ingest.metrics import CameraIngestMetrics
from camera_ingest.settings import CameraIngestSettings
from camera_ingest.source import CapturedFrame, SequenceStore
from camera_ingest.spool import Spool, SpoolEntry
from lez.core.bus import make_producer
from lez.core.events import FrameEvent
from lez.core.metrics import Health
from lez.core.names import FRAMES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the receiver made of one frame."""

    status: str  # "accepted", "duplicate" or "rejected"
    reason: str = ""
    # The receiver's clock when it took the frame, if it says.
    received_at: datetime | None = None


class Sender(Protocol):
    def send(self, frames: Sequence[FrameEvent]) -> list[Outcome]:
        """Deliver frames in order; the outcomes of a leading part of them.

        Raises LinkDown when not even the first frame could be delivered.
        """

    def close(self) -> None: ...


class KafkaSender:
    """Straight to ``lez.frames`` (keyed by camera), optionally through an HTTP CONNECT proxy."""

    def __init__(
        self,
        bootstrap: str,
        settings: CameraIngestSettings,
        *,
        proxy_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.bootstrap = bootstrap
        self.settings = settings
        self.proxy_url = proxy_url
        self.timeout_s = timeout_s
        self._producer: KafkaProducer | None = None

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = make_producer(
                    self.bootstrap, timeout_s=self.timeout_s, proxy_url=self.proxy_url
                )
            except (KafkaError, OSError) as exc:
                raise LinkDown(f"broker {self.bootstrap} unreachable: {exc}") from exc
        return self._producer

    def _reset(self) -> None:
        if self._producer is not None:
            try:
                self._producer.close(timeout=0)
            except (KafkaError, OSError) as exc:  # pragma: no cover - best effort
                log.debug("closing the producer: %s", exc)
            self._producer = None

    def send(self, frames: Sequence[FrameEvent]) -> list[Outcome]:
        producer = self._connect()
        topic = self.settings.topic(FRAMES)
        futures = []
        try:
            for f in frames:
                futures.append(
                    producer.send(topic, key=f.camera_id.encode(), value=f.to_bytes())
                )
            producer.flush(timeout=self.timeout_s)
        except (KafkaError, OSError) as exc:
            if not futures:
                self._reset()
                raise LinkDown(f"broker {self.bootstrap}: {exc}") from exc
        outcomes: list[Outcome] = []
        for fut in futures:
            try:
                meta = fut.get(timeout=0.01 if fut.is_done else self.timeout_s)
            except MessageSizeTooLargeError as exc:
                outcomes.append(Outcome("rejected", f"broker refused the record: {exc}"))
                continue
            except (KafkaError, OSError) as exc:
                # Everything after the first failure is sent again later (in order).
                self._reset()
                if not outcomes:
                    raise LinkDown(f"broker {self.bootstrap}: {exc}") from exc
                break
            ts = getattr(meta, "timestamp", None)
            received = (
                datetime.fromtimestamp(ts / 1000, UTC) if isinstance(ts, int) and ts > 0 else None
            )
            outcomes.append(Outcome("accepted", received_at=received))
        return outcomes

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


FRAME_REFUSALS = frozenset({413, 422})
"""Gateway answers that concern the frame itself (the others concern the edge's setup)."""


class HttpSender:
    """Through the ingest gateway (``lez serve ingest``), one POST per frame."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout_s: float = 10.0, recorded: bool = False
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.client = httpx.Client(timeout=timeout_s)
        # A recorded batch (``lez camera --recorded``): the capture times are the recording's,
        # the gateway takes them as they are (the camera must be allowed recorded batches).
        self.recorded = recorded

    def send(self, frames: Sequence[FrameEvent]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for f in frames:
            try:
                outcomes.append(self._post(f))
            except LinkDown:
                if not outcomes:
                    raise
                break
        return outcomes

    def _post(self, f: FrameEvent, waited_ms: int = 0) -> Outcome:
        try:
            r = self.client.post(
                f"{self.base_url}/v1/cameras/{f.camera_id}/frames",
                content=f.jpeg,
                headers={
                    "Content-Type": "image/jpeg",
                    "X-Api-Key": self.api_key,
                    "X-Frame-Seq": str(f.seq),
                    "X-Captured-At": f.captured_at.isoformat(),
                    **({"X-Recorded": "true"} if self.recorded else {}),
                },
            )
        except httpx.HTTPError as exc:
            raise LinkDown(f"gateway {self.base_url} unreachable: {exc}") from exc
        if r.status_code in (429, 503) or r.status_code >= 500:
            retry = r.headers.get("Retry-After", "1")
            raise LinkDown(
                f"gateway answered {r.status_code}: {_detail(r)}",
                retry_after=float(retry) if retry.replace(".", "", 1).isdigit() else 1.0,
            )
        received = None
        try:
            body = r.json()
            if isinstance(body, dict) and isinstance(body.get("server_time"), str):
                received = datetime.fromisoformat(body["server_time"])
        except ValueError:
            body = None
        if r.status_code in (200, 201, 202):
            dup = isinstance(body, dict) and body.get("status") == "duplicate"
            return Outcome("duplicate" if dup else "accepted", received_at=received)
        if r.status_code in FRAME_REFUSALS:
            # This frame (size, JPEG, capture time) can never be taken: set it aside.
            return Outcome("rejected", f"{r.status_code}: {_detail(r)}", received)
        # Anything else (bad key, unknown camera, wrong URL) is not the frame's fault: keep
        # every frame and retry slowly until an operator fixes the configuration.
        raise LinkDown(f"gateway answered {r.status_code}: {_detail(r)}", 30.0)

    def close(self) -> None:
        self.client.close()


def _detail(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:200]
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)


@dataclass
class EdgeStats:
    captured: int = 0
    gated_out: int = 0
    invalid: int = 0
    spooled: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    send_failures: int = 0
    sent_keys: list[str] = field(default_factory=list)


@dataclass
class _CameraState:
    seqs: SequenceStore
    gate: MotionGate | None
    sampler: Sampler | None
    skew: SkewMonitor | None


class EdgeNode:
    """An edge node for one or more cameras, with one spool and one sender.

    ``capture()`` from the capture loop(s); ``start()`` runs the sender thread. Sequence
    numbers are per camera, kept under ``seq_dir`` (they survive a restart).
    """

    def __init__(
        self,
        spool: Spool,
        sender: Sender,
        seq_dir: Path,
        *,
        camera_id: str | None = None,
        gate: Callable[[], MotionGate] | None = None,
        every_nth: int = 1,
        skew_threshold_s: float | None = 2.0,
        batch: int = 16,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        keep_keys: bool = False,
        metrics: CameraIngestMetrics | None = None,
        health: Health | None = None,
        epoch: Callable[[], int] | None = None,
    ) -> None:
        self.spool = spool
        # A new sequence file starts at this epoch (``source.edge_epoch``; None: at 0).
        self.epoch = epoch
        self.sender = sender
        self.seq_dir = seq_dir
        self.camera_id = camera_id
        self._gate = gate
        self.every_nth = every_nth
        self.skew_threshold_s = skew_threshold_s
        self.batch = batch
        self.clock = clock
        self.keep_keys = keep_keys
        self.metrics = metrics
        self.health = health
        if metrics is not None:
            # One spool per node: its depth under the node's camera id ("all" for several).
            metrics.spool_depth.labels(camera_id=camera_id or "all").set_function(
                lambda: float(len(spool))
            )
        self.stats = EdgeStats()
        self.cameras: dict[str, _CameraState] = {}
        self.link_up = True
        # Why the receiver did not take frames the last time it did not (for the exit report).
        self.last_link_error: str | None = None
        self.last_refusal: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _camera(self, camera_id: str) -> _CameraState:
        state = self.cameras.get(camera_id)
        if state is None:
            state = _CameraState(
                seqs=SequenceStore(self.seq_dir / f"{camera_id}.seq", self.epoch),
                gate=self._gate() if self._gate is not None else None,
                sampler=Sampler(self.every_nth) if self.every_nth > 1 else None,
                skew=(
                    SkewMonitor(camera_id, self.skew_threshold_s)
                    if self.skew_threshold_s is not None
                    else None
                ),
            )
            self.cameras[camera_id] = state
        return state

    # -- capture side ------------------------------------------------------------------
    def capture(self, cf: CapturedFrame, camera_id: str | None = None) -> FrameEvent | None:
        """Sample, gate, number and spool one frame; the FrameEvent, or None if not kept."""
        camera_id = camera_id or self.camera_id
        if not camera_id:
            raise ValueError("capture() needs a camera id")
        cam = self._camera(camera_id)
        self.stats.captured += 1
        if cam.sampler is not None and not cam.sampler.keep():
            self.stats.gated_out += 1
            return None
        if cam.gate is not None:
            try:
                if not cam.gate.admit_jpeg(cf.jpeg):
                    self.stats.gated_out += 1
                    return None
            except InvalidJpeg as exc:
                self.stats.invalid += 1
                log.warning("camera %s: unusable frame not sent: %s", camera_id, exc)
                return None
        frame = FrameEvent(
            camera_id=camera_id, seq=cam.seqs.take(), captured_at=cf.captured_at, jpeg=cf.jpeg
        )
        self.spool.put(frame, now=self.clock())
        self.stats.spooled += 1
        if self.metrics is not None:
            self.metrics.frames_received.labels(camera_id=camera_id).inc()
            self.metrics.camera_last_frame.labels(camera_id=camera_id).set(
                cf.captured_at.timestamp()
            )
        return frame

    def capture_all(
        self, frames: Iterator[CapturedFrame], fps: float | None = None,
        camera_id: str | None = None,
    ) -> int:
        n = 0
        for cf in frames:
            if self.capture(cf, camera_id) is not None:
                n += 1
            if fps:
                time.sleep(1.0 / fps)
        return n

    # -- send side ---------------------------------------------------------------------
    def drain_once(self) -> int:
        """Send what the head of the spool holds (one batch); number of entries resolved.

        Raises LinkDown when the receiver cannot be reached.
        """
        entries = self.spool.peek(self.batch)
        if not entries:
            return 0
        sent_at = self.clock()
        outcomes = self.sender.send([e.frame for e in entries])
        done: list[SpoolEntry] = []
        for entry, outcome in zip(entries, outcomes, strict=False):
            if outcome.status == "rejected":
                self.stats.rejected += 1
                self.last_refusal = outcome.reason
                self.spool.reject(entry, outcome.reason)
                continue
            done.append(entry)
            if outcome.status == "duplicate":
                self.stats.duplicates += 1
            else:
                self.stats.sent += 1
            if self.keep_keys:
                self.stats.sent_keys.append(entry.frame.key)
            skew = self._camera(entry.frame.camera_id).skew
            if skew is not None and outcome.received_at is not None:
                skew.observe(
                    entry.frame.captured_at, outcome.received_at, sent_at - entry.spooled_at
                )
        self.spool.ack(done)
        return len(outcomes)

    def run_sender(self, *, idle_wait_s: float = 0.2, max_backoff_s: float = 5.0) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            if self.health is not None:
                self.health.beat()
            if not self.spool.wait(idle_wait_s):
                continue
            try:
                self.drain_once()
            except LinkDown as exc:
                self.stats.send_failures += 1
                self.last_link_error = exc.reason
                if self.link_up:
                    log.warning(
                        "edge: link down (%s); spooling (%d waiting)",
                        exc.reason, len(self.spool),
                    )
                self.link_up = False
                self._stop.wait(min(max(backoff, exc.retry_after), max_backoff_s))
                backoff = min(backoff * 2, max_backoff_s)
                continue
            if not self.link_up:
                log.info("edge: link back; %d still spooled", len(self.spool))
            self.link_up = True
            backoff = 0.2

    def start(self) -> EdgeNode:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_sender, name="edge-sender", daemon=True
        )
        self._thread.start()
        return self

    def wait_empty(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while len(self.spool) and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.spool) == 0

    def stop(self, *, close_sender: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if close_sender:
            self.sender.close()

    def report(self) -> str:
        s, sp = self.stats, self.spool.stats
        lines = [
            f"edge: captured {s.captured}, gated out {s.gated_out}, invalid {s.invalid}, "
            f"sent {s.sent}, duplicates {s.duplicates}, rejected {s.rejected}, "
            f"still spooled {len(self.spool)}, dropped (spool full) {sp.dropped}, "
            f"expired {sp.expired}"
        ]
        for cid, cam in sorted(self.cameras.items()):
            if cam.skew is not None and cam.skew.observations and cam.skew.flagged_frames:
                lines.append(
                    f"camera {cid}: clock skew {cam.skew.worst_s:+.1f} s beyond "
                    f"{cam.skew.threshold_s:.1f} s on {cam.skew.flagged_frames} frame(s)"
                )
        return "\n".join(lines)

    def problems(self) -> list[str]:
        """Why this run did not deliver every frame it kept (empty: all delivered).

        Frames the receiver refused (set aside in the spool's rejected folder) and frames
        still waiting in the spool; frames answered "duplicate" are named too when nothing
        new was delivered (another edge, or a lost sequence file, used these numbers).
        """
        out: list[str] = []
        s = self.stats
        if s.rejected:
            out.append(
                f"{s.rejected} frame(s) refused by the receiver and set aside in "
                f"{self.spool.directory / 'rejected'} (last reason: {self.last_refusal})"
            )
        if len(self.spool):
            why = f": {self.last_link_error}" if self.last_link_error else ""
            out.append(f"{len(self.spool)} frame(s) still spooled, not delivered{why}")
        if s.duplicates and not s.sent:
            out.append(
                f"all {s.duplicates} frame(s) were answered duplicate: the receiver already has "
                "frames with these sequence numbers (sent before, or by another edge)"
            )
        return out
