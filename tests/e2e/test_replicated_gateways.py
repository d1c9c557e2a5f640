"""Two `eventpipe gateway` processes, as two replicas run, on one PostgreSQL identity store and
one Redis: what the CLI does reaches both, and a tenant gets its limit once, not once per
replica."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import free_port
from eventpipe_cli.testing.pipeline import start_eventpipe, stop_processes, wait_ready

pytestmark = pytest.mark.slow

BURST = 100
EVENTS_PER_POST = 10


def cli(settings: Settings, *argv: str) -> str:
    """Run the `eventpipe` command as an operator does, with these settings in its environment."""
    done = subprocess.run(
        [sys.executable, "-m", "eventpipe_cli.cli", *argv],
        env=settings.to_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def events(count: int) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"events": [{"scope": "click:element", "timestamp": now}] * count, "timestamp": now}


@pytest.fixture
def shared_settings(settings: Settings, postgres_dsn: str, redis_url: str) -> Settings:
    """Settings of the deployment, whose PostgreSQL schema `eventpipe migrate` created."""
    shared = settings.with_overrides(
        identity_dsn=postgres_dsn,
        rate_limit_redis_url=redis_url,
        # A burst of 100 events and a refill too slow to matter during the test.
        tenant_events_per_second=0.5,
        tenant_burst_events=BURST,
        token_cache_seconds=1.0,
    )
    cli(shared, "migrate", "--only", "identity")
    return shared


@pytest.fixture
def two_gateways(shared_settings: Settings, tmp_path: Path) -> Iterator[list[str]]:
    processes, urls = [], []
    for replica in ("a", "b"):
        port = free_port()
        replica_settings = shared_settings.with_overrides(
            http_port=port, data_dir=tmp_path / f"replica-{replica}"
        )
        log = (tmp_path / f"gateway-{replica}.log").open("wb")
        processes.append(start_eventpipe(["gateway"], replica_settings, log))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_ready(url, 60, processes)
        yield urls
    finally:
        stop_processes(processes)


def test_two_gateways_share_identities_revocations_and_tenant_limits(
    shared_settings: Settings, two_gateways: list[str]
) -> None:
    # The identities come from the CLI, into PostgreSQL.
    cli(shared_settings, "users", "add", "alice", "--password", "alice-pw")
    revoked, kept = (cli(shared_settings, "tokens", "create", "alice") for _ in range(2))

    def post(url: str, token: str, count: int = 1) -> int:
        headers = {"Authorization": f"Token {token}"}
        return httpx.post(f"{url}/api/events", json=events(count), headers=headers).status_code

    assert [post(url, revoked) for url in two_gateways] == [201, 201]
    accepted = 2  # events the tenant's budget has paid for so far

    cli(shared_settings, "tokens", "revoke", revoked)
    deadline = time.monotonic() + 10
    while True:
        statuses = [post(url, revoked) for url in two_gateways]
        # A replica may still accept the token until its cache entry expires; those events count.
        accepted += statuses.count(201)
        if statuses == [401, 401]:
            break
        assert time.monotonic() < deadline, "a gateway kept accepting the revoked token"
        time.sleep(0.05)

    # Alternate between the replicas until both refuse: together they admit one burst.
    refusals = 0
    while refusals < 4:
        status = post(two_gateways[refusals % 2], kept, EVENTS_PER_POST)
        if status == 201:
            accepted += EVENTS_PER_POST
            refusals = 0
        else:
            assert status == 429
            refusals += 1
    # One burst (plus the last request's debt and the slow refill), not one per replica.
    assert BURST <= accepted <= BURST + 2 * EVENTS_PER_POST
