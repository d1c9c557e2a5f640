"""The Faust application of a worker process, built from :class:`Settings`."""

from __future__ import annotations

from typing import Final

import faust

from eventpipe.logs import logging_config
from eventpipe.settings import Settings

# Faust commits acked offsets on this period; short, so a restart re-reads little and the group's
# committed offsets (what lag and the benchmarks read) trail the inserts by little.
COMMIT_INTERVAL_SECONDS: Final = 0.2
# Kafka's long-time default. Tansu answers a group join only after half the session timeout,
# so Faust's 60 s default would keep a starting worker idle for 30 s.
SESSION_TIMEOUT_SECONDS: Final = 10.0
# The CVAT client sends its events in requests of up to 100.
EVENTS_PER_FULL_REQUEST: Final = 100
# Messages Faust may hold for the agent beyond the batch it is working on.
BUFFERED_BATCHES: Final = 2


def batch_messages(settings: Settings) -> int:
    """Kafka messages the ingest agent takes at once: about ``batch_max_rows`` events when the
    requests are full."""
    return max(1, settings.batch_max_rows // EVENTS_PER_FULL_REQUEST)


def build_app(settings: Settings) -> faust.App:
    app = faust.App(
        # The app id is also the Kafka consumer group.
        settings.processor_group_id,
        broker=[
            f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")
        ],
        # Messages are decoded by the agent, so that a bad one can be dead-lettered as it came.
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        store="memory://",
        # Faust keeps a directory per app even without tables; by default in the working directory.
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        # No tables, so no leader topic is needed.
        topic_disable_leader=True,
        broker_commit_interval=COMMIT_INTERVAL_SECONDS,
        broker_session_timeout=SESSION_TIMEOUT_SECONDS,
        # On a rebalance, do not wait for a batch that may be retrying an insert: its unacked
        # messages are simply consumed again by the partition's next owner.
        stream_wait_empty=False,
        # Faust counts its read-ahead in messages (4096 by default), and ours are up to a whole
        # request each: while inserts fail, a default buffer held some 140 MB of a backlog.
        # A couple of batches keeps the next one ready and memory bounded by the batch size.
        stream_buffer_maxsize=BUFFERED_BATCHES * batch_messages(settings),
        # A message may be as large as the gateway produces them (an intake batch of CVAT's
        # server holds up to max_message_bytes): Faust's 1 MB defaults would stall its partition
        # at such a message, and refuse to dead-letter one.
        consumer_max_fetch_size=settings.max_message_bytes,
        producer_max_request_size=settings.max_message_bytes,
        # Faust's worker replaces the process's logging setup with this one when it starts.
        logging_config=logging_config(settings),
    )
    return app


def events_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    return app.topic(settings.events_topic, partitions=settings.topic_partitions)
