"""Camera registry: identity, location, direction and whether a camera is inside the zone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from lez.errors import ConfigError


class Camera(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    camera_id: str
    location: str = ""
    direction: str = ""
    inside_zone: bool = True


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

    def dump(self, path: Path) -> None:
        path.write_text(
            yaml.safe_dump({"cameras": [c.model_dump() for c in self.cameras.values()]})
        )
