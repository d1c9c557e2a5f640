"""GET /api/schema on the intake port is a valid OpenAPI document that says how the intake is
configured, and the intake's real answers match it (as test_openapi_schema.py checks the API's;
the 503 of a broker away is checked in test_intake.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from eventpipe_cli.embedded_broker import EmbeddedBroker
from tests.conftest import isolated_settings
from tests.integration.intake_support import running_intake, server_event, with_intake_port
from tests.integration.openapi_support import check_against_schema

CREDENTIALS = ("cvat", "s3cret")


def schema_of(url: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}api/schema")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    document: dict[str, Any] = answer.json()
    validate(document)
    return document


@pytest.mark.parametrize("with_credentials", [True, False])
async def test_the_document_says_whether_credentials_are_needed(
    tmp_path: Path, broker: EmbeddedBroker, with_credentials: bool
) -> None:
    username, password = CREDENTIALS if with_credentials else ("", "")
    settings = with_intake_port(
        isolated_settings(
            tmp_path,
            broker,
            intake_username=username,
            intake_password=password,
            intake_max_events_per_batch=7,
        )
    )
    with running_intake(settings) as url:
        document = schema_of(url)
    body = document["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["maxItems"] == 7
    if with_credentials:
        assert document["security"] == [{"basicAuth": []}]
    else:
        assert "security" not in document


async def test_real_answers_match_the_document(tmp_path: Path, broker: EmbeddedBroker) -> None:
    settings = with_intake_port(
        isolated_settings(
            tmp_path,
            broker,
            intake_username=CREDENTIALS[0],
            intake_password=CREDENTIALS[1],
            intake_max_events_per_batch=3,
            intake_max_body_bytes=4096,
        )
    )
    # (request keyword arguments, expected status, expected body where it tells the case)
    cases: list[tuple[dict[str, Any], int, dict[str, int] | None]] = [
        ({"json": [server_event(), server_event()]}, 200, {"accepted": 2, "dead_lettered": 0}),
        # Invalid events are dead-lettered and the batch still answered 200, as documented.
        (
            {"json": [server_event(), {"timestamp": "1"}, server_event(job_id="x")]},
            200,
            {"accepted": 1, "dead_lettered": 2},
        ),
        ({"json": {"scope": "a"}}, 400, None),
        ({"json": [1]}, 400, None),
        ({"content": b"not json"}, 400, None),
        ({"json": [server_event()] * 4}, 413, None),
        ({"json": [server_event(obj_val="x" * 5000)]}, 413, None),
        ({"json": [server_event()], "auth": None}, 401, None),
        ({"json": [server_event()], "auth": ("cvat", "guess")}, 401, None),
    ]
    with running_intake(settings) as url:
        document = schema_of(url)
        for kwargs, status, answer_body in cases:
            request = {"auth": CREDENTIALS, **kwargs}
            response = httpx.post(url, **request)
            assert response.status_code == status, (kwargs, response.text)
            check_against_schema(document, "POST", response)
            if answer_body is not None:
                assert response.json() == answer_body
