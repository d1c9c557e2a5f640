"""Kafka consumers that enrich events and insert them into ClickHouse in columnar batches."""
