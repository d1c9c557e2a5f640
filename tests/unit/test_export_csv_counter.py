"""Row counting on ClickHouse CSV bytes, however the stream is cut into chunks."""

from __future__ import annotations

import pytest

from exporter.csv_stream import CsvRowCounter

# Three records; the second holds a quoted line break, a doubled quote and a comma.
CSV = b'"a",1,\n"b ""x""\nsecond line, still b",2,"{""k"":1}"\n"c",,\n'


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, len(CSV)])
def test_counts_records_not_line_breaks(chunk_size: int) -> None:
    counter = CsvRowCounter()
    for start in range(0, len(CSV), chunk_size):
        counter.feed(CSV[start : start + chunk_size])
    assert counter.rows == 3
    assert not counter.inside_quotes


def test_a_stream_cut_inside_a_quoted_field_is_detected() -> None:
    counter = CsvRowCounter()
    counter.feed(CSV[: CSV.index(b"second")])
    assert counter.rows == 1
    assert counter.inside_quotes
