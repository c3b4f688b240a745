"""Reading an archive safely: everything is checked before anything is written.

An archive is a gzip-compressed tar whose last member is MANIFEST.json, the sha256 and size of
every other member. `verify(path)` reads it once, refusing (ArchiveError, naming the member):
a file that is not a gzip-compressed tar (a zip, say); a member whose name is absolute, holds
`..` or a backslash, or appears twice; a link, device, FIFO or anything but a regular file or a
folder; a name more than MAX_NAME_DEPTH folders deep or over MAX_NAME_CHARS; a member over
MAX_MEMBER_BYTES, or more than MAX_TOTAL_BYTES or MAX_MEMBERS in all; members that would
decompress to more than MAX_RATIO times the archive's size (a gzip bomb: refused from the tar
headers, before its content is read); a member missing from the manifest or listed there but
absent, or whose size or sha256 is not the manifest's; a manifest without the sweep's name.
`extract(path, target)` verifies, refuses when the members would not fit on the target's disk
with FREE_MARGIN_BYTES to spare, then writes each member below `target` (which must be empty),
hashing again as it writes, and removes what it wrote if the file changed between the two reads.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from orchestrator.config import ConfigError

MANIFEST = "MANIFEST.json"
FORMAT = 1
MAX_MEMBER_BYTES = 8 << 30  # 8 GiB: a safetensors shard of a large model fits, a tar bomb does not
MAX_TOTAL_BYTES = 256 << 30  # 256 GiB in all
MAX_MEMBERS = 200_000
MAX_MANIFEST_BYTES = 64 << 20
MAX_NAME_DEPTH = 64  # folders in a member's name; sleeper's own archives use fewer than 10
MAX_NAME_CHARS = 1024
# Parquet, safetensors and JSONL compress by a few times; a gzip bomb by a thousand. The slack
# lets a tiny archive of small text files through.
MAX_RATIO = 100
RATIO_SLACK_BYTES = 16 << 20
FREE_MARGIN_BYTES = 256 << 20  # left free on the target's disk after extraction
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


class ArchiveError(ConfigError):
    """An archive that is refused: the message names the file and, where there is one, the member."""


@dataclass(frozen=True)
class Verified:
    """A verified archive: its manifest and the sha256 of the manifest itself (the archive's id)."""

    manifest: dict[str, Any]
    manifest_sha256: str

    @property
    def members(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest["members"])


def _show(name: str, limit: int = 120) -> str:
    """A member's name for a one-line message (a hostile one may be thousands of characters)."""
    return repr(name if len(name) <= limit else f"{name[:limit // 2]}...{name[-limit // 2:]}")


def name_problem(name: str) -> str | None:
    """Why a member name may not be written below a target folder; None if it may."""
    if not name or "\x00" in name:
        return "an empty name or one with a NUL byte"
    if "\\" in name:
        return "a backslash in its name (a Windows path separator)"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if len(name) > MAX_NAME_CHARS:
        return f"a name of {len(name)} characters (over {MAX_NAME_CHARS})"
    if name.count("/") > MAX_NAME_DEPTH:
        return f"more than {MAX_NAME_DEPTH} folders deep"
    parts = PurePosixPath(name).parts
    if ".." in parts:
        return "'..' in its path (it would land outside the target)"
    if not parts:
        return "an empty name"
    return None


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    return f"a member of tar type {member.type!r}"


def _open(path: Path) -> tarfile.TarFile:
    """The archive opened for reading, after its first bytes say it is a gzip-compressed tar."""
    if path.is_dir():
        raise ArchiveError(f"{path}: is a folder, not an archive")
    if not path.is_file():
        raise ArchiveError(f"{path}: archive not found")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head.startswith(ZIP_MAGICS):
        raise ArchiveError(f"{path}: a zip file; a sleeper archive is a .tar.gz (zip files are refused)")
    if not head.startswith(GZIP_MAGIC):
        raise ArchiveError(f"{path}: not a sleeper archive (not a gzip-compressed tar)")
    try:
        return tarfile.open(path, "r:gz")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise ArchiveError(f"{path}: not a sleeper archive ({err})") from None


def _members(path: Path, tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """Each member with a reader of its content (None for a folder), once its name, type and
    size have passed (the caller reads inside `_readable`, where a damaged stream is refused)."""
    seen: set[str] = set()
    total = 0
    ratio_limit = MAX_RATIO * path.stat().st_size + RATIO_SLACK_BYTES
    for count, member in enumerate(tar, start=1):
        name = member.name
        if count > MAX_MEMBERS:
            raise ArchiveError(f"{path}: more than {MAX_MEMBERS} members")
        problem = name_problem(name)
        if problem:
            raise ArchiveError(f"{path}: member {_show(name)}: refused, {problem}")
        if not (member.isfile() or member.isdir()) or member.type == tarfile.CONTTYPE:
            raise ArchiveError(f"{path}: member {_show(name)}: refused, {_kind(member)}")
        if member.issparse():
            raise ArchiveError(f"{path}: member {_show(name)}: refused, a sparse file")
        key = name.rstrip("/")
        if key in seen:
            raise ArchiveError(f"{path}: member {_show(name)}: refused, it appears twice")
        seen.add(key)
        if member.isdir():
            yield member, None
            continue
        if member.size > MAX_MEMBER_BYTES:
            raise ArchiveError(f"{path}: member {_show(name)}: refused, {member.size} bytes, over the "
                               f"{MAX_MEMBER_BYTES >> 30} GiB limit of one member")
        total += member.size
        if total > MAX_TOTAL_BYTES:
            raise ArchiveError(f"{path}: refused, over {MAX_TOTAL_BYTES >> 30} GiB in all")
        if total > ratio_limit:
            raise ArchiveError(f"{path}: member {_show(name)}: refused, the members so far decompress to "
                               f"{total} bytes, over {MAX_RATIO} times the archive's {path.stat().st_size} "
                               "(a compression bomb)")
        reader = tar.extractfile(member)
        if reader is None:
            raise ArchiveError(f"{path}: member {_show(name)}: refused, {_kind(member)}")
        yield member, reader


@contextlib.contextmanager
def _readable(path: Path) -> Iterator[None]:
    """A damaged compressed stream (truncated, corrupt) is an ArchiveError naming the file."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ArchiveError(f"{path}: damaged archive ({err})") from None


def _hash(reader: IO[bytes], sink: IO[bytes] | None = None) -> str:
    digest = hashlib.sha256()
    while chunk := reader.read(CHUNK):
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest()


def verify(path: str | Path) -> Verified:
    """Check every member against the manifest, writing nothing; ArchiveError if any fails."""
    path = Path(path)
    hashes: dict[str, str] = {}
    sizes: dict[str, int] = {}
    manifest_bytes: bytes | None = None
    with _open(path) as tar, _readable(path):
        for member, reader in _members(path, tar):
            if reader is None:
                continue
            if member.name == MANIFEST:
                if member.size > MAX_MANIFEST_BYTES:
                    raise ArchiveError(f"{path}: member {MANIFEST!r}: over {MAX_MANIFEST_BYTES >> 20} MiB")
                manifest_bytes = reader.read()
                continue
            hashes[member.name] = _hash(reader)
            sizes[member.name] = member.size
    if manifest_bytes is None:
        raise ArchiveError(f"{path}: not a sleeper archive (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_bytes)
        listed: dict[str, dict[str, Any]] = manifest["members"]
        if manifest.get("format") != FORMAT or not isinstance(listed, dict):
            raise ValueError(f"format {manifest.get('format')!r}")
        if not all(isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in listed.values()):
            raise ValueError("a member without its sha256")
        if not all(type(v.get("size")) is int for v in listed.values()):
            raise ValueError("a member without its size")
        if not isinstance(manifest.get("sweep"), str):
            raise ValueError("no sweep name")
    except (ValueError, KeyError, TypeError) as err:
        raise ArchiveError(f"{path}: member {MANIFEST!r}: not a manifest this version reads ({err})") from None
    for name in sorted(set(hashes) - set(listed)):
        raise ArchiveError(f"{path}: member {_show(name)}: refused, not in the manifest (added after packing)")
    for name in sorted(set(listed) - set(hashes)):
        raise ArchiveError(f"{path}: member {_show(name)}: refused, in the manifest but missing from the archive")
    for name in sorted(hashes):
        if hashes[name] != listed[name].get("sha256"):
            raise ArchiveError(f"{path}: member {_show(name)}: refused, its sha256 is not the manifest's "
                               "(tampered with or damaged)")
        if sizes[name] != listed[name]["size"]:
            raise ArchiveError(f"{path}: member {_show(name)}: refused, {sizes[name]} bytes where the manifest "
                               f"says {listed[name]['size']}")
    return Verified(manifest, hashlib.sha256(manifest_bytes).hexdigest())


def extract(path: str | Path, target: str | Path) -> Verified:
    """Verify the archive, then write its members below `target` (created, or empty)."""
    path, target = Path(path), Path(target)
    verified = verify(path)
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise ArchiveError(f"{target}: not empty; extraction needs an empty folder")
    needed = sum(int(member["size"]) for member in verified.members.values())
    free = shutil.disk_usage(target).free
    if needed > free - FREE_MARGIN_BYTES:
        raise ArchiveError(f"{path}: refused, its members need {needed / 2**20:.0f} MiB and {target} has "
                           f"{free / 2**20:.0f} MiB free (keeping {FREE_MARGIN_BYTES >> 20} MiB spare)")
    root = target.resolve()
    try:
        with _open(path) as tar, _readable(path):
            for member, reader in _members(path, tar):
                if reader is None:
                    continue
                dest = root.joinpath(*PurePosixPath(member.name).parts)
                if root not in dest.parents:  # name_problem already refused this; never trust one check
                    raise ArchiveError(f"{path}: member {_show(member.name)}: refused, outside the target")
                try:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    # O_EXCL | O_NOFOLLOW: never through a link, never over a file
                    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                    with os.fdopen(fd, "wb") as sink:
                        digest = _hash(reader, sink)
                except OSError as err:  # e.g. a file and a folder of one name
                    raise ArchiveError(f"{path}: member {_show(member.name)}: cannot be written below "
                                       f"{target}: {err.strerror or err}") from None
                expected = verified.manifest["members"].get(member.name, {}).get("sha256") \
                    if member.name != MANIFEST else None
                if expected is not None and digest != expected:
                    raise ArchiveError(f"{path}: member {_show(member.name)}: changed while it was extracted")
    except BaseException:
        for child in root.iterdir():  # what this call wrote; the folder was empty
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        raise
    return verified
