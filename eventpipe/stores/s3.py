"""Objects in an S3 bucket (MinIO, AWS or any S3 endpoint) through the ``minio`` client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import urllib3
from minio import Minio
from minio.error import S3Error

from eventpipe.object_store import ObjectInfo, ObjectNotFound, Readable
from eventpipe.settings import Settings

# put_object holds about two parts in memory (the part and its look-ahead copy), so the part
# size bounds the upload's memory. S3 needs at least 5 MiB for every part but the last.
PART_SIZE = 16 * 1024 * 1024
_MISSING = frozenset({"NoSuchKey", "NoSuchObject"})


class S3Store:
    def __init__(self, client: Minio, bucket: str, part_size: int = PART_SIZE) -> None:
        self.client = client
        self.bucket = bucket
        self.part_size = part_size

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key or None,
            secret_key=settings.s3_secret_key or None,
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=_http_client(),
        )
        store = cls(client, settings.s3_bucket)
        store.ensure_bucket()
        return store

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            try:
                self.client.make_bucket(self.bucket)
            except S3Error as exc:
                # Another exporter created it between our check and our create.
                if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                    raise

    def put(self, key: str, stream: Readable, content_type: str) -> int:
        counted = _CountingReader(stream)
        # length=-1 makes minio read part by part and upload a multipart object, which S3 only
        # makes visible on completion; minio aborts the upload if reading or uploading fails.
        # One upload thread keeps memory at about two parts.
        self.client.put_object(
            self.bucket,
            key,
            counted,  # type: ignore[arg-type]  # minio only calls read()
            length=-1,
            part_size=self.part_size,
            content_type=content_type,
            num_parallel_uploads=1,
        )
        return counted.size

    def get_bytes(self, key: str) -> bytes:
        response = self._get(key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    def open_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        return _stream_response(self._get(key), chunk_size)

    def _get(self, key: str) -> Any:
        try:
            return self.client.get_object(self.bucket, key)
        except S3Error as exc:
            raise _translate(exc, key) from exc

    def stat(self, key: str) -> ObjectInfo:
        try:
            found = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            raise _translate(exc, key) from exc
        assert found.size is not None and found.last_modified is not None
        return ObjectInfo(key, found.size, found.last_modified)

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key with success, as the protocol promises.
        self.client.remove_object(self.bucket, key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for found in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            if found.object_name is None or found.is_dir:
                continue
            assert found.size is not None and found.last_modified is not None
            yield ObjectInfo(found.object_name, found.size, found.last_modified)

    def presign_get(self, key: str, expires: timedelta, filename: str) -> str | None:
        disposition = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
        return self.client.presigned_get_object(
            self.bucket,
            key,
            expires=expires,
            response_headers={"response-content-disposition": disposition},
        )


class _CountingReader:
    """Counts the bytes minio pulls, which is the size of the object it publishes."""

    def __init__(self, stream: Readable) -> None:
        self.stream = stream
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self.stream.read(size)
        self.size += len(chunk)
        return chunk


def _stream_response(response: Any, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from response.stream(chunk_size)
    finally:
        response.close()
        response.release_conn()


def _translate(exc: S3Error, key: str) -> Exception:
    return ObjectNotFound(key) if exc.code in _MISSING else exc


def _http_client() -> urllib3.PoolManager:
    """minio's own client waits up to five minutes for a silent endpoint; a status poll or an
    export must fail within a bounded time instead, and retry later."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=60.0),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        maxsize=16,
    )
