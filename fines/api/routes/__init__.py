"""The console's routes, one module per resource; each has an ``api`` router (JSON under
``/api``) and/or a ``pages`` router (server-rendered HTML), both calling
:mod:`fines.console_service` and :mod:`fines.api.queries`."""

from __future__ import annotations

from fastapi import APIRouter

from fines.api.routes import (
    account,
    audit,
    dashboard,
    evidence,
    notices,
    payments,
    review,
    users,
    waiting,
)

ROUTERS: tuple[APIRouter, ...] = (
    account.api,
    account.pages,
    dashboard.api,
    dashboard.pages,
    notices.api,
    notices.pages,
    review.api,
    review.pages,
    audit.api,
    audit.pages,
    users.api,
    users.pages,
    evidence.pages,
    payments.api,
    payments.pages,
    waiting.api,
    waiting.pages,
)
"""Every router of the console, in the order they are mounted."""
