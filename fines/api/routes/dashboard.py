"""The dashboard: ``/api/summary``, ``/api/dashboard`` and the page ``/``.

The page draws its charts on the server (:mod:`fines.charts`, inline SVG): passages and
decisions per hour, the review backlog over time, per camera activity, and the pipeline
(dead letters, the registry as its audited calls saw it, consumer lag). No chart shows a plate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from fines import charts
from fines.api import queries
from fines.api.deps import CtxDep, SessionDep, guarded
from fines.api.render import language, render
from fines.api.schemas import DashboardPublic, SummaryPublic
from fines.auth import VIEW
from fines.console_text import label
from fines.i18n import Gettext, gettext
from fines.service import BRUSSELS

log = logging.getLogger(__name__)

api = APIRouter(prefix="/api", tags=["dashboard"])
pages = APIRouter(tags=["pages"], include_in_schema=False)

LagProbe = Callable[[], Mapping[str, int]]
"""Consumer lag per stage (records not yet consumed), asked of the broker. It may raise or
time out: the dashboard then shows the lag as unknown. Given to the console as
``app.state.lag_probe`` (None or absent: no broker configured)."""

DECISION_COLOURS: Mapping[str, str] = {
    "compliant": "#4c9a5f",
    "exempt": "#6fa8dc",
    "warning": "#e8c547",
    "violation": "#c8453b",
    "unregistered_foreign": "#8e5bb5",
    "review": "#e07b26",
    "unreadable": "#9aa3ad",
}
OTHER_COLOUR = "#5b6775"
REGISTRY_COLOURS: Mapping[str, str] = {
    "answered": "#4c9a5f",
    "refused": "#e8c547",
    "unavailable": "#c8453b",
    "error": "#8e5bb5",
}
DECISION_ORDER = tuple(DECISION_COLOURS)
"""Stacking order, bottom first: the everyday decisions below, the offences above."""


@dataclass(frozen=True)
class LagReading:
    """Consumer lag as the dashboard shows it: per stage, or why there is none."""

    status: str
    """``ok``, ``not configured`` or ``unknown`` (the probe failed)."""
    per_stage: Mapping[str, int]


def svg(chart: str) -> Markup:
    """A chart of :mod:`fines.charts` as template markup: the charts escape every text they
    draw, so the SVG goes into the page as it is."""
    return Markup(chart)  # noqa: S704 - built by fines.charts, all text escaped there


def read_lag(probe: LagProbe | None) -> LagReading:
    """Ask the probe; a probe that fails never fails the page."""
    if probe is None:
        return LagReading("not configured", {})
    try:
        return LagReading("ok", dict(probe()))
    except Exception:  # the broker being down must not take the dashboard with it
        log.warning("consumer lag probe failed", exc_info=True)
        return LagReading("unknown", {})


def hour_label(at: datetime) -> str:
    """An hour on a chart axis: Brussels time, and the day on a second line."""
    local = at.astimezone(BRUSSELS)
    return local.strftime("%H:00\n%d/%m/%y")


def _same(text: str) -> str:
    return text


def passages_chart(hourly: queries.HourlyDecisions, _: Gettext = _same) -> str:
    kinds = sorted(
        hourly.counts,
        key=lambda k: DECISION_ORDER.index(k) if k in DECISION_ORDER else len(DECISION_ORDER),
    )
    series = [
        charts.Series(
            label(_, k),
            tuple(float(v) for v in hourly.counts[k]),
            DECISION_COLOURS.get(k, OTHER_COLOUR),
        )
        for k in kinds
    ]
    return charts.stacked_bars(
        chart_id="chart-passages",
        title=_("Passages per hour by decision"),
        labels=[hour_label(h) for h in hourly.axis.hours],
        series=series,
        breaks=hourly.axis.gaps,
        width=1280,
        height=280,
        _=_,
    )


def backlog_chart(backlog: queries.BacklogSeries, _: Gettext = _same) -> str:
    return charts.line_chart(
        chart_id="chart-backlog",
        title=_("Open review items at the end of each hour"),
        labels=[hour_label(h) for h in backlog.hours],
        values=[float(v) for v in backlog.open_items],
        width=1280,
        height=220,
        _=_,
    )


def camera_rows(cameras: list[queries.CameraActivity], _: Gettext = _same) -> list[dict[str, Any]]:
    return [
        {
            "camera_id": c.camera_id,
            "last_frame": c.last_frame,
            "frames_per_minute": c.frames_per_minute,
            "passages": c.passages,
            "read_rate": None if c.read_rate is None else f"{c.read_rate:.0%}",
            "spark": svg(
                charts.sparkline(
                    [float(v) for v in c.frames_per_hour],
                    chart_id=f"spark-{c.camera_id}",
                    title=_("Frames per hour of camera {camera}").format(camera=c.camera_id),
                    _=_,
                )
            ),
        }
        for c in cameras
    ]


def pipeline_panel(
    dead: queries.DeadLetterCounts,
    registry: queries.RegistryState,
    lag: LagReading,
    _: Gettext = _same,
) -> dict[str, Any]:
    stages = list(dead.last_24h)
    return {
        "deadletters": svg(
            charts.bar_chart(
                chart_id="chart-deadletters",
                title=_("Dead letters per stage in the last 24 hours"),
                labels=stages,
                values=[float(dead.last_24h[s]) for s in stages],
                colour="#c8453b",
                name=_("dead letters, 24 h"),
                width=420,
                height=180,
                _=_,
            )
        ),
        "deadletters_24h": sum(dead.last_24h.values()),
        "deadletters_total": sum(dead.total.values()),
        "registry": registry,
        "registry_chart": svg(
            charts.share_bar(
                chart_id="chart-registry",
                title=_("Outcome of the newest {n} registry calls").format(n=registry.calls),
                segments=[
                    charts.Segment(label(_, k), float(v), REGISTRY_COLOURS[k])
                    for k, v in registry.outcomes.items()
                ],
                width=420,
                _=_,
            )
        ),
        "lag": lag,
    }


def dashboard_view(
    session: Session, *, now: datetime, lag_probe: LagProbe | None, _: Gettext = _same
) -> dict[str, Any]:
    """Everything the dashboard page shows besides the summary figures."""
    samples = queries.recent_passages(session=session)
    hourly = queries.decisions_per_hour(samples)
    axis = hourly.axis
    return {
        "window": {
            "hours": len(axis.hours),
            "first": axis.hours[0] if axis.hours else None,
            "last": axis.hours[-1] if axis.hours else None,
            "gaps": len(axis.gaps),
        },
        "passages_chart": svg(passages_chart(hourly, _)),
        "backlog_chart": svg(
            backlog_chart(queries.review_backlog_series(session=session, now=now), _)
        ),
        "cameras": camera_rows(
            queries.camera_activity(session=session, samples=samples, now=now), _
        ),
        "pipeline": pipeline_panel(
            queries.deadletter_counts(session=session, now=now),
            queries.registry_state(session=session),
            read_lag(lag_probe),
            _,
        ),
    }


def _lag_probe(request: Request) -> LagProbe | None:
    probe: LagProbe | None = getattr(request.app.state, "lag_probe", None)
    return probe


@api.get("/summary", **guarded(VIEW))
def api_summary(session: SessionDep, c: CtxDep) -> SummaryPublic:
    return SummaryPublic.model_validate(queries.summary(session, now=c.now()))


@api.get("/dashboard", **guarded(VIEW))
def api_dashboard(request: Request, session: SessionDep, c: CtxDep) -> DashboardPublic:
    """The series behind the dashboard's charts (times as UTC ISO strings)."""
    now = c.now()
    samples = queries.recent_passages(session=session)
    hourly = queries.decisions_per_hour(samples)
    backlog = queries.review_backlog_series(session=session, now=now)
    dead = queries.deadletter_counts(session=session, now=now)
    registry = queries.registry_state(session=session)
    lag = read_lag(_lag_probe(request))
    return DashboardPublic.model_validate(
        {
            "hours": [h.isoformat() for h in hourly.axis.hours],
            "decisions_per_hour": {k: list(v) for k, v in hourly.counts.items()},
            "backlog": {
                "hours": [h.isoformat() for h in backlog.hours],
                "open": list(backlog.open_items),
            },
            "cameras": [
                {
                    "camera_id": a.camera_id,
                    "last_frame": a.last_frame.isoformat(),
                    "frames_per_minute": a.frames_per_minute,
                    "passages": a.passages,
                    "read_rate": a.read_rate,
                    "frames_per_hour": list(a.frames_per_hour),
                }
                for a in queries.camera_activity(session=session, samples=samples, now=now)
            ],
            "deadletters": {"last_24h": dict(dead.last_24h), "total": dict(dead.total)},
            "registry": {
                "state": registry.state,
                "calls": registry.calls,
                "outcomes": dict(registry.outcomes),
                "newest_at": registry.newest_at.isoformat() if registry.newest_at else None,
            },
            "lag": {"status": lag.status, "per_stage": dict(lag.per_stage)},
        }
    )


@pages.get("/", response_class=HTMLResponse, **guarded(VIEW))
def dashboard(request: Request, c: CtxDep, session: SessionDep) -> Response:
    now = c.now()
    return render(
        request,
        c,
        "dashboard.html",
        "dashboard",
        s=queries.summary(session, now=now),
        d=dashboard_view(
            session,
            now=now,
            lag_probe=_lag_probe(request),
            _=gettext(language(request), "console"),
        ),
    )
