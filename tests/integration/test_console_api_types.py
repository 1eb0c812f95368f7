"""The console's JSON API is typed (issue 19): the notice, audit and dashboard routes answer
with pydantic response models, named in the OpenAPI schema, and their bodies follow them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_console import client as client  # noqa: F401 - the fixture
from tests.integration.test_console import login

pytestmark = pytest.mark.integration

TYPED = {
    ("get", "/api/notices"): "NoticesPublic",
    ("get", "/api/notices/{notice_id}"): "NoticeDetailPublic",
    ("post", "/api/notices/{notice_id}/cancel"): "NoticeDetailPublic",
    ("get", "/api/audit/registry"): "RegistryAuditsPublic",
    ("get", "/api/audit/console"): "ConsoleAuditsPublic",
    ("get", "/api/summary"): "SummaryPublic",
    ("get", "/api/dashboard"): "DashboardPublic",
}


def _model_of(schema: dict[str, Any], method: str, path: str) -> str:
    ok = schema["paths"][path][method]["responses"]["200"]
    ref: str = ok["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def test_the_notice_audit_and_dashboard_routes_name_their_response_models(
    client: TestClient,  # noqa: F811 - the fixture
) -> None:
    schema = client.get("/api/openapi.json").json()
    assert {k: _model_of(schema, *k) for k in TYPED} == TYPED
    notice = schema["components"]["schemas"]["NoticePublic"]
    assert {"notice_id", "amount_eur", "offence_at", "status"} <= set(notice["required"])


def test_the_bodies_follow_their_models(client: TestClient) -> None:  # noqa: F811
    notices = client.get("/api/notices").json()
    assert notices["count"] == len(notices["data"]) >= 1
    first = notices["data"][0]
    assert isinstance(first["amount_eur"], int) and first["offence_at"].startswith("2023-")
    detail = client.get(f"/api/notices/{first['notice_id']}").json()
    assert {k: detail[k] for k in first} == first  # the detail is the notice and more
    assert detail["history"] and set(detail["history"][0]) == {
        "at", "actor", "from_status", "to_status", "reason"
    }  # fmt: skip
    summary = client.get("/api/summary").json()
    assert summary["passages"] == 3 and summary["frames"] >= 3
    dashboard = client.get("/api/dashboard").json()
    assert set(dashboard) == {
        "hours", "decisions_per_hour", "backlog", "cameras", "deadletters", "registry", "lag"
    }  # fmt: skip
    login(client, "ada")
    audit = client.get("/api/audit/console").json()
    assert audit["count"] == len(audit["data"]) and audit["data"][0]["action"]
