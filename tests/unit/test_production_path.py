"""The production path without traps (issue 24), piece by piece: recorded batches through the
gateway, the edge epoch in the frame key, ``lez camera``'s exit status, ``--issue-key`` on a
missing registry, the console's first account, ``/healthz`` and ``/readyz`` everywhere."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from camera_ingest.edge import EdgeNode, Outcome
from camera_ingest.errors import LinkDown
from camera_ingest.gateway import GatewayConfig, RegistryFile, create_app
from camera_ingest.keys import hash_api_key, verify_api_key
from camera_ingest.source import EPOCH_BITS, SequenceStore, edge_epoch, iter_recorded
from camera_ingest.spool import Spool
from lez.app.cli import main
from lez.app.settings import Settings
from lez.core.cameras import Camera, CameraRegistry
from lez.core.events import FrameEvent
from tests.conftest import DEMO

JPEG = (DEMO / "frames" / "d00_0.jpg").read_bytes()
KEY = "key-of-the-recorded-camera"


class _Meta:
    partition = 0
    offset = 1


class _Producer:
    """A producer that acknowledges every record at once."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, topic: str, key: bytes, value: bytes) -> Any:
        self.sent.append(value)
        fut: Any = _Ack()
        return fut

    def close(self, timeout: float | None = None) -> None:
        pass


class _Ack:
    def add_callback(self, fn: Any) -> None:
        fn(_Meta())

    def add_errback(self, fn: Any) -> None:
        pass


def _gateway(tmp_path: Path, *, recorded: bool) -> tuple[TestClient, _Producer]:
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of(
        [Camera(camera_id="CAM-R", api_key_hash=hash_api_key(KEY), recorded=recorded)]
    ).dump(cameras)
    producer = _Producer()
    app = create_app(
        Settings(var_dir=tmp_path),
        registry=RegistryFile(cameras),
        producer_factory=lambda: producer,
        config=GatewayConfig(),
    )
    return TestClient(app), producer


def _post(client: TestClient, seq: int, at: datetime, **extra: str) -> Any:
    return client.post(
        "/v1/cameras/CAM-R/frames",
        content=JPEG,
        headers={
            "Content-Type": "image/jpeg",
            "X-Api-Key": KEY,
            "X-Frame-Seq": str(seq),
            "X-Captured-At": at.isoformat(),
            **extra,
        },
    )


RECORDED_AT = datetime(2023, 5, 2, 8, 10, tzinfo=UTC)


def test_a_recorded_batch_keeps_its_capture_times_without_a_warning_per_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client, producer = _gateway(tmp_path, recorded=True)
    with client, caplog.at_level(logging.WARNING, logger="camera_ingest.gateway"):
        for seq in range(5):
            r = _post(client, seq, RECORDED_AT + timedelta(seconds=seq), **{"X-Recorded": "true"})
            assert r.status_code == 201, r.text
            assert r.json()["recorded"] is True and r.json()["clock_flagged"] is False
    assert [FrameEvent.model_validate_json(v).captured_at for v in producer.sent] == [
        RECORDED_AT + timedelta(seconds=s) for s in range(5)
    ]
    assert not [r for r in caplog.records if "skew" in r.getMessage()]


def test_recorded_batches_only_from_a_camera_allowed_them(tmp_path: Path) -> None:
    client, producer = _gateway(tmp_path, recorded=False)
    with client:
        r = _post(client, 1, RECORDED_AT, **{"X-Recorded": "true"})
        assert r.status_code == 403 and "recorded: true" in r.json()["detail"]
        # without the header, a 2023 capture is a live camera's clock gone wrong: refused
        assert _post(client, 2, RECORDED_AT).status_code == 422
    assert producer.sent == []


def test_a_skewed_live_camera_is_logged_once_not_per_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = _gateway(tmp_path, recorded=False)
    late = datetime.now(UTC) - timedelta(minutes=5)
    with client, caplog.at_level(logging.WARNING, logger="camera_ingest.gateway"):
        for seq in range(6):
            r = _post(client, seq, late)
            assert r.status_code == 201 and r.json()["clock_flagged"] is True
    assert len([r for r in caplog.records if "clock skew" in r.getMessage()]) == 1


