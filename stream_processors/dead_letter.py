"""Park messages the processor cannot use on the dead-letter topic, so the stream keeps moving.

The original bytes and key go out unchanged; headers say why and where they came from, so an
operator can inspect, fix and replay them.
"""

from __future__ import annotations

import logging
from typing import Final

import faust
from faust.types import EventT

from stream_processors import metrics

log = logging.getLogger(__name__)

REASON_HEADER: Final = "eventpipe-dlq-reason"
DETAIL_HEADER: Final = "eventpipe-dlq-detail"
TOPIC_HEADER: Final = "eventpipe-source-topic"
PARTITION_HEADER: Final = "eventpipe-source-partition"
OFFSET_HEADER: Final = "eventpipe-source-offset"
# Headers travel with every copy of the message; a validation error can quote a lot of input.
_MAX_DETAIL_BYTES: Final = 1024


class DeadLetters:
    def __init__(self, app: faust.App, topic: str) -> None:
        self.app = app
        self.topic = topic

    async def send(self, event: EventT[bytes], reason: str, detail: str) -> None:
        """Publish the event's message on the dead-letter topic and wait until the broker has it.

        Waiting matters: the caller acks the source message next, and then only this copy is left.
        """
        message = event.message
        headers = [
            (REASON_HEADER, reason.encode()),
            (DETAIL_HEADER, detail.encode()[:_MAX_DETAIL_BYTES]),
            (TOPIC_HEADER, message.topic.encode()),
            (PARTITION_HEADER, str(message.partition).encode()),
            (OFFSET_HEADER, str(message.offset).encode()),
        ]
        await self.app.producer.send_and_wait(
            self.topic, message.key, message.value, None, None, headers
        )
        metrics.DEAD_LETTERS.labels(reason).inc()
        log.warning(
            "dead-lettered %s[%d]@%d to %s: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            self.topic,
            reason,
            detail,
        )
