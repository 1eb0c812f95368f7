"""``lez camera --issue-key`` writes the camera registry, which holds every camera's API key
hash, readable by its owner only (issue 11, low finding)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from camera_ingest.keys import verify_api_key
from lez.app.cli import main
from lez.core.cameras import Camera, CameraRegistry


def test_issued_key_is_stored_hashed_in_a_file_only_its_owner_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEZ_VAR_DIR", str(tmp_path / "var"))
    cameras = tmp_path / "cameras.yaml"
    CameraRegistry.of([Camera(camera_id="CAM-K", location="Rue Haute")]).dump(cameras)
    cameras.chmod(0o644)  # as an older lez wrote it

    assert main(["camera", "--camera-id", "CAM-K", "--registry", str(cameras), "--issue-key"]) == 0

    key = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    assert stat.S_IMODE(cameras.stat().st_mode) == 0o600
    stored = CameraRegistry.load(cameras).get("CAM-K")
    assert stored is not None and stored.api_key_hash is not None
    assert key not in cameras.read_text()
    assert verify_api_key(key, stored.api_key_hash)
    assert stored.location == "Rue Haute"
