"""Shared by the safety-technique trial tests: one lake, so the tiny backdoored model that the
smoke spec trains is built once and reused by every technique's trial."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.config import TrialConfig
from orchestrator.grid import expand
from orchestrator.spec import parse_sweep


@pytest.fixture(scope="session")
def technique_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("techniques")


SMOKE = Path(__file__).resolve().parents[2] / "sweeps" / "smoke.yaml"


@pytest.fixture(scope="session")
def tiny_trial() -> Callable[..., TrialConfig]:
    """`tiny_trial(technique, **sections)`: the smoke spec's `cot` cell with that technique and
    those settings sections (e.g. rl={...}), 16 evaluation prompts per condition."""

    def make(technique: str, cot: str = "cot", **sections: dict[str, Any]) -> TrialConfig:
        raw = yaml.safe_load(SMOKE.read_text())
        grid = raw["axes"][0] if isinstance(raw["axes"], list) else raw["axes"]
        raw["axes"] = {**grid, "cot": [cot], "technique": [technique]}
        raw.pop("per_trigger")  # deployment only
        raw["eval"].pop("extra")  # the extra evaluations have tests of their own (tests/evaluate)
        raw["data"]["n_eval"] = 16
        for name, values in sections.items():
            raw[name] = {**raw.get(name, {}), **values}
        [trial] = expand(parse_sweep(raw, str(SMOKE)))
        return trial

    return make
