"""Consumer lag of the pipeline's consumer groups, per partition, for the worker's metrics.

Lag is read from the broker, not from a consumer: a group's committed offsets against the end
of each partition, through a consumer that names the group but subscribes to nothing (so it never
joins the group or moves its partitions). Every worker reads the lag of both groups, so any one
of them that is up tells the whole story; they agree up to the moment each read it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from eventpipe.settings import Settings
from stream_processors.metrics import CONSUMER_LAG

log = logging.getLogger(__name__)

INTERVAL_SECONDS: Final = 5.0
# A round against an unreachable broker gives up after this, and the next one tries again.
READ_TIMEOUT_SECONDS: Final = 10.0


async def watch_consumer_lag(settings: Settings, interval: float = INTERVAL_SECONDS) -> None:
    """Update :data:`CONSUMER_LAG` every ``interval`` seconds until cancelled."""
    groups = (
        (settings.processor_group_id, settings.events_topic),
        (settings.exporter_group_id, settings.exports_topic),
    )
    failing = False
    while True:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                for group, topic in groups:
                    for partition, lag in (await read_lag(settings, group, topic)).items():
                        CONSUMER_LAG.labels(group, topic, str(partition)).set(lag)
        except (KafkaError, OSError, TimeoutError) as exc:
            # Logged once per outage: the next rounds would only repeat it.
            if not failing:
                log.warning("cannot read consumer lag (the gauges keep their last values): %r", exc)
            failing = True
        else:
            if failing:
                log.info("reading consumer lag again")
            failing = False
        await asyncio.sleep(interval)


async def read_lag(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """Per partition of ``topic``: messages ``group`` has not committed. Nothing if no topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        await consumer.topics()  # loads the metadata partitions_for_topic answers from
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            return {}
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        lag: dict[int, int] = {}
        for tp in partitions:
            committed = await consumer.committed(tp)
            # A group that never committed starts from the oldest message still kept.
            position = starts[tp] if committed is None else committed
            lag[tp.partition] = max(0, ends[tp] - position)
        return lag
    finally:
        await consumer.stop()
