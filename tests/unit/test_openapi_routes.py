"""The events API's OpenAPI document is assembled from the app's routes: every route the app
serves is in it, except the three left out on purpose, and a route whose handler declares no
operation stops the document (and so the app) from being made. The intake's document, written
from its settings, covers its routes the same way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eventpipe.settings import Settings
from ingest_gateway.app import create_app
from ingest_gateway.intake.app import create_intake_app
from ingest_gateway.openapi import assemble
from ingest_gateway.operations import (
    Operation,
    UndocumentedRoute,
    documented,
    error_answers,
    unpublished,
)
from ingest_gateway.routes import routes

# Not for API clients: the probes, and the document itself.
UNPUBLISHED = {("/api/schema", "get"), ("/health/live", "get"), ("/health/ready", "get")}


def served(app_routes: list[BaseRoute]) -> set[tuple[str, str]]:
    """(path, method) of every route, less the HEAD Starlette adds to each GET."""
    return {
        (route.path, method.lower())
        for route in app_routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }


def documented_paths(document: dict[str, object]) -> set[tuple[str, str]]:
    paths = document["paths"]
    assert isinstance(paths, dict)
    return {(path, method) for path, operations in paths.items() for method in operations}


@pytest.mark.parametrize("make_app", [create_app, create_intake_app], ids=["api", "intake"])
def test_the_served_document_describes_every_route_of_the_app(
    make_app: Callable[[Settings], Starlette], tmp_path: Path
) -> None:
    app = make_app(Settings(data_dir=tmp_path))
    document = json.loads(app.state.schema)
    assert documented_paths(document) == served(app.routes) - UNPUBLISHED
    assert served(app.routes) >= UNPUBLISHED


async def _handler(request: Request) -> Response:
    return Response(status_code=204)


def test_a_route_without_an_operation_is_refused() -> None:
    with pytest.raises(UndocumentedRoute, match="/api/new"):
        assemble([*routes(), Route("/api/new", _handler, methods=["POST"])])


def test_a_documented_route_appears_under_its_path_and_method() -> None:
    async def handler(request: Request) -> Response:
        return Response(status_code=204)

    documented(
        Operation(
            operation_id="new_create",
            summary="A new operation",
            parameters=[],
            responses=error_answers(400),
        )
    )(handler)
    document = assemble([*routes(), Route("/api/new", handler, methods=["POST"])])
    assert document["paths"]["/api/new"] == {
        "post": {
            "operationId": "new_create",
            "summary": "A new operation",
            "parameters": [],
            "responses": error_answers(400),
        }
    }


def test_an_unpublished_route_is_left_out() -> None:
    async def handler(request: Request) -> Response:
        return Response(status_code=204)

    document = assemble([*routes(), Route("/internal", unpublished(handler), methods=["GET"])])
    assert "/internal" not in document["paths"]
