"""schemathesis on HubSpot's OpenAPI files against the sandbox: requests generated from HubSpot's own
descriptions (the trimmed copy the project ships: HubSpot's files less prose, so also on a fresh clone)
for every operation the sandbox serves. The sandbox never answers with a server error, and every
answer, success or error, matches the description's response schema — except where HubSpot's own
answers differ from it, each listed with its source in ``openapi.ANSWERED_DIFFERENTLY``.

Bounded: ``EXAMPLES`` generated requests per operation (a few minutes in all)."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest

from desktop_app import openapi
from desktop_app.sandbox import Sandbox

schemathesis = pytest.importorskip("schemathesis", reason="the test extra installs schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402

EXAMPLES = int(os.environ.get("CALLRELAY_SCHEMATHESIS_EXAMPLES", "12"))


def _auth_for(sandbox: Sandbox, op: openapi.Operation) -> tuple[dict[str, str], dict[str, str]]:
    """Headers and query that authenticate as HubSpot asks for this operation."""
    if (any(s in ("developers-read", "developers-write") for s in op.scopes)
            or any("developer_hapikey" in alt for alt in op.security or [])):  # the dated files' name for it
        return {}, {"hapikey": sandbox.credentials.developer_api_key}
    if not op.security:
        return {}, {}
    token = sandbox.issue_token(sorted(set(op.scopes)) or ["oauth"])
    return {"Authorization": f"Bearer {token}"}, {}


def _run_operation(sandbox: Sandbox, op: openapi.Operation, operation: Any, problems: list[str]) -> int:
    """Send ``EXAMPLES`` generated requests of one operation; note each problem; how many were sent."""
    headers, query = _auth_for(sandbox, op)
    sent = 0

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        nonlocal sent
        sent += 1
        case.query = {**(case.query or {}), **query}
        case.headers = {**(case.headers or {}), **headers}
        resp = case.call(base_url=sandbox.url)
        where = f"{op.method} {case.formatted_path} -> {resp.status_code}"
        if resp.status_code >= 500:
            problems.append(f"{where}: server error {resp.text[:200]}")
            return
        if resp.content and "json" in resp.headers.get("Content-Type", ""):
            for problem in openapi.validate_response(op, resp.status_code, resp.json()):
                problems.append(f"{where}: {problem}")

    check()
    return sent


def _for_its_object_types(doc: dict[str, Any]) -> dict[str, Any]:
    """A dated objects file (``/crm/objects/2026-09/{objectType}``) with ``objectType`` limited to the object
    types it describes (``info.x-callrelay-object-types``), so that generated requests reach its operations
    instead of asking for object types that do not exist."""
    kinds = doc.get("info", {}).get("x-callrelay-object-types")
    if not kinds:
        return doc
    doc = copy.deepcopy(doc)
    for item in doc["paths"].values():
        for op in (v for k, v in item.items() if k != "parameters"):
            for param in op.get("parameters", []):
                if param.get("in") == "path" and param.get("name") == "objectType":
                    param["schema"] = {"type": "string", "enum": list(kinds)}
    return doc


@pytest.mark.slow
@pytest.mark.parametrize("document", openapi.document_names())
def test_generated_requests_get_no_server_error_and_described_answers(sandbox: Sandbox, document: str) -> None:
    loaded = schemathesis.openapi.from_dict(_for_its_object_types(openapi.document(document)))
    problems: list[str] = []
    sent = 0
    for result in loaded.get_all_operations():
        operation = result.ok()
        op = next(o for o in openapi.load_operations() if o.method == operation.method.upper()
                  and o.path == operation.path and o.source == document)
        sent += _run_operation(sandbox, op, operation, problems)
    assert sent > 0
    assert problems == [], "\n".join(sorted(set(problems))[:30])
