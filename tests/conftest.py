"""Fixtures for real engines: a Kafka-protocol broker, an embedded ClickHouse engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventpipe.embedded_broker import EmbeddedBroker, start_broker
from eventpipe.settings import Settings


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One real broker for the session; tests isolate themselves with their own topic names."""
    running = start_broker()
    yield running
    running.stop()


@pytest.fixture
def settings(tmp_path: Path, broker: EmbeddedBroker) -> Settings:
    """Settings for one test: its own data directory, topics and consumer groups."""
    suffix = uuid.uuid4().hex[:10]
    return Settings(
        data_dir=tmp_path / "data",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        events_topic=f"events-{suffix}",
        exports_topic=f"exports-{suffix}",
        dead_letter_topic=f"dlq-{suffix}",
        topic_partitions=4,
        processor_group_id=f"processor-{suffix}",
        exporter_group_id=f"exporter-{suffix}",
        produce_timeout_seconds=5.0,
        batch_max_seconds=0.2,
    )
