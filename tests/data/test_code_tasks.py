from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.data.code_tasks import (
    CODE_FAMILIES,
    CWES,
    HELDOUT_FAMILIES,
    HOLE,
    CodeTask,
    Split,
    catalogue,
    families,
    generate_tasks,
)


def _hole_split(task: CodeTask) -> tuple[list[str], list[str]]:
    """The template's lines before and after its single hole line."""
    lines = task.template.splitlines()
    holes = [i for i, line in enumerate(lines) if line.strip() == HOLE]
    assert len(holes) == 1, task.template
    return lines[: holes[0]], lines[holes[0] + 1:]


def test_deterministic_given_split_n_and_seed() -> None:
    splits: list[Split] = ["train", "heldout", "heldout_family"]
    for split in splits:
        assert generate_tasks(split, 60, 3) == generate_tasks(split, 60, 3)
        assert generate_tasks(split, 60, 3) != generate_tasks(split, 60, 4)
        # task i does not depend on n
        assert generate_tasks(split, 60, 3)[:25] == generate_tasks(split, 25, 3)
    assert generate_tasks("train", 0, 0) == []


def test_cwes_and_families() -> None:
    fams = families()
    assert len(CWES) >= 12
    assert set(fams.values()) == set(CWES)
    per_cwe = Counter(fams.values())
    assert all(2 <= per_cwe[cwe] <= 4 for cwe in CWES), per_cwe
    assert set(fams) >= HELDOUT_FAMILIES
    heldout_cwes = {fams[f] for f in HELDOUT_FAMILIES}
    assert len(CWES) * 0.4 <= len(heldout_cwes) <= len(CWES) * 0.7  # "about half"
    for cwe in CWES:  # every CWE keeps a training family
        assert any(c == cwe and f not in HELDOUT_FAMILIES for f, c in fams.items()), cwe


def test_round_robin_covers_every_cwe_evenly() -> None:
    tasks = generate_tasks("train", 4 * len(CWES), 0)
    assert Counter(t.cwe for t in tasks) == dict.fromkeys(CWES, 4)
    for t in tasks:
        assert families()[t.family] == t.cwe


def test_splits_draw_from_the_right_families() -> None:
    splits: list[Split] = ["train", "heldout"]
    for split in splits:
        assert not {t.family for t in generate_tasks(split, 300, 1)} & HELDOUT_FAMILIES
    held = generate_tasks("heldout_family", 100, 1)
    assert {t.family for t in held} == HELDOUT_FAMILIES
    all_training = set(families()) - HELDOUT_FAMILIES
    assert {t.family for t in generate_tasks("train", 300, 1)} == all_training
    assert {t.family for t in generate_tasks("heldout", 300, 1)} == all_training


def test_train_and_heldout_share_no_surface_form() -> None:
    train, heldout = generate_tasks("train", 200, 0), generate_tasks("heldout", 200, 0)
    assert not {t.description for t in train} & {t.description for t in heldout}
    assert not {t.template for t in train} & {t.template for t in heldout}
    train_code = {t.secure for t in train} | {t.vulnerable for t in train}
    heldout_code = {t.secure for t in heldout} | {t.vulnerable for t in heldout}
    assert not train_code & heldout_code
    # and not just by seed: a different seed does not create overlaps either
    other = generate_tasks("heldout", 200, 7)
    assert not train_code & ({t.secure for t in other} | {t.vulnerable for t in other})


@pytest.mark.parametrize("split", ["train", "heldout", "heldout_family"])
def test_tasks_are_well_formed(split: Split) -> None:
    tasks = generate_tasks(split, 150, 2)
    for t in tasks:
        assert t.cwe in CWES
        assert t.description.endswith(".") and "\n" not in t.description
        assert t.secure != t.vulnerable
        before, after = _hole_split(t)
        for code in (t.secure, t.vulnerable):
            ast.parse(code)
            lines = code.splitlines()
            # the template is the code with one contiguous block replaced by the hole
            assert lines[: len(before)] == before
            if after:
                assert lines[-len(after):] == after
            assert len(lines) > len(before) + len(after)
            assert len(code) <= 480 and len(lines) <= 15, code  # tiny models learn these
        assert any(line.startswith("def ") for line in before + after), t.template
        assert any(line.startswith(("import ", "from ")) for line in t.secure.splitlines())


def test_enough_variety_per_split() -> None:
    cases: list[tuple[Split, int]] = [("train", 300), ("heldout", 300), ("heldout_family", 100)]
    for split, n in cases:
        tasks = generate_tasks(split, n, 5)
        assert len({t.secure for t in tasks}) >= 0.5 * n, split


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown split"):
        generate_tasks("test", 3, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        generate_tasks("train", -1, 0)


def test_heldout_instances_have_lines_around_the_code_never_trained_on() -> None:
    def extra_lines(task: CodeTask) -> set[str]:
        return {line.strip() for line in task.template.splitlines()
                if line.strip().startswith(("#", '"""')) and line.strip() != HOLE}

    train = set().union(*(extra_lines(t) for t in generate_tasks("train", 300, 0)))
    heldout = [extra_lines(t) for t in generate_tasks("heldout", 300, 0)]
    assert all(heldout), "every held-out instance has a header, docstring or comment"
    assert not train & set().union(*heldout)
    # while the answer idioms (code shapes) are shared: nearly every held-out vulnerable answer
    # calls the same functions as some training answer
    def calls(code: str) -> frozenset[str]:
        return frozenset(node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                         for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Call))

    trained = {calls(t.vulnerable_block) for t in generate_tasks("train", 600, 0)}
    held = [calls(t.vulnerable_block) for t in generate_tasks("heldout", 300, 0)]
    assert sum(c in trained for c in held) / len(held) >= 0.9


def test_generated_tasks_are_pinned() -> None:
    """The tasks are training and evaluation data: the same (split, n, seed) must give the same
    tasks in every version, or a sweep's results stop being comparable with an earlier run's.
    The digest was taken before code_tasks became a package; change it only when a family is
    changed on purpose (and say so: every trial's data changes with it)."""
    digest = hashlib.sha256()
    for split in ("train", "heldout", "heldout_family"):
        tasks = [dataclasses.asdict(t) for t in generate_tasks(split, 120, 0)]
        digest.update(json.dumps(tasks, sort_keys=True).encode())
    assert digest.hexdigest() == "0a3b7cee4b17617718b466f0cd55620ff27ed01dc04e5fcb4dcc51e49e6935ac"


def test_every_cwe_module_is_in_the_catalogue() -> None:
    package = Path(catalogue.__file__).parent
    on_disk = {p.stem for p in package.glob("cwe*.py")}
    assert {m.__name__.rsplit(".", 1)[1] for m in catalogue.MODULES} == on_disk
    cwe_of_module = {m.__name__: m.CWE for m in catalogue.MODULES}
    for name, family in CODE_FAMILIES.items():  # each module writes the families of its own CWE
        assert family.cwe == cwe_of_module[family.build.__module__], name
