"""The requests API answers with CVAT's own schemas: every state of an export, described as
CVAT's ``Request``, and the list and ``RqId`` around it, validated against ``cvat/schema.yml``
(read at run time from CVAT's source tree) under OpenAPI 3.0's rules."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from openapi_schema_validator import OAS30Validator

from ingest_gateway.exports.request_answer import (
    PaginatedRequestList,
    RequestOwner,
    RqId,
    describe,
    render_rq_id,
)
from tests.integration.cvat_support import cvat_schema
from tests.unit.test_request_model import URL, records


def cvat_errors(component: str, answer: msgspec.Struct) -> list[str]:
    document = cvat_schema()
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    body: Any = msgspec.json.decode(msgspec.json.encode(answer))
    return [error.message for error in OAS30Validator(schema).iter_errors(body)]


@pytest.mark.parametrize("name", list(records()))
def test_each_state_is_cvats_request(name: str) -> None:
    status = records()[name]
    request = describe(status, RequestOwner(id=7, username="alice"), URL)
    assert cvat_errors("Request", request) == []
    listed = PaginatedRequestList(count=1, next=None, previous=None, results=[request])
    assert cvat_errors("PaginatedRequestList", listed) == []
    started = RqId(rq_id=render_rq_id(status.query_id, 7))
    assert cvat_errors("RqId", started) == []


def test_the_check_sees_a_field_cvat_does_not_allow() -> None:
    """The schema check itself: a status CVAT has no name for is refused."""
    request = describe(records()["queued"], RequestOwner(id=7, username="alice"), URL)
    wrong = msgspec.structs.replace(request, status="running")
    assert cvat_errors("Request", wrong) != []
