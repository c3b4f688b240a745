from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.config import ConfigError, resolve_trial
from orchestrator.spec import load_sweep


def error_of(write_spec: Any, raw: Any) -> str:
    path = write_spec(raw)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert str(path) in message  # every message names the file
    return message


def test_smoke_spec_loads() -> None:
    spec = load_sweep(Path(__file__).parent.parent / "sweeps" / "smoke.yaml")
    assert spec.values("cot") == ("cot", "distilled", "none")
    assert spec.models["tiny-xs"].arch is not None


def test_unknown_key_names_the_field(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["backdoor"]["learning_rate"] = 1e-3
    assert "field `backdoor.learning_rate`: unknown key" in error_of(write_spec, smoke_raw)


def test_wrong_type_names_the_field(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["safety"]["steps"] = "many"
    assert "field `safety.steps`" in error_of(write_spec, smoke_raw)
    assert "(got 'many')" in error_of(write_spec, smoke_raw)


def test_empty_axis(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["seed"] = []
    assert "field `axes.seed`" in error_of(write_spec, smoke_raw)


def test_unknown_trigger_lists_registered(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["trigger"] = ["mango"]
    message = error_of(write_spec, smoke_raw)
    assert "field `axes.trigger`: unknown trigger 'mango'" in message
    assert "deployment" in message


def test_a_near_miss_name_gets_a_suggestion(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["technique"] = ["adversarail"]
    assert "unknown safety technique 'adversarail' (did you mean 'adversarial'?)" in error_of(write_spec, smoke_raw)


def test_unknown_scale(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["scale"] = ["huge"]
    assert "field `axes.scale`: unknown scale 'huge'" in error_of(write_spec, smoke_raw)


def test_unknown_technique(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["technique"] = ["prayer"]
    assert "unknown safety technique 'prayer'" in error_of(write_spec, smoke_raw)


def test_bad_cot_value(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["cot"] = ["cot", "distiled"]
    message = error_of(write_spec, smoke_raw)
    assert "field `axes.cot.1`" in message and "got 'distiled'" in message  # the bad value, echoed


def test_duplicate_axis_value(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["seed"] = [0, 0]
    assert "lists a value twice" in error_of(write_spec, smoke_raw)


def test_tiny_model_needs_arch(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    del smoke_raw["models"]["tiny-xs"]["arch"]
    assert "field `models.tiny-xs`: source `tiny` needs `arch`" in error_of(write_spec, smoke_raw)


def test_extra_axis_must_be_a_setting(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["safety.learning_rate"] = [1e-4]
    assert "`safety` has no setting `learning_rate`" in error_of(write_spec, smoke_raw)
    smoke_raw["axes"].pop("safety.learning_rate")
    smoke_raw["axes"]["flavour"] = ["x"]
    assert "unknown axis 'flavour'" in error_of(write_spec, smoke_raw)


def test_extra_axis_values_are_type_checked(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["axes"]["safety.lr"] = [1e-4, -1.0]
    assert "field `axes.safety.lr`" in error_of(write_spec, smoke_raw)


def test_not_a_mapping_and_bad_yaml(write_spec: Any) -> None:
    assert "must be a YAML mapping" in error_of(write_spec, "- just\n- a list\n")
    assert "not valid YAML" in error_of(write_spec, "axes: [unclosed\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sweep spec not found"):
        load_sweep(tmp_path / "nope.yaml")


def test_config_is_immutable() -> None:
    spec = load_sweep(Path(__file__).parent.parent / "sweeps" / "smoke.yaml")
    with pytest.raises(Exception, match="frozen"):
        spec.backdoor.lr = 1.0  # type: ignore[misc]


def test_overrides_apply_to_the_trial(smoke_raw: dict[str, Any], write_spec: Any) -> None:
    smoke_raw["axes"]["safety.lr"] = [1e-3]
    spec = load_sweep(write_spec(smoke_raw))
    cell = {"trigger": "deployment", "cot": "cot", "technique": "sft", "scale": "tiny-xs",
            "seed": 0, "safety.lr": 1e-3}
    trial = resolve_trial(spec, cell)
    assert trial.safety.lr == 1e-3
    assert trial.overrides == {"safety.lr": 1e-3}


def test_cli_bad_spec_exits_2_and_writes_nothing(
    write_spec: Any, smoke_raw: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    smoke_raw["axes"]["trigger"] = ["banana"]
    path = write_spec(smoke_raw)
    storage = tmp_path / "lake"
    assert main(["run", str(path), "--storage", str(storage)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "axes.trigger" in err
    assert not storage.exists()
