"""The compression of the record batches our Kafka producers send.

aiokafka compresses lz4 at level 9, lz4's high-compression mode, and has no setting for the level
(aiokafka #1028). On the gateway's messages that mode is slow for little gain: 16 messages of 100
events (566 KB) took 4.9 ms to compress at level 9 and 0.35 ms at level 1, shrinking 15.4 and 12.1
times. The gateway spends about 1.5 ms of CPU on a whole 100-event request, so every producer of
ours swaps in a level-1 encoder.

Readers are not affected: an lz4 frame says how to decode it, whatever level made it.

This replaces a module global of aiokafka's record builders, which is not aiokafka's public API.
It stays because it pays for itself (``docs/benchmarks.md``: at least 13% more acknowledged
events/s at 64 connections); aiokafka is pinned in pyproject.toml to the release it was written
against, and tests/unit/test_kafka_compression.py fails when the batches aiokafka builds stop
using it.
"""

from __future__ import annotations

import importlib
from typing import Final

import cramjam

from eventpipe.settings import Settings

LZ4_LEVEL: Final = 1

# Every aiokafka module that builds record batches, in pure Python and compiled (whichever is
# installed), each holding its own reference to the encoder.
_BATCH_BUILDERS: Final = (
    "aiokafka.record.default_records",
    "aiokafka.record.legacy_records",
    "aiokafka.record._crecords.default_records",
    "aiokafka.record._crecords.legacy_records",
)


def lz4_encode(payload: bytes | bytearray | memoryview) -> bytes:
    """An lz4 frame of ``payload`` as Kafka reads it: independent blocks, no content checksum."""
    compressor = cramjam.lz4.Compressor(level=LZ4_LEVEL, content_checksum=False, block_linked=False)
    compressor.compress(payload)
    return bytes(compressor.finish())


def install_level_1_lz4_encoder() -> None:
    """Make aiokafka's record batch builders compress lz4 with :func:`lz4_encode` (level 1) in
    place of their level-9 encoder, in this process. Idempotent."""
    for name in _BATCH_BUILDERS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        # A test checks the batches aiokafka builds, should a release rename the encoder.
        if hasattr(module, "lz4_encode"):
            vars(module)["lz4_encode"] = lz4_encode


def producer_compression(settings: Settings) -> str | None:
    """``settings.kafka_compression`` as aiokafka's producers take it, with lz4 made fast.

    Call it before creating the producer; it is cheap and may be called again.
    """
    codec = settings.kafka_compression_type
    if codec == "lz4":
        install_level_1_lz4_encoder()
    return codec
