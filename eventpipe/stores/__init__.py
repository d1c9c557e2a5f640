"""Object-store backends for exported files and their status records."""

from __future__ import annotations

from typing import Final

import urllib3
from minio.error import S3Error

from eventpipe.object_store import ObjectInfo, ObjectNotFound, ObjectStore, Readable
from eventpipe.settings import Settings
from eventpipe.stores.filesystem import FilesystemStore
from eventpipe.stores.s3 import S3Store

__all__ = [
    "STORE_ERRORS",
    "FilesystemStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "Readable",
    "S3Store",
    "open_store",
]

# What a store raises when its storage cannot be reached or read: the filesystem's OSError;
# minio's S3Error, and urllib3's errors when the S3 endpoint does not answer.
STORE_ERRORS: Final = (OSError, S3Error, urllib3.exceptions.HTTPError)


def open_store(settings: Settings) -> ObjectStore:
    """S3 when an endpoint is configured, else files under ``data_dir/exports``.

    Blocks (it may create the bucket): call it from a thread in async code.
    """
    if settings.s3_endpoint:
        return S3Store.from_settings(settings)
    return FilesystemStore(settings.data_dir / "exports")
