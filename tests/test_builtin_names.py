"""No built-in technique or trigger name is written outside the module that registers it: the
rest of the package reads what techniques and triggers declare (training methods, sections,
evaluation conditions), so a plugin is treated as the built-ins are. Found with `ast`: a string
literal equal to such a name, docstrings aside.

Allowed, and why:
- section names that equal a technique's name (`rl`, `adversarial` are also settings sections):
  in a technique's `sections` and in `config.SWEEPABLE_SECTIONS`;
- `config.AdversarialSettings.base = "rl"`: a setting's default names a technique; config, the
  ground floor, cannot ask the registry;
- `sft` is not checked: it is also the name of the SFT training method (`methods(trial)`), which
  train/, runtime/ and the planner's cost models name.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from orchestrator.data import TRIGGERS
from orchestrator.safety import TECHNIQUES

PACKAGE = Path(__file__).resolve().parent.parent / "orchestrator"
SECTION_LISTS = {"sections", "SWEEPABLE_SECTIONS"}  # assignments whose strings are section names
DEFAULTS = {("config.py", "AdversarialSettings", "base")}  # (file, class, field) of allowed defaults
ALSO_A_METHOD = {"sft"}


def builtin_names() -> dict[str, Path]:
    """Each built-in technique or trigger name -> the file of the module that registers it."""
    owners = {}
    for registry in (TECHNIQUES, TRIGGERS):
        for name in registry.builtin():
            module = type(registry.get(name)).__module__
            owners[name] = Path(sys.modules[module].__file__ or "")
    return {name: path for name, path in owners.items() if name not in ALSO_A_METHOD}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _allowed(tree: ast.AST, filename: str) -> set[int]:
    """Constants that are section names or allowed defaults."""
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id in SECTION_LISTS for t in targets):
                allowed |= {id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None
                        and (filename, node.name, stmt.target.id) in DEFAULTS):
                    allowed.add(id(stmt.value))
    return allowed


def written_names(source: str, filename: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of each string literal in `source` that is one of `names`, less docstrings
    and the allowed section names and defaults."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _allowed(tree, filename)
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
            and id(node) not in skip)


def test_no_built_in_name_is_written_outside_its_module() -> None:
    owners = builtin_names()
    assert {"rl", "adversarial", "sft-post-scratchpad", "deployment", "year"} <= set(owners)
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        names = {name for name, owner in owners.items() if owner.resolve() != path.resolve()}
        found += [f"{path.relative_to(PACKAGE.parent)}:{line}: {name!r}"
                  for line, name in written_names(path.read_text(), path.name, names)]
    assert found == []


def test_the_scan_finds_a_name_and_skips_docstrings_and_sections() -> None:
    source = '''"""The `rl` technique."""
class Technique:
    """rl"""
    sections = ("rl", "adversarial")

def f(trial):
    uses_rl = trial.technique == "rl" or trial.trigger in ("year",)
    return {"deployment": 2}
'''
    assert written_names(source, "x.py", {"rl", "adversarial", "year", "deployment"}) == [
        (7, "rl"), (7, "year"), (8, "deployment")]
    default = 'class AdversarialSettings:\n    base: str = "rl"\n'
    assert written_names(default, "config.py", {"rl"}) == []
    assert written_names(default, "spec.py", {"rl"}) == [(2, "rl")]
