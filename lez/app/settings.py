"""The settings of a lez process: every slice in one, read once from the ``LEZ_*``
environment in the entry point, then handed to each stage as its own slice.

Each stage owns its slice (``plate_reader.settings``, ``fidus_adapter.settings``,
``fines.settings``, ``camera_ingest.settings``), the core the shared fields
(``lez.core.settings``), the app its own (HTTP servers, the simulator); :func:`slices` lists
them all (the README's configuration table documents every field of every slice).
"""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from camera_ingest.settings import CameraIngestSettings
from fidus_adapter.settings import FidusAdapterSettings
from fines.settings import FinesSettings
from lez.core.settings import SETTINGS_CONFIG, CoreSettings, checked_key
from plate_reader.settings import PlateReaderSettings

SecretName = Literal["fidus_secret", "police_fidus_secret", "plate_hash_key", "div_audit_key"]
SECRET_NAMES: tuple[SecretName, ...] = (
    "fidus_secret",
    "police_fidus_secret",
    "plate_hash_key",
    "div_audit_key",
)
"""The secrets with no default: a service that needs one refuses to start without it; ``lez
run``, ``lez replay``, ``lez chaos`` and the tests make their own (:meth:`with_own_secrets`)."""


class AppSettings(CoreSettings):
    """The app's own slice: its HTTP servers and the simulated registry."""

    # The mock DIV's own key for the plates in its own audit. No default.
    div_audit_key: SecretStr | None = None
    # Where ``lez serve div`` (the mock DIV) listens (``--host``/``--port`` override);
    # LEZ_DIV_URL of the other processes points at it.
    div_host: str = "127.0.0.1"
    div_port: int = Field(default=8100, ge=1, le=65535)
    # -- HTTP servers (issue 22) -------------------------------------------------------------
    # Every HTTP server (gateway, console, mock DIV, lez.app.serving): a request's headers
    # must arrive within the first, its body within the second after its headers; at most
    # this many connections (and never more than the descriptor limit leaves room for).
    http_header_timeout_s: float = Field(default=10.0, gt=0)
    http_body_timeout_s: float = Field(default=60.0, gt=0)
    http_max_connections: int = Field(default=4096, ge=8)
    # Peers whose X-Forwarded-For is believed, comma-separated addresses or networks
    # (empty: nobody's, the peer address is the client's).
    trusted_proxies: str = ""

    _app_keys = field_validator("div_audit_key")(checked_key)

    def trusted_proxy_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())


class Settings(
    AppSettings,
    CameraIngestSettings,
    PlateReaderSettings,
    FidusAdapterSettings,
    FinesSettings,
):
    """Every slice in one (``Settings()`` reads the environment): a stage is handed it as
    its own slice."""

    model_config = SETTINGS_CONFIG

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The entry point's settings: given values, then the ``LEZ_*`` environment."""
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)

    def with_own_secrets(self) -> Settings:
        """A copy with a fresh random value for every unset secret, and the example notice
        contacts for every unset one (run, replay, chaos)."""
        update: dict[str, object] = {
            name: SecretStr(secrets.token_urlsafe(32))
            for name in SECRET_NAMES
            if getattr(self, name) is None
        }
        own = self.model_copy(update=update) if update else self
        return own.with_example_notice_contacts()


def slices() -> tuple[type[CoreSettings], ...]:
    """Every settings slice: the core's, each stage's and the app's (their fields are all
    the ``LEZ_*`` variables)."""
    return (
        CoreSettings,
        CameraIngestSettings,
        PlateReaderSettings,
        FidusAdapterSettings,
        FinesSettings,
        AppSettings,
    )
