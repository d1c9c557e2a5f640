"""Our producers' lz4 batches: level 1, and still read back by Kafka clients.

The level is set by replacing an encoder inside aiokafka's record builders; these tests build
batches with aiokafka's own builder, so a release that moves or renames it fails them.
"""

from __future__ import annotations

import random

import cramjam
import pytest
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from eventpipe.kafka_compression import LZ4_LEVEL, producer_compression
from eventpipe.settings import Settings
from eventpipe_cli.testing.traffic import ingest_messages, request_body

# Where the records start in a batch of the v2 format: after the 61-byte header.
RECORDS_OFFSET = 61


def _batch(messages: list[tuple[bytes, bytes]], codec: int) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 24,
    )
    for offset, (key, value) in enumerate(messages):
        builder.append(offset, timestamp=1_700_000_000_000, key=key, value=value, headers=[])
    return bytes(builder.build())


@pytest.fixture
def messages() -> list[tuple[bytes, bytes]]:
    rng = random.Random(5)
    return ingest_messages([request_body(i, 100, rng) for i in range(8)])


def test_lz4_batches_hold_a_level_1_frame_of_the_records(
    messages: list[tuple[bytes, bytes]],
) -> None:
    assert producer_compression(Settings(kafka_compression="lz4")) == "lz4"
    plain = _batch(messages, DefaultRecordBatch.CODEC_NONE)
    compressed = _batch(messages, DefaultRecordBatch.CODEC_LZ4)
    expected = cramjam.lz4.Compressor(level=LZ4_LEVEL, content_checksum=False, block_linked=False)
    expected.compress(plain[RECORDS_OFFSET:])
    assert compressed[RECORDS_OFFSET:] == bytes(expected.finish())
    # aiokafka's default, level 9, makes a different (smaller) frame of the same records.
    default = cramjam.lz4.Compressor(level=9, content_checksum=False, block_linked=False)
    default.compress(plain[RECORDS_OFFSET:])
    assert compressed[RECORDS_OFFSET:] != bytes(default.finish())


def test_lz4_batches_read_back_as_the_messages(messages: list[tuple[bytes, bytes]]) -> None:
    producer_compression(Settings(kafka_compression="lz4"))
    batch = DefaultRecordBatch(_batch(messages, DefaultRecordBatch.CODEC_LZ4))
    assert batch.validate_crc()
    assert [(record.key, record.value) for record in batch] == messages


@pytest.mark.parametrize("codec", ["none", "gzip", "zstd"])
def test_other_codecs_pass_through(codec: str) -> None:
    expected = None if codec == "none" else codec
    assert producer_compression(Settings(kafka_compression=codec)) == expected
