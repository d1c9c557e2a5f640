"""The OpenAPI 3.1 document of the events API, served at ``GET /api/schema``.

Assembled from the app's routes: each handler declares its operation beside itself
(:mod:`ingest_gateway.operations`), and its request and response bodies are the msgspec
contracts (:mod:`eventpipe.contracts`) and answer Structs it names, so the document is
generated, not written by hand. Its paths are the routes', less those left out on purpose
(probes, the document itself); a route that declares nothing stops the app from being made.
Tests check real responses against it (tests/integration/test_openapi_schema.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Final

import msgspec
from starlette.routing import BaseRoute, Route

from ingest_gateway.identity.csrf import CSRF_COOKIE
from ingest_gateway.identity.cvat_credentials import SESSION_COOKIE
from ingest_gateway.operations import REF, Error, Operation, operation_of
from ingest_gateway.routes import routes

_SECURITY_SCHEMES: Final = {
    "basicAuth": {"type": "http", "scheme": "basic"},
    "tokenAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "'Token <key>' with a key from `eventpipe tokens create`",
    },
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API token, or a JWT when the server is configured for one",
    },
}


def published_operations(served: Sequence[BaseRoute]) -> list[tuple[str, str, Operation]]:
    """``(path, method, operation)`` of every route the document describes, in route order;
    raises :class:`ingest_gateway.operations.UndocumentedRoute` for one that declares nothing."""
    published = []
    for route in served:
        assert isinstance(route, Route), f"{route!r}: only plain routes are documented"
        operation = operation_of(route.endpoint, route.path)
        if operation is None:
            continue
        # Starlette adds HEAD to every GET route: it answers, but is no operation of its own.
        for method in sorted((route.methods or set()) - {"HEAD"}):
            published.append((route.path, method.lower(), operation))
    return published


def assemble(served: Sequence[BaseRoute], cvat: bool = False) -> dict[str, Any]:
    """The document of an app serving ``served``; ``cvat``: of a gateway whose callers are
    CVAT's."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: list[type[msgspec.Struct]] = [Error]
    published = published_operations(served)
    for path, method, operation in published:
        paths.setdefault(path, {})[method] = operation.openapi()
        schemas.extend(struct for struct in operation.schemas if struct not in schemas)
    _, components = msgspec.json.schema_components(schemas, ref_template=REF)
    for _, _, operation in published:
        if operation.refine is not None:
            operation.refine(components)
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "eventpipe events API (CVAT-compatible)", "version": "1"},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": _SECURITY_SCHEMES},
        "security": [{"basicAuth": []}, {"tokenAuth": []}, {"bearerAuth": []}],
    }
    if cvat:
        _with_cvat_credentials(document)
    return document


@functools.cache
def schema_document(cvat: bool = False) -> dict[str, Any]:
    """The gateway's document (built once); ``cvat``: of a gateway whose callers are CVAT's."""
    return assemble(routes(), cvat)


@functools.cache
def encoded_document(cvat: bool) -> bytes:
    """The document as ``GET /api/schema`` serves it (encoded once)."""
    return msgspec.json.encode(schema_document(cvat))


# With EVENTPIPE_CVAT_URL every credential is CVAT's and forwarded to it, and CVAT's web UI
# session is one too: its cookie alone reads; a POST also needs the CSRF cookie and the header
# that Django checks against it (else 403).
_CVAT_SCHEMES: Final = {
    "basicAuth": {"type": "http", "scheme": "basic", "description": "a CVAT user's password"},
    "tokenAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "'Token <key>' with a CVAT API key (cvat-sdk, cvat-cli)",
    },
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "a CVAT access token"},
    "cvatSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "CVAT's web UI session",
    },
    "cvatCsrfCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": CSRF_COOKIE,
        "description": "CVAT's CSRF cookie, sent with the session on a POST",
    },
    "cvatCsrfHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRFToken",
        "description": "the csrftoken cookie's token (plain or masked), with the session on a POST",
    },
}


_SESSION_READS: Final[dict[str, list[str]]] = {"cvatSession": []}
_SESSION_POSTS: Final[dict[str, list[str]]] = {
    "cvatSession": [],
    "cvatCsrfCookie": [],
    "cvatCsrfHeader": [],
}


def _with_cvat_credentials(document: dict[str, Any]) -> None:
    document["components"]["securitySchemes"] = _CVAT_SCHEMES
    for operations in document["paths"].values():
        for method, operation in operations.items():
            # Every operation here is a GET or a POST: Django checks CSRF on the POSTs only.
            session = _SESSION_READS if method == "get" else _SESSION_POSTS
            operation["security"] = [*document["security"], session]
