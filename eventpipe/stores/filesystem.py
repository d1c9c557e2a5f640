"""Objects as files under one directory: the embedded default when no S3 endpoint is set."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from io import BufferedReader
from pathlib import Path

from eventpipe.object_store import ObjectInfo, ObjectNotFound, Readable

COPY_CHUNK = 1 << 20
# Files being written live here until they are complete; the name cannot be a key's first part
# because keys never start with a dot.
_PARTIAL_DIR = ".partial"


class FilesystemStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        (self.root / _PARTIAL_DIR).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys come from our own code, but a key must never name a file outside the root.
        if not key or key.startswith(".") or not path.is_relative_to(self.root):
            raise ValueError(f"invalid object key {key!r}")
        return path

    def put(self, key: str, stream: Readable, content_type: str) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target's file system, then renamed: rename is atomic, so readers
        # never see a partial file, and a failed write leaves only a temp file we remove.
        fd, partial = tempfile.mkstemp(dir=self.root / _PARTIAL_DIR)
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(COPY_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            os.replace(partial, target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        return size

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def open_chunks(self, key: str, chunk_size: int = COPY_CHUNK) -> Iterator[bytes]:
        try:
            file = self._path(key).open("rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        return _read_chunks(file, chunk_size)

    def stat(self, key: str) -> ObjectInfo:
        try:
            return _info(key, self._path(key).stat())
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        for directory, dirnames, filenames in os.walk(self.root):
            if directory == str(self.root):
                dirnames[:] = [name for name in dirnames if name != _PARTIAL_DIR]
            for name in filenames:
                path = Path(directory, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        yield _info(key, path.stat())
                    except FileNotFoundError:
                        continue  # deleted between the walk and the stat

    def presign_get(self, key: str, expires: timedelta, filename: str) -> str | None:
        return None


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))


def _read_chunks(file: BufferedReader, chunk_size: int) -> Iterator[bytes]:
    with file:
        while chunk := file.read(chunk_size):
            yield chunk
