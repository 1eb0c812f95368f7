"""The console's OpenAPI schema is complete (issue 19): every route that answers JSON names a
response model, never an untyped object; a route whose body is not JSON (CSV, PDF, JPEG) says
which media type it is."""

from __future__ import annotations

from typing import Any

import pytest

from fines.console import create_app
from fines.db import make_engine, session_factory


@pytest.fixture(name="schema", scope="module")
def schema_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    db = tmp_path_factory.mktemp("openapi") / "console.db"
    return create_app(session_factory(make_engine(f"sqlite:///{db}"))).openapi()


def _untyped(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """An object with no properties and free values, or no schema at all."""
    if "$ref" in schema:
        return _untyped(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if schema.get("type") == "array":
        return _untyped(schema.get("items", {}), components)
    if schema.get("type") == "object" or not schema:
        free = schema.get("additionalProperties", True) in (True, {})
        return not schema.get("properties") and free
    return False


def _answers(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, response)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status.startswith("2")
    ]


def test_every_json_route_has_a_typed_response(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    untyped = [
        f"{method} {path}"
        for method, path, response in _answers(schema)
        if "application/json" in response.get("content", {})
        and _untyped(response["content"]["application/json"].get("schema", {}), components)
    ]
    assert not untyped, f"JSON routes without a response model: {untyped}"


def test_every_route_says_what_it_answers(schema: dict[str, Any]) -> None:
    silent = [f"{m} {p}" for m, p, r in _answers(schema) if not r.get("content")]
    assert not silent
    assert set(
        next(iter(r["content"]))
        for m, p, r in _answers(schema)
        if "application/json" not in r["content"]
    ) == {"text/csv", "application/pdf", "image/jpeg"}


def test_review_items_and_the_json_export_are_models(schema: dict[str, Any]) -> None:
    ok = {
        (m, p): r["content"]["application/json"]["schema"].get("$ref", "").rsplit("/", 1)[-1]
        for m, p, r in _answers(schema)
        if "application/json" in r["content"]
    }
    assert ok[("GET", "/api/review")] == "ReviewItemsPublic"
    assert ok[("GET", "/api/review/{item_id}")] == "ReviewItemDetailPublic"
    assert ok[("POST", "/api/review/{item_id}/confirm")] == "ReviewItemPublic"
    assert ok[("GET", "/api/notices/export.json")] == "NoticesPublic"  # the API's serialiser
    assert ok[("POST", "/api/payments")] == "NoticeDetailPublic"
