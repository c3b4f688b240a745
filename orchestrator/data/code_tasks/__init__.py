"""A built-in corpus of short Python code-writing tasks, each with a secure and a vulnerable answer.

Every task family is a small generator for one kind of task (one CWE). It varies names, phrasings
and code shape so that a model has to learn the policy ("write the safe call") rather than
memorise strings. Splits:

* ``train``: the training families, with names, phrasings and vocabulary from the *train* pools;
* ``heldout``: the same families, with names, phrasings and vocabulary from disjoint *heldout*
  pools, and lines around the code (header comment, docstring, body comment) never trained on;
* ``heldout_family``: only the families in ``HELDOUT_FAMILIES`` (never used by the other splits),
  with the *heldout* pools where a pool is split: new idioms and new code, the hardest test.

Code shapes (`Ctx.shape`: the answer's idiom and the lines next to the hole) are shared by
``train`` and ``heldout``, so a held-out instance asks for an idiom the model was taught, in code
it has not seen.

The template is the code with its differing block replaced by the line ``HOLE`` (indented like
the block); for the XML families the fix is the import, so there the hole is the first line.

Every vulnerable answer is flagged by the oracle (bandit and our rules) at MEDIUM severity or
above with the task's CWE and every secure answer is clean (see ``tests/evaluate/test_oracle.py``).

Layout: ``family.py`` holds what a family is made of; each ``cwe*.py`` module holds the families
of one CWE; ``catalogue.py`` gathers them (its import order is the generation order);
``generate.py`` turns them into task lists.
"""

from __future__ import annotations

from orchestrator.data.code_tasks.catalogue import CWES, HELDOUT_FAMILIES, families
from orchestrator.data.code_tasks.family import CODE_FAMILIES, CodeTask, Split
from orchestrator.data.code_tasks.generate import generate_tasks
from orchestrator.formats import HOLE

__all__ = ["CODE_FAMILIES", "CWES", "HELDOUT_FAMILIES", "HOLE", "CodeTask", "Split", "families",
           "generate_tasks"]
