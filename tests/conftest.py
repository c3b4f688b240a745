from __future__ import annotations

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
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             logging_level="WARNING")
    yield
    ray.shutdown()
