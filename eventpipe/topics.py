"""Create the pipeline's Kafka topics if they are missing (idempotent; any process may)."""

from __future__ import annotations

import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from eventpipe.settings import Settings

log = logging.getLogger(__name__)


def pipeline_topics(settings: Settings) -> list[str]:
    return [settings.events_topic, settings.exports_topic, settings.dead_letter_topic]


async def ensure_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in pipeline_topics(settings) if name not in existing]
        if not missing:
            return
        # Another process may create them between our list and create: that is the goal anyway.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication_factor,
                        topic_configs={"max.message.bytes": str(settings.max_message_bytes)},
                    )
                    for name in missing
                ]
            )
        log.info("created topics %s", missing)
    finally:
        await admin.close()
