"""Park messages the processor cannot use on the dead-letter topic, so the stream keeps moving.

The original bytes and key go out unchanged; headers say why and where they came from, so an
operator can inspect, fix and replay them.
"""

from __future__ import annotations

import logging

import faust
from faust.types import EventT

from eventpipe.contracts import (
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_MAX_DETAIL_BYTES,
    DEAD_LETTER_OFFSET_HEADER,
    DEAD_LETTER_PARTITION_HEADER,
    DEAD_LETTER_REASON_HEADER,
    DEAD_LETTER_TOPIC_HEADER,
)
from stream_processors import metrics

log = logging.getLogger(__name__)


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
            (DEAD_LETTER_REASON_HEADER, reason.encode()),
            (DEAD_LETTER_DETAIL_HEADER, detail.encode()[:DEAD_LETTER_MAX_DETAIL_BYTES]),
            (DEAD_LETTER_TOPIC_HEADER, message.topic.encode()),
            (DEAD_LETTER_PARTITION_HEADER, str(message.partition).encode()),
            (DEAD_LETTER_OFFSET_HEADER, str(message.offset).encode()),
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
