"""The export store's troubles stay with exports: events keep flowing, exports answer 503."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from eventpipe.identity import IdentityStore
from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from tests.integration.gateway_support import events_topic_size, running_gateway

ALICE = ("alice", "alice-pw")


def events_body() -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {"events": [{"scope": "load:job", "timestamp": now}], "timestamp": now}


async def test_gateway_takes_events_while_the_s3_endpoint_is_down(settings: Settings) -> None:
    nobody_listens = f"127.0.0.1:{free_port()}"
    settings = settings.with_overrides(
        s3_endpoint=nobody_listens, s3_access_key="key", s3_secret_key="secret"
    )
    IdentityStore(settings.data_dir).add_user(*ALICE)
    with running_gateway(settings) as gateway:
        posted = httpx.post(f"{gateway.url}/api/events", json=events_body(), auth=ALICE)
        export = httpx.get(f"{gateway.url}/api/events", auth=ALICE)

    assert posted.status_code == 201, posted.text
    assert export.status_code == 503
    assert export.headers["Retry-After"]
    assert "export store" in export.json()["error"]
    assert await events_topic_size(settings, settings.exports_topic) == 0


async def test_head_without_query_id_starts_no_export(settings: Settings) -> None:
    IdentityStore(settings.data_dir).add_user(*ALICE)
    with running_gateway(settings) as gateway:
        answer = httpx.head(f"{gateway.url}/api/events", auth=ALICE)
        started = httpx.get(f"{gateway.url}/api/events", auth=ALICE)

    assert answer.status_code == 405
    assert started.status_code == 202
    # Only the GET reached the exporters.
    assert await events_topic_size(settings, settings.exports_topic) == 1
