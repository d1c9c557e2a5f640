"""Both object-store backends against real storage: a directory, and S3 served by moto."""

from __future__ import annotations

import io
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest

from eventpipe.export_records import (
    ExportState,
    is_cancelled,
    mark_cancelled,
    new_status,
    owned_statuses,
    read_live_status,
    read_status,
    record_new_export,
    status_key,
)
from eventpipe.settings import Settings
from eventpipe.stores import FilesystemStore, ObjectNotFound, ObjectStore, S3Store, open_store

MIB = 1024 * 1024


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "filesystem":
        return open_store(Settings(data_dir=tmp_path))
    endpoint = request.getfixturevalue("s3_endpoint")
    return open_store(
        Settings(
            s3_endpoint=endpoint,
            s3_bucket=f"exports-{uuid.uuid4().hex[:12]}",
            s3_access_key="test",
            s3_secret_key="test",
        )
    )


class FailingReader:
    """Yields ``good_bytes`` of data, then fails like a query that broke midway."""

    def __init__(self, good_bytes: int) -> None:
        self.left = good_bytes

    def read(self, size: int = -1, /) -> bytes:
        if self.left <= 0:
            raise RuntimeError("the query broke")
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return b"x" * size


def test_put_then_read_back(store: ObjectStore) -> None:
    data = b"scope,obj_name\n" + b'"load:job",x\n' * 1000
    assert store.put("exports/a.csv", io.BytesIO(data), "text/csv") == len(data)

    assert store.get_bytes("exports/a.csv") == data
    assert b"".join(store.open_chunks("exports/a.csv", chunk_size=1000)) == data
    info = store.stat("exports/a.csv")
    assert (info.key, info.size) == ("exports/a.csv", len(data))
    assert [found.key for found in store.list("exports/")] == ["exports/a.csv"]


def test_put_replaces_an_object(store: ObjectStore) -> None:
    store.put("exports/s.json", io.BytesIO(b"old"), "application/json")
    store.put("exports/s.json", io.BytesIO(b"new"), "application/json")
    assert store.get_bytes("exports/s.json") == b"new"


def test_missing_objects(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        store.get_bytes("exports/none.csv")
    with pytest.raises(ObjectNotFound):
        store.open_chunks("exports/none.csv")
    with pytest.raises(ObjectNotFound):
        store.stat("exports/none.csv")
    store.delete("exports/none.csv")  # no error


def test_delete_and_list_by_prefix(store: ObjectStore) -> None:
    for key in ("exports/1.csv", "exports/1.json", "other/2.csv"):
        store.put(key, io.BytesIO(b"x"), "text/plain")
    store.delete("exports/1.csv")
    assert [found.key for found in store.list("exports/")] == ["exports/1.json"]


def test_a_failed_put_publishes_nothing(store: ObjectStore) -> None:
    # 12 MiB before the failure: on S3 that is past the first multipart part.
    if isinstance(store, S3Store):
        store.part_size = 5 * MIB
    with pytest.raises(RuntimeError, match="the query broke"):
        store.put("exports/broken.csv", FailingReader(12 * MIB), "text/csv")
    with pytest.raises(ObjectNotFound):
        store.stat("exports/broken.csv")
    assert list(store.list("")) == []


def test_s3_big_objects_go_up_in_parts_and_failed_uploads_are_aborted(s3_endpoint: str) -> None:
    bucket = f"exports-{uuid.uuid4().hex[:12]}"
    store = S3Store.from_settings(
        Settings(s3_endpoint=s3_endpoint, s3_bucket=bucket, s3_access_key="t", s3_secret_key="t")
    )
    store.part_size = 5 * MIB
    data = bytes(range(256)) * (47 * 1024)  # about 11.8 MiB: three parts
    store.put("exports/big.csv", io.BytesIO(data), "text/csv")
    assert store.get_bytes("exports/big.csv") == data

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{s3_endpoint}",
        aws_access_key_id="t",
        aws_secret_access_key="t",
        region_name="us-east-1",
    )
    etag = s3.head_object(Bucket=bucket, Key="exports/big.csv")["ETag"]
    assert etag.strip('"').endswith("-3")  # a multipart object's ETag counts its parts

    with pytest.raises(RuntimeError):
        store.put("exports/broken.csv", FailingReader(11 * MIB), "text/csv")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_s3_presigned_url_downloads_the_file_under_its_name(s3_endpoint: str) -> None:
    store = S3Store.from_settings(
        Settings(
            s3_endpoint=s3_endpoint,
            s3_bucket=f"exports-{uuid.uuid4().hex[:12]}",
            s3_access_key="t",
            s3_secret_key="t",
        )
    )
    store.put("exports/a.csv", io.BytesIO(b"scope\n"), "text/csv")
    url = store.presign_get("exports/a.csv", timedelta(minutes=5), "my logs.csv")
    assert url is not None
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"scope\n"
        assert "my%20logs.csv" in response.headers["Content-Disposition"]


