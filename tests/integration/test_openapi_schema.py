"""GET /api/schema is a valid OpenAPI document, and real answers of every endpoint match it.

No exporter runs here, so exports stay queued; the answers about finished and failed exports are
checked against the document where a whole pipeline runs them (test_export_requests_api.py,
test_export_api_failures.py)."""

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
    with serving(
        settings, ["alice", "bob", "mallory", "carol"], [("acme", "alice", "worker")]
    ) as world:
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
    ("POST", ALICE, {"json": body(event()), "headers": {"X-Organization": "ghost"}}, 404),
    ("POST", ALICE, {"json": body(*[event()] * 4)}, 413),
    ("POST", ALICE, {"content": b"x" * 5000, "headers": {"Content-Type": "application/json"}}, 413),
    ("POST", ALICE, {"content": b"{}", "headers": {"Content-Type": "text/plain"}}, 415),
    ("GET", ALICE, {}, 202),
    ("GET", ALICE, {"params": {"org": "acme", "user_id": 999}}, 403),
    ("GET", ALICE, {"params": {"from": "yesterday"}}, 400),
    ("GET", ALICE, {"params": {"query_id": str(uuid.uuid4())}}, 202),
    ("GET", ALICE, {"params": {"location": "cloud_storage"}}, 400),
    ("GET", None, {}, 401),
]


async def test_the_document_is_valid_openapi(gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        response = await client.get("/api/schema")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert set(document["paths"]["/api/events"]) == {"get", "post"}
    assert {
        "/api/events/export",
        "/api/events/download",
        "/api/requests",
        "/api/requests/{id}",
        "/api/requests/{id}/cancel",
    } <= set(document["paths"])
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


async def test_real_answers_of_the_requests_api_match_the_document(
    gateway: RunningGateway,
) -> None:
    carol = ("carol", "carol-pw")
    async with httpx.AsyncClient(base_url=gateway.url, auth=carol) as client:
        document = (await client.get("/api/schema")).json()

        async def check(
            method: str, path: str, status: int, rq_id: str = "", **kwargs: Any
        ) -> httpx.Response:
            """``path`` is the document's; an ``{id}`` in it is ``rq_id`` in the request."""
            response = await client.request(method, path.replace("{id}", rq_id), **kwargs)
            assert response.status_code == status, (method, path, response.text)
            check_against_schema(document, method, response, path)
            return response

        first = await check("POST", "/api/events/export", 202, params={"job_id": 1})
        second = await check("POST", "/api/events/export", 202)
        queued, cancelled = first.json()["rq_id"], second.json()["rq_id"]
        await check("POST", "/api/events/export", 400, params={"location": "cloud_storage"})
        await check("POST", "/api/events/export", 403, params={"org": "acme"})
        await check("POST", "/api/events/export", 401, auth=("carol", "wrong"))
        await check("GET", "/api/requests/{id}", 200, queued)
        await check("GET", "/api/requests/{id}", 404, str(uuid.uuid4()))
        await check("GET", "/api/requests", 200, params={"page_size": 1})
        await check("GET", "/api/requests", 400, params={"status": "running"})
        await check("GET", "/api/requests", 404, params={"page": 9})
        await check("GET", "/api/events/download", 400, params={"rq_id": queued})
        await check("GET", "/api/events/download", 400, params={"rq_id": str(uuid.uuid4())})
        await check("POST", "/api/requests/{id}/cancel", 200, cancelled)
        await check("POST", "/api/requests/{id}/cancel", 404, cancelled)
        # The deprecated flow's answers carry the documented Deprecation header.
        await check("GET", "/api/events", 202)
