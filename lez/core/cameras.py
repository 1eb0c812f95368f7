"""Camera registry: identity, location, direction and whether a camera is inside the zone.

The registry is a YAML file (``cameras: [{camera_id, location, direction, inside_zone}]``;
the README's "The camera registry" gives every field).
An edge node that posts to the ingest gateway also has an ``api_key_hash`` there: the salted
hash of its API key (``camera_ingest.keys``); the key itself is never stored.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lez.core.errors import ConfigError


class Camera(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    camera_id: str
    # Where the camera stands (street and number, or ring exit): named on every notice.
    location: str = Field(default="", max_length=200)
    direction: str = ""
    inside_zone: bool = True
    # Salted hash of the camera's gateway API key (None: the camera cannot use the gateway).
    api_key_hash: str | None = Field(default=None, repr=False)
    # Optional position, for the console and for operators.
    latitude: float | None = None
    longitude: float | None = None
    # The camera may push recorded batches through the gateway (``lez camera --recorded``):
    # their capture times are taken as recorded (older than LEZ_FRAME_MAX_AGE_S allowed, no
    # clock skew judged). Off by default: a live camera's times are checked.
    recorded: bool = False


@dataclass(frozen=True)
class CameraRegistry:
    cameras: dict[str, Camera]

    def get(self, camera_id: str) -> Camera | None:
        return self.cameras.get(camera_id)

    @classmethod
    def of(cls, cameras: Iterable[Camera]) -> CameraRegistry:
        return cls({c.camera_id: c for c in cameras})

    @classmethod
    def load(cls, path: Path) -> CameraRegistry:
        try:
            raw = yaml.safe_load(path.read_text())
            return cls.of(Camera.model_validate(c) for c in raw["cameras"])
        except (OSError, KeyError, TypeError, yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"camera registry {path}: {exc}") from exc

    def with_camera(self, camera: Camera) -> CameraRegistry:
        """A copy with ``camera`` added or replaced."""
        return CameraRegistry({**self.cameras, camera.camera_id: camera})

    def dump(self, path: Path) -> None:
        """Write the registry (atomically: a reader never sees half a file)."""
        text = yaml.safe_dump(
            {"cameras": [c.model_dump(exclude_none=True) for c in self.cameras.values()]}
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.chmod(tmp, 0o600)  # it holds the gateway's API key hashes
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
