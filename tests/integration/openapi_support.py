"""Check a real HTTP answer against the gateway's own OpenAPI document."""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator


def check_against_schema(
    document: dict[str, Any], method: str, response: httpx.Response, path: str | None = None
) -> None:
    """The answer's status is documented for the operation and its body matches that schema.

    ``path`` is the document's (templated) path when it is not the request's own."""
    operation = document["paths"][path or response.request.url.path][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, (
        f"{method} {response.request.url.path} answered an undocumented "
        f"{response.status_code}: {response.text[:300]}"
    )
    if "content" not in documented:
        assert response.content == b"", f"{response.status_code} has an undocumented body"
        return
    media_type = response.headers["content-type"].partition(";")[0]
    assert media_type in documented["content"], (response.status_code, media_type)
    if media_type != "application/json":
        return
    schema = {**documented["content"][media_type]["schema"], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(response.json()), key=lambda e: e.path)
    assert not errors, f"{response.status_code} {response.text[:300]}: {errors[0].message}"
    for header in documented.get("headers", {}):
        assert header in response.headers, f"{response.status_code} lacks {header}"
