"""The OpenAPI document is a contract: every route summarised, tagged and its errors documented."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import _operations

PUBLIC_OPERATIONS = {
    "health-health",
    "health-ready",
    "health-metrics",
    "auth-register",
    "auth-login",
    "auth-refresh",
    "auth-logout",
    "auth-verify-email-link",
    "auth-verify-email",
    "auth-resend-verification",
    "auth-forgot-password",
    "auth-reset-password",
    "auth-confirm-email-change-link",
    "auth-confirm-email-change",
    "exports-download-export",
    "auth-restore-account",
}


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _all(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def test_every_operation_has_a_summary_a_tag_and_a_unique_readable_id(spec: dict[str, Any]) -> None:
    ids = []
    for path, method, operation in _all(spec):
        assert operation.get("summary"), f"{method} {path}"
        assert operation.get("tags"), f"{method} {path}"
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))
    assert all(" " not in op_id and "_" not in op_id for op_id in ids)


def test_validation_errors_are_documented_as_400_problems_never_422(spec: dict[str, Any]) -> None:
    for path, method, operation in _all(spec):
        responses = operation["responses"]
        # A 422 may only be a documented problem of the route's own (idempotency-key-reused).
        assert "HTTPValidationError" not in str(responses.get("422", "")), f"{method} {path}"
        if operation.get("requestBody") or operation.get("parameters"):
            assert "400" in responses, f"{method} {path}"
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_every_error_response_uses_the_problem_schema(spec: dict[str, Any]) -> None:
    for operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and operation["operationId"] != "health-ready":
                content = response["content"]
                assert list(content) == ["application/problem+json"]
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }


def test_authenticated_operations_document_401_429_and_the_bearer_scheme(
    spec: dict[str, Any],
) -> None:
    for path, method, operation in _all(spec):
        if operation["operationId"] in PUBLIC_OPERATIONS:
            continue
        assert "401" in operation["responses"], f"{method} {path}"
        assert "429" in operation["responses"], f"{method} {path}"  # the per-user limit
        assert operation.get("security"), f"{method} {path}"


def test_the_servers_own_limits_are_documented_everywhere(spec: dict[str, Any]) -> None:
    for path, method, operation in _all(spec):
        assert "431" in operation["responses"], f"{method} {path}"  # request head too large
        if "requestBody" in operation:
            assert "413" in operation["responses"], f"{method} {path}"  # body too large


def test_request_schemas_forbid_unknown_fields(spec: dict[str, Any]) -> None:
    for name, schema in spec["components"]["schemas"].items():
        if name.endswith(("In", "Update", "Create")):
            assert schema.get("additionalProperties") is False, name


async def test_the_served_document_matches(client: httpx.AsyncClient, spec: dict[str, Any]) -> None:
    served = (await client.get("/openapi.json")).json()
    assert served["paths"].keys() == spec["paths"].keys()
