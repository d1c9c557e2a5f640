"""Fixtures for real engines: a Kafka-protocol broker, an embedded ClickHouse engine,
PostgreSQL and Redis servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from eventpipe.settings import Settings
from eventpipe_cli.embedded_broker import EmbeddedBroker, start_broker
from tests.server_processes import PostgresServer, RedisServer, postgres_server, redis_server


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One real broker for the session; tests isolate themselves with their own topic names."""
    running = start_broker()
    yield running
    running.stop()


def isolated_settings(data_dir: Path, broker: EmbeddedBroker, **overrides: Any) -> Settings:
    """Settings with their own data directory, topics and consumer groups on ``broker``."""
    suffix = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "events_topic": f"events-{suffix}",
        "exports_topic": f"exports-{suffix}",
        "dead_letter_topic": f"dlq-{suffix}",
        "topic_partitions": 4,
        "processor_group_id": f"processor-{suffix}",
        "exporter_group_id": f"exporter-{suffix}",
        "produce_timeout_seconds": 5.0,
        "batch_max_seconds": 0.2,
        # Workers serve no metrics unless a test asks: a fixed port would collide between tests.
        "metrics_port": 0,
    }
    return Settings(**(values | overrides))


@pytest.fixture
def settings(tmp_path: Path, broker: EmbeddedBroker) -> Settings:
    """Settings for one test: its own data directory, topics and consumer groups."""
    return isolated_settings(tmp_path / "data", broker)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 HTTP endpoint (moto's server) as ``host:port``; tests use their own buckets."""
    from moto.server import ThreadedMotoServer

    from eventpipe_cli.embedded_broker import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def events_clickhouse(tmp_path: Path) -> Iterator[Client]:
    """An embedded ClickHouse engine in ``tmp_path`` with the migrated ``events`` table.

    Closed after the test: a process hosts one chDB path at a time.
    """
    from eventpipe.clickhouse import clickhouse_client
    from stream_processors.migrations import apply_migrations

    client = clickhouse_client(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}"))
    apply_migrations(client)
    yield client
    client.close()


@pytest.fixture
def insert_events() -> Callable[[Client, list[dict[str, Any]]], None]:
    """Insert rows into ``events`` as CVAT's collector would; each dict holds CVAT columns."""

    def insert(client: Client, rows: list[dict[str, Any]]) -> None:
        from eventpipe.events_table import CVAT_COLUMNS

        defaults = {"source": "client", "duration": 0}
        data = [[row.get(name, defaults.get(name)) for name in CVAT_COLUMNS] for row in rows]
        client.insert("events", data, column_names=list(CVAT_COLUMNS))

    return insert


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; tests take their own database from it."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres: PostgresServer) -> str:
    """The DSN of a fresh, empty database on the session's PostgreSQL server."""
    import psycopg

    database = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.dsn(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    return postgres.dsn(database)


@pytest.fixture(scope="session")
def redis_session() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_session: RedisServer) -> str:
    """The URL of the session's real Redis server, emptied for this test."""
    import redis

    with redis.Redis(port=redis_session.port) as client:
        client.flushall()
    return redis_session.url