def test_filesystem_store_has_no_urls_and_keeps_keys_inside_its_root(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "exports")
    store.put("exports/a.csv", io.BytesIO(b"x"), "text/csv")
    assert store.presign_get("exports/a.csv", timedelta(minutes=5), "a.csv") is None
    with pytest.raises(ValueError):
        store.get_bytes("../outside")


def test_reads_are_chunked(store: ObjectStore) -> None:
    store.put("exports/c.csv", io.BytesIO(b"y" * 10_000), "text/csv")
    chunks: Iterator[bytes] = store.open_chunks("exports/c.csv", chunk_size=4096)
    assert [len(chunk) for chunk in chunks][:2] == [4096, 4096]


def test_a_cancel_marker_hides_the_export_from_its_readers(store: ObjectStore) -> None:
    status = new_status(uuid.uuid4(), 1, "a.csv")
    record_new_export(store, status)
    assert read_live_status(store, status.query_id) == status
    assert [s.query_id for s in owned_statuses(store, 1)] == [status.query_id]

    mark_cancelled(store, status.query_id)  # an empty object, on both backends
    assert is_cancelled(store, status.query_id)
    assert read_live_status(store, status.query_id) is None
    assert list(owned_statuses(store, 1)) == []
    assert read_status(store, status.query_id) == status  # until an exporter or sweeper acts


class CountingReads:
    """The store, counting the objects read: what listing one user's requests costs."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.read: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def get_bytes(self, key: str) -> bytes:
        self.read.append(key)
        return self.store.get_bytes(key)


def test_listing_a_users_exports_reads_only_theirs(store: ObjectStore) -> None:
    mine = [new_status(uuid.uuid4(), 1, f"mine-{n}.csv") for n in range(2)]
    theirs = [new_status(uuid.uuid4(), 2, "theirs.csv") for _ in range(20)]
    for status in [*mine, *theirs]:
        record_new_export(store, status)
    # An index entry whose record is gone (never written, or swept since) lists nothing.
    lost = new_status(uuid.uuid4(), 1, "lost.csv")
    record_new_export(store, lost)
    store.delete(status_key(lost.query_id))

    counting = CountingReads(store)
    listed = owned_statuses(counting, 1)  # type: ignore[arg-type]
    assert sorted(status.filename for status in listed) == ["mine-0.csv", "mine-1.csv"]
    # The caller's three index entries were read, none of the other user's twenty records.
    assert len(counting.read) == 3


def test_an_unreadable_or_expired_record_is_left_out_of_its_owners_list(
    store: ObjectStore,
) -> None:
    kept = new_status(uuid.uuid4(), 1, "kept.csv")
    broken = new_status(uuid.uuid4(), 1, "broken.csv")
    ended = new_status(uuid.uuid4(), 1, "ended.csv").ended(ExportState.FINISHED, timedelta(0))
    for status in (kept, broken, ended):
        record_new_export(store, status)
    store.put(status_key(broken.query_id), io.BytesIO(b"{not json"), "application/json")

    assert [status.filename for status in owned_statuses(store, 1)] == ["kept.csv"]
    assert read_live_status(store, broken.query_id) is None
    assert read_live_status(store, ended.query_id) is None
