"""Metrics and health of one worker process: the probes its readiness asks, the endpoint.

``lez worker X`` builds one :class:`~lez.app.metrics.Metrics` and one
:class:`~lez.core.metrics.Health`, hands both to the stage, and serves them on
``LEZ_METRICS_PORT`` (``/metrics``, ``/healthz``, ``/readyz``) when that is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from lez.app.metrics import Metrics
from lez.app.settings import Settings
from lez.core.errors import ConfigError
from lez.core.metrics import Health, MetricsServer

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 1.0


def database_reachable(sessions: sessionmaker[Session]) -> Callable[[], bool]:
    """Readiness probe: the database answers ``SELECT 1``."""

    def probe() -> bool:
        with sessions() as session:
            session.execute(text("SELECT 1"))
        return True

    return probe


def registry_reachable(div_url: str) -> Callable[[], bool]:
    """Readiness probe: the registry service answers its ``/health``."""
    url = div_url.rstrip("/") + "/health"

    def probe() -> bool:
        return httpx.get(url, timeout=PROBE_TIMEOUT_S).status_code == 200

    return probe


@dataclass
class Observed:
    """A worker's metrics and health, and the endpoint serving them (None: no port set)."""

    metrics: Metrics
    health: Health
    server: MetricsServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Observed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def observe_worker(
    settings: Settings,
    *,
    sessions: sessionmaker[Session] | None = None,
    registry: bool = False,
) -> Observed:
    """Metrics and health for a worker; readiness also asks the database (``sessions``) and
    the registry (``registry``: ``LEZ_DIV_URL``'s ``/health``). Starts the endpoint when
    ``LEZ_METRICS_PORT`` is set."""
    health = Health()
    if sessions is not None:
        health.checks["database"] = database_reachable(sessions)
    if registry and settings.div_url:
        health.checks["registry"] = registry_reachable(settings.div_url)
    observed = Observed(Metrics(), health)
    if settings.metrics_port is not None:
        token = settings.metrics_token
        try:
            server = MetricsServer(
                observed.metrics,
                health,
                host=settings.metrics_host,
                port=settings.metrics_port,
                token=token.get_secret_value() if token is not None else None,
            )
        except OSError as exc:
            raise ConfigError(
                f"LEZ_METRICS_PORT {settings.metrics_port} on {settings.metrics_host}: {exc}"
            ) from exc
        observed.server = server.start()
        log.debug("metrics on %s:%d", settings.metrics_host, observed.server.port)
    return observed


def observe_edge(settings: Settings) -> Observed | None:
    """Metrics and health of an edge node, when ``LEZ_METRICS_PORT`` is set (else None).
    It has no partitions: ready means its link is up (the caller adds that check)."""
    if settings.metrics_port is None:
        return None
    observed = observe_worker(settings)
    observed.health.assigned(True)
    return observed
