"""The training architecture, enforced: no hidden state in `train/` (a stage's training session is
passed explicitly), `runtime/` knows nothing of the experiment (its Ray Train workers find a
training method by name in the registry), and every technique names registered methods."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from orchestrator.grid import expand
from orchestrator.safety import TECHNIQUES
from orchestrator.spec import load_sweep
from orchestrator.train import METHODS

PACKAGE = Path(__file__).resolve().parent.parent / "orchestrator"
EXPERIMENT = ("orchestrator.safety", "orchestrator.evaluate", "orchestrator.data")


def imported(source: str) -> set[str]:
    """Every module an import statement names, at the top or inside functions (absolute names)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def experiment_imports(source: str) -> set[str]:
    return {name for name in imported(source)
            if any(name == part or name.startswith(f"{part}.") for part in EXPERIMENT)
            or name in {f"orchestrator.{part.rpartition('.')[2]}" for part in EXPERIMENT}}


def test_the_import_scan_sees_function_level_and_package_imports() -> None:
    source = "def f():\n    from orchestrator.safety.rl import grpo\n\nfrom orchestrator import data\n"
    assert experiment_imports(source) == {"orchestrator.safety.rl", "orchestrator.safety.rl.grpo",
                                          "orchestrator.data"}
    assert experiment_imports("import orchestrator.train.methods\nfrom orchestrator.train import METHODS\n") == set()


@pytest.mark.parametrize("path", sorted((PACKAGE / "runtime").rglob("*.py")), ids=lambda p: p.name)
def test_runtime_imports_nothing_of_the_experiment(path: Path) -> None:
    assert experiment_imports(path.read_text()) == set(), path


def test_no_context_variable_in_train() -> None:
    for path in sorted((PACKAGE / "train").rglob("*.py")):
        source = path.read_text()
        assert "contextvars" not in imported(source), path
        assert not any(isinstance(node, ast.Name | ast.Attribute) and "ContextVar" in ast.unparse(node)
                       for node in ast.walk(ast.parse(source))), path


def test_every_technique_names_registered_training_methods() -> None:
    spec = load_sweep(Path(__file__).resolve().parent.parent / "sweeps" / "smoke.yaml")
    trial = expand(spec)[0]
    expected = {"sft": ("sft",), "sft-post-scratchpad": ("sft",), "rl": ("reward", "grpo"), "dpo": ("dpo",)}
    for name in TECHNIQUES.builtin():
        methods = TECHNIQUES.get(name).methods(trial.model_copy(update={"technique": name}))
        assert methods and all(method in METHODS for method in methods), (name, methods)
        if name in expected:
            assert methods == expected[name], name
    for base in ("sft", "rl", "dpo"):
        adversarial = trial.model_copy(update={"adversarial": trial.adversarial.model_copy(update={"base": base})})
        assert TECHNIQUES.get("adversarial").methods(adversarial) == expected[base]
    assert {"sft", "grpo", "reward", "dpo"} <= set(METHODS.builtin())


def test_a_training_method_must_implement_its_contract() -> None:
    """`TrainingMethod` is abstract: a method missing part of its contract fails when it is
    made (at registration), not halfway through a sweep."""
    from orchestrator.train.methods import TrainingMethod

    class Partial(TrainingMethod):
        def batch(self, job: Any) -> tuple[int, int]:
            return 1, 1

    with pytest.raises(TypeError, match="abstract method"):
        Partial()  # type: ignore[abstract]
