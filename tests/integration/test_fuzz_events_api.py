"""Property-based runs over both endpoints of a real gateway on a real broker: whatever the body,
parameters or headers, the answer is never a 5xx and always matches GET /api/schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from eventpipe.contracts import CLIENT_SCOPES
from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from tests.integration.gateway_support import running_gateway
from tests.integration.openapi_support import check_against_schema

# Bounded so that `make test` stays quick; each example is one real HTTP request.
EXAMPLES = 120
FUZZ = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # One gateway serves every example: it keeps no state an example could leak into the next
    # that matters here (rate and login limits are set out of reach below).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Target:
    def __init__(self, client: httpx.Client, document: dict[str, Any]) -> None:
        self.client = client
        self.document = document


@pytest.fixture
def target(settings: Settings) -> Iterator[Target]:
    settings = settings.with_overrides(
        max_body_bytes=64 * 1024, login_failure_limit=0, tenant_events_per_second=0
    )
    store = IdentityStore(settings.data_dir)
    store.add_user("alice", "alice-pw")
    store.add_org("acme")
    store.add_member("acme", "alice", "supervisor")
    with (
        running_gateway(settings) as gateway,
        httpx.Client(base_url=gateway.url, auth=("alice", "alice-pw"), timeout=30) as client,
    ):
        yield Target(client, client.get("/api/schema").json())


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ).map(datetime.isoformat),
    st.text(max_size=30),
    scalars,
)
payloads = st.one_of(
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=20).map(json.dumps),
    st.text(max_size=40),
    scalars,
)
OPTIONAL_FIELDS = {
    name: st.one_of(scalars, st.integers(min_value=0, max_value=2**64))
    for name in (
        "obj_name obj_id obj_val source count duration project_id task_id job_id "
        "user_id user_name user_email org_id org_slug"
    ).split()
}
events = st.fixed_dictionaries(
    {"scope": st.one_of(st.sampled_from(sorted(CLIENT_SCOPES)), st.text(max_size=20))},
    optional={"timestamp": timestamps, "payload": payloads, **OPTIONAL_FIELDS},
)
bodies = st.fixed_dictionaries(
    {"events": st.one_of(st.lists(events, max_size=4), scalars)},
    optional={"timestamp": timestamps, "previous_event": st.one_of(events, scalars)},
)


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    encoded = json.dumps(draw(bodies)).encode()
    # Sometimes cut the body short or splice in arbitrary bytes.
    match draw(st.sampled_from(["whole", "truncated", "spliced"])):
        case "truncated":
            return encoded[: draw(st.integers(0, len(encoded)))]
        case "spliced":
            at = draw(st.integers(0, len(encoded)))
            return encoded[:at] + draw(st.binary(max_size=8)) + encoded[at:]
    return encoded


orgs = st.one_of(st.none(), st.sampled_from(["acme", "ghost"]), st.text(max_size=10))


@FUZZ
@given(body=raw_bodies(), org=orgs)
def test_post_never_answers_5xx_and_always_matches_the_schema(
    target: Target, body: bytes, org: str | None
) -> None:
    params = {} if org is None else {"org": org}
    response = target.client.post(
        "/api/events", content=body, params=params, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    check_against_schema(target.document, "POST", response)


query_values = st.one_of(
    st.integers(min_value=-5, max_value=2**64).map(str),
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    st.uuids().map(str),
    st.sampled_from(["", "download", "1 OR 1=1", "'; DROP TABLE events; --"]),
    st.text(max_size=20),
)
query_names = st.sampled_from(
    "org_id project_id task_id job_id user_id from to filename action query_id org".split()
)


@FUZZ
@given(params=st.dictionaries(query_names, query_values, max_size=4))
def test_get_never_answers_5xx_and_always_matches_the_schema(
    target: Target, params: dict[str, str]
) -> None:
    response = target.client.get("/api/events", params=params)
    assert response.status_code < 500, response.text
    check_against_schema(target.document, "GET", response)
