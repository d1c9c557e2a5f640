"""Object-store backends for exported files and their status records."""

from __future__ import annotations

from eventpipe.object_store import ObjectInfo, ObjectNotFound, ObjectStore, Readable
from eventpipe.settings import Settings
from exporter.stores.filesystem import FilesystemStore
from exporter.stores.s3 import S3Store

__all__ = [
    "FilesystemStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "Readable",
    "S3Store",
    "open_store",
]


def open_store(settings: Settings) -> ObjectStore:
    """S3 when an endpoint is configured, else files under ``data_dir/exports``.

    Blocks (it may create the bucket): call it from a thread in async code.
    """
    if settings.s3_endpoint:
        return S3Store.from_settings(settings)
    return FilesystemStore(settings.data_dir / "exports")
