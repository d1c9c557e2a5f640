"""The events API's routes: every path and method the gateway serves. Each handler declares its
OpenAPI operation beside itself (:mod:`ingest_gateway.operations`); :mod:`ingest_gateway.openapi`
assembles the document from this table, so a route added here is documented and fuzzed, or the
app refuses to start. A second route on the same path with other methods is fine.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ingest_gateway import health
from ingest_gateway.events.endpoint import post_events
from ingest_gateway.exports import requests_api
from ingest_gateway.exports.deprecated_flow import get_events
from ingest_gateway.operations import serve_document


def routes() -> list[BaseRoute]:
    return [
        Route("/api/events", post_events, methods=["POST"]),
        Route("/api/events", get_events, methods=["GET"]),
        Route("/api/events/export", requests_api.create_export, methods=["POST"]),
        Route("/api/events/download", requests_api.download_result, methods=["GET"]),
        Route("/api/requests", requests_api.list_requests, methods=["GET"]),
        Route("/api/requests/{id}", requests_api.get_request, methods=["GET"]),
        Route("/api/requests/{id}/cancel", requests_api.cancel_request, methods=["POST"]),
        Route("/api/schema", serve_document, methods=["GET"]),
        Route("/health/live", health.live, methods=["GET"]),
        Route("/health/ready", health.ready, methods=["GET"]),
    ]
