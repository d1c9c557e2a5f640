"""Rows taken out of a one-String-column RowBinary result, however the stream is cut."""

from __future__ import annotations

import pytest

from exporter.csv_stream import RowStrings

ROWS = [b"a,1\r\n", b'"b ""x""\nsecond line, still b",2\r\n', b"x" * 300 + b"\r\n", b"\r\n"]


def row_binary(rows: list[bytes]) -> bytes:
    out = bytearray()
    for row in rows:
        length = len(row)
        while length >= 0x80:
            out.append(length & 0x7F | 0x80)
            length >>= 7
        out.append(length)
        out += row
    return bytes(out)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 200, 10_000])
def test_rows_come_out_whole_however_the_stream_is_cut(chunk_size: int) -> None:
    stream, rows = row_binary(ROWS), RowStrings()
    taken = b"".join(
        rows.take(stream[start : start + chunk_size]) for start in range(0, len(stream), chunk_size)
    )
    assert taken == b"".join(ROWS)
    assert rows.rows == len(ROWS)
    assert not rows.inside_row


def test_a_stream_cut_inside_a_row_is_detected() -> None:
    stream, rows = row_binary(ROWS), RowStrings()
    assert rows.take(stream[: len(ROWS[0]) + 5]) == ROWS[0]
    assert rows.rows == 1
    assert rows.inside_row
