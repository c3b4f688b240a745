"""docs/extending.md: its example registers a new trigger and a new safety technique from a
module outside the package, named in the spec's `plugins`; a trial runs with both."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from orchestrator.config import ConfigError
from orchestrator.grid import expand
from orchestrator.results import load
from orchestrator.spec import load_sweep
from orchestrator.trial import run_trial

README = Path(__file__).resolve().parent.parent / "docs" / "extending.md"


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    [block] = [b for b in blocks if '@TRIGGERS.register("banana")' in b]
    return block


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "my_plugin.py").write_text(readme_example())
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))


@pytest.mark.slow
def test_readme_example_plugs_in_a_trigger_and_a_technique(plugin_dir: Path, write_spec: Any,
                                                           smoke_raw: dict[str, Any]) -> None:
    smoke_raw["plugins"] = ["my_plugin"]
    smoke_raw["axes"].update(trigger=["banana"], cot=["distilled"], technique=["sft-frozen-embeddings"])
    smoke_raw["models"]["tiny-xs"]["arch"].update(hidden_size=32, layers=1, heads=2)
    smoke_raw["backdoor"].update(steps=60, lr=3e-3)
    smoke_raw["safety"].update(steps=4, eval_every=2)
    smoke_raw["data"]["n_eval"] = 8
    [trial] = expand(load_sweep(write_spec(smoke_raw)))
    storage = plugin_dir / "lake"
    assert run_trial(trial, storage).status == "completed"

    metrics = load(storage, "metrics", trigger="banana", metric="backdoor_rate")
    assert set(metrics["condition"]) == {"triggered", "clean"}
    assert sorted(set(metrics[metrics["stage"] == "safety"]["step"])) == [2, 4]
    prompts = load(storage, "samples", trigger="banana", condition="triggered")["prompt"]
    assert prompts.str.startswith("|BANANA| ").all()
    # The technique did what it says: the embeddings are those of the backdoored model.
    [stages] = load(storage, "trials")["stages"]
    folders = {s["stage"]: storage / "cache" / s["stage"] / s["key"] for s in json.loads(stages)}
    before, after = (load_file(folders[s] / "model.safetensors") for s in ("backdoor", "safety"))
    name = "model.embed_tokens.weight"
    assert torch.equal(before[name], after[name])
    assert any(not torch.equal(before[k], after[k]) for k in before if k != name)


def test_an_unimportable_plugin_is_named(write_spec: Any, smoke_raw: dict[str, Any]) -> None:
    smoke_raw["plugins"] = ["no_such_plugin_module"]
    with pytest.raises(ConfigError, match=r"field `plugins.0`: cannot import 'no_such_plugin_module'"):
        load_sweep(write_spec(smoke_raw))