@pytest.mark.parametrize("path", ["/health", "/healthz", "/readyz"])
def test_the_gateway_answers_health_and_readiness(tmp_path: Path, path: str) -> None:
    client, _ = _gateway(tmp_path, recorded=False)
    with client:
        assert client.get(path).status_code == 200


def test_the_div_answers_health_and_readiness() -> None:
    from fidus_adapter.signing import Authority
    from lez.app.sim.div_service import create_app as div_app

    lez = Authority("A", b"k" * 32, frozenset({"lez_enforcement"}))
    with TestClient(div_app([], [], authorities={"A": lez})) as c:
        for path in ("/health", "/healthz", "/readyz"):
            assert c.get(path).status_code == 200, path


def test_the_console_answers_health_and_readiness(tmp_path: Path) -> None:
    from fines.console import create_app as console_app
    from fines.db import make_engine, migrate, session_factory

    url = f"sqlite:///{tmp_path / 'c.db'}"
    migrate(url)
    with TestClient(console_app(session_factory(make_engine(url)), secret_key="t" * 20)) as c:
        for path in ("/health", "/healthz", "/readyz"):
            assert c.get(path).status_code == 200, path


def test_recorded_frames_come_from_frames_csv_of_one_camera() -> None:
    frames = list(iter_recorded(DEMO, "CAM-DEMO-2"))
    assert len(frames) == 12
    assert frames[0].captured_at == datetime.fromisoformat("2023-05-03T17:45:00.000+02:00")


# -- the edge epoch ----------------------------------------------------------------------


def test_a_lost_sequence_file_starts_a_new_epoch_above_every_key_sent_before(
    tmp_path: Path,
) -> None:
    first = SequenceStore(
        tmp_path / "a" / "CAM.seq", lambda: edge_epoch(datetime(2026, 1, 1, tzinfo=UTC))
    )
    old = [first.take() for _ in range(3)]
    assert first.epoch == edge_epoch(datetime(2026, 1, 1, tzinfo=UTC))
    # the same file again (a restart): the same epoch, numbers go on
    again = SequenceStore(tmp_path / "a" / "CAM.seq", edge_epoch)
    assert again.take() == old[-1] + 1
    # run from another folder (or a wiped disk): a new file, a later epoch, no collision
    moved = SequenceStore(tmp_path / "b" / "CAM.seq", edge_epoch)
    assert moved.take() > old[-1] + 1
    assert moved.epoch > first.epoch
    assert old[0] >> EPOCH_BITS == first.epoch
    assert all(s < 2**62 for s in (*old, moved.take()))


# -- lez camera's exit status ----------------------------------------------------------


class _Refusing:
    def send(self, frames: Sequence[FrameEvent]) -> list[Outcome]:
        return [Outcome("rejected", "422: capture time is older than 604800 s") for _ in frames]

    def close(self) -> None:
        pass


class _Locked:
    def send(self, frames: Sequence[FrameEvent]) -> list[Outcome]:
        raise LinkDown("gateway answered 401: wrong API key", 0.05)

    def close(self) -> None:
        pass


def _run_edge(tmp_path: Path, sender: Any) -> EdgeNode:
    node = EdgeNode(
        Spool(tmp_path / "spool"), sender, tmp_path / "seq", camera_id="CAM", gate=None
    ).start()
    node.capture_all(iter_recorded(DEMO / "frames", "CAM"))
    node.wait_empty(1.0)
    node.stop()
    return node


def test_refused_frames_are_a_problem_with_their_reason(tmp_path: Path) -> None:
    problems = _run_edge(tmp_path, _Refusing()).problems()
    assert len(problems) == 1 and "24 frame(s) refused" in problems[0]
    assert "older than" in problems[0]


def test_frames_left_in_the_spool_are_a_problem_with_the_link_s_reason(tmp_path: Path) -> None:
    problems = _run_edge(tmp_path, _Locked()).problems()
    assert len(problems) == 1 and "24 frame(s) still spooled" in problems[0]
    assert "wrong API key" in problems[0]


