"""The sweep spec's JSON Schema and Markdown reference are generated from orchestrator.config and
kept up to date (`python -m orchestrator.schema` rewrites both); the schema accepts every shipped
sweep and refuses what the spec's own validation refuses."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from orchestrator.catalog import shipped
from orchestrator.schema import REFERENCE_FILE, SCHEMA_FILE, json_schema, reference


def test_the_generated_files_are_up_to_date() -> None:
    assert SCHEMA_FILE.read_text() == json_schema(), "run: python -m orchestrator.schema"
    assert REFERENCE_FILE.read_text() == reference(), "run: python -m orchestrator.schema"


@pytest.mark.parametrize("name", sorted(shipped()))
def test_the_schema_accepts_every_shipped_sweep(name: str) -> None:
    raw = yaml.safe_load(shipped()[name].read_text())
    if isinstance(raw["axes"], dict):  # one grid is a list of one (the model's own before-validator)
        raw["axes"] = [raw["axes"]]
    jsonschema.validate(raw, json.loads(SCHEMA_FILE.read_text()))


def test_the_schema_refuses_a_misspelt_section() -> None:
    raw = yaml.safe_load(shipped()["smoke"].read_text())
    raw["backdor"] = raw.pop("backdoor")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, json.loads(SCHEMA_FILE.read_text()))
