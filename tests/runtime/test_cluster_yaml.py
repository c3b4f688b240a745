from __future__ import annotations

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def test_cluster_yaml_is_a_valid_ray_cluster_config() -> None:
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    # What `ray up` does first: fill in the provider's defaults, then check Ray's JSON schema.
    validate_config(prepare_config(config))
    assert config["head_node_type"] in config["available_node_types"]
    assert any("pip install -e ." in c for c in config["setup_commands"])
