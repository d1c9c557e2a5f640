"""GET /api/schema is a valid OpenAPI document, and real answers of both endpoints match it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from eventpipe.settings import Settings
from tests.integration.gateway_support import RunningGateway
from tests.integration.openapi_support import check_against_schema
from tests.integration.security_support import serving


@pytest.fixture
def gateway(settings: Settings) -> Iterator[RunningGateway]:
    settings = settings.with_overrides(
        max_body_bytes=4096,
        max_events_per_request=3,
        login_failure_limit=2,
        tenant_events_per_second=1.0,
        tenant_burst_events=4,
    )
    with serving(settings, ["alice", "bob", "mallory"], [("acme", "alice", "worker")]) as world:
        yield world.gateway


def event(**fields: object) -> dict[str, object]:
    return {"scope": "load:job", "timestamp": "2026-01-01T00:00:00Z", **fields}


def body(*events: dict[str, object]) -> dict[str, object]:
    return {"events": list(events), "timestamp": "2026-01-01T00:00:00Z"}


ALICE = ("alice", "alice-pw")

# (method, auth, request keyword arguments, expected status)
REQUESTS: list[tuple[str, tuple[str, str] | None, dict[str, Any], int]] = [
    ("POST", ALICE, {"json": body(event(job_id=1))}, 201),
    ("POST", ALICE, {"json": body(event(job_id="x"))}, 400),
    ("POST", ALICE, {"json": body(event(payload="{"))}, 400),
    ("POST", None, {"json": body(event())}, 401),
    ("POST", ALICE, {"json": body(event()), "headers": {"X-Organization": "ghost"}}, 403),
    ("POST", ALICE, {"json": body(*[event()] * 4)}, 413),
    ("POST", ALICE, {"content": b"x" * 5000, "headers": {"Content-Type": "application/json"}}, 413),
    ("POST", ALICE, {"content": b"{}", "headers": {"Content-Type": "text/plain"}}, 415),
    ("GET", ALICE, {}, 202),
    ("GET", ALICE, {"params": {"org": "acme", "user_id": 999}}, 403),
    ("GET", ALICE, {"params": {"from": "yesterday"}}, 400),
    ("GET", ALICE, {"params": {"query_id": str(uuid.uuid4())}}, 404),
    ("GET", None, {}, 401),
]


async def test_the_document_is_valid_openapi(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        response = await client.get("/api/schema")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert set(document["paths"]["/api/events"]) == {"get", "post"}
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"basicAuth", "tokenAuth", "bearerAuth"}
    post = document["paths"]["/api/events"]["post"]["responses"]
    assert {"201", "400", "401", "403", "408", "413", "415", "429", "503"} <= set(post)


async def test_real_answers_match_the_document(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        document = (await client.get("/api/schema")).json()
        for method, auth, kwargs, status in REQUESTS:
            response = await client.request(
                method, "/api/events", auth=auth or httpx.USE_CLIENT_DEFAULT, **kwargs
            )
            assert response.status_code == status, (method, kwargs, response.text)
            check_against_schema(document, method, response)

        # 429 twice: a guessing client, and a tenant over its rate (the burst of 4 is spent).
        for _ in range(2):
            await client.post("/api/events", json=body(event()), auth=("mallory", "guess"))
        throttled = await client.post("/api/events", json=body(event()), auth=("mallory", "x"))
        assert throttled.status_code == 429
        check_against_schema(document, "POST", throttled)
        statuses = [
            (await client.post("/api/events", json=body(*[event()] * 3), auth=("bob", "bob-pw")))
            for _ in range(3)
        ]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, [r.status_code for r in statuses]
        check_against_schema(document, "POST", limited[0])
