"""Probes for orchestrators: live while the process serves HTTP, ready while the broker answers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ingest_gateway.errors import json_response
from ingest_gateway.operations import unpublished
from ingest_gateway.producer import RETRY_AFTER_SECONDS, producer_of


# Probes are for orchestrators, not API clients: the document leaves them out.
@unpublished
async def live(request: Request) -> Response:
    return json_response(200, {"status": "live"})


@unpublished
async def ready(request: Request) -> Response:
    if producer_of(request).ready:
        return json_response(200, {"status": "ready"})
    return json_response(
        503,
        {"status": "unavailable", "error": "the event broker is not reachable"},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