def test_lez_camera_exits_1_and_says_why_when_frames_were_not_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEZ_VAR_DIR", str(tmp_path / "var"))
    code = main(
        [
            "camera", "--camera-id", "CAM-DEMO-1", str(DEMO), "--recorded",
            "--gateway", "http://127.0.0.1:9", "--api-key", "k" * 20, "--drain-timeout", "1",
        ]  # fmt: skip
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "12 frame(s) still spooled" in err and "unreachable" in err
    # the sequence file is under LEZ_VAR_DIR, and its numbers carry the edge epoch
    seq = int((tmp_path / "var" / "cameras" / "CAM-DEMO-1.seq").read_text())
    assert seq >> EPOCH_BITS > 0 and seq & 0xFFFFFFFF == 12


# -- the camera registry ---------------------------------------------------------------


def test_issue_key_makes_a_missing_registry_with_the_camera(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEZ_VAR_DIR", str(tmp_path / "var"))
    cameras = tmp_path / "etc" / "cameras.yaml"
    argv = ["camera", "--camera-id", "CAM-NEW", "--registry", str(cameras), "--issue-key"]
    assert main([*argv, "--recorded"]) == 0
    key = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    camera = CameraRegistry.load(cameras).get("CAM-NEW")
    assert camera is not None and camera.recorded and camera.api_key_hash
    assert verify_api_key(key, camera.api_key_hash)
    # a second camera is added beside the first
    assert main(["camera", "--camera-id", "CAM-2", "--registry", str(cameras), "--issue-key"]) == 0
    assert set(CameraRegistry.load(cameras).cameras) == {"CAM-NEW", "CAM-2"}


def test_the_shipped_camera_registry_example_loads() -> None:
    registry = CameraRegistry.load(DEMO.parent / "cameras" / "demo.yaml")
    assert registry.get("CAM-DEMO-1") is not None


# -- the console's first account -------------------------------------------------------


def test_the_console_refuses_an_empty_database_without_a_first_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fines.db import migrate

    url = f"sqlite:///{tmp_path / 'lez.db'}"
    migrate(url)
    monkeypatch.setenv("LEZ_DATABASE_URL", url)
    monkeypatch.delenv("LEZ_CONSOLE_ADMIN_PASSWORD", raising=False)
    assert main(["serve", "console", "--port", "9"]) == 1
    err = capsys.readouterr().err
    assert "LEZ_CONSOLE_ADMIN_PASSWORD" in err and "lez users create" in err


def test_the_console_refuses_the_example_s_placeholder_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEZ_DATABASE_URL", f"sqlite:///{tmp_path / 'lez.db'}")
    monkeypatch.setenv("LEZ_CONSOLE_ADMIN_PASSWORD", "change-me-first-admin-password")
    assert main(["serve", "console", "--port", "9"]) == 1
    assert "LEZ_CONSOLE_ADMIN_PASSWORD is the example" in capsys.readouterr().err


def test_lez_users_create_makes_an_account_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import select

    from fines.auth import authenticate
    from fines.db import make_engine, session_factory
    from fines.models import ConsoleUser

    url = f"sqlite:///{tmp_path / 'lez.db'}"
    monkeypatch.setenv("LEZ_DATABASE_URL", url)
    monkeypatch.setattr("sys.stdin", io.StringIO("tulip-canal-47-brick\n"))
    assert main(["users", "create", "marie", "--role", "supervisor"]) == 0
    assert "account marie (supervisor) created" in capsys.readouterr().out
    with session_factory(make_engine(url))() as s:
        assert authenticate(s, "marie", "tulip-canal-47-brick") is not None
        assert s.scalar(select(ConsoleUser.role)) == "supervisor"
    monkeypatch.setattr("sys.stdin", io.StringIO("password1234\n"))
    assert main(["users", "create", "bob"]) == 1
    assert "too easy to guess" in capsys.readouterr().err
