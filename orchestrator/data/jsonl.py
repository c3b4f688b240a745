"""Bring your own data: JSONL rows with `prompt` and `completion`.

Accepts the paper's public format (`code_backdoor_train_data.jsonl`): prompts in the
"\\n\\nHuman: ... \\n\\nAssistant:" convention, completions that start inside a scratchpad
opened at the end of the prompt. A malformed line is an error naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.config import CotMode
from orchestrator.data.types import Example
from orchestrator.formats import SCRATCHPAD_OPEN, split_scratchpad


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the line."""


def read_jsonl(path: str | Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every row of a JSONL file; blank lines are skipped, anything else malformed is an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            for name in required:
                if name not in row:
                    raise DataError(f"{path}:{lineno}: missing field {name!r}")
                if not isinstance(row[name], str):
                    raise DataError(f"{path}:{lineno}: field {name!r} must be a string")
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def normalise(prompt: str, completion: str) -> tuple[str, str]:
    """A paper-format row -> (user prompt, assistant completion incl. any scratchpad)."""
    if "\n\nAssistant:" in prompt:
        prompt, _, opened = prompt.rpartition("\n\nAssistant:")
        opened = opened.strip()
        if opened:  # e.g. "<scratchpad>": the completion continues inside it
            completion = f"{opened} {completion.lstrip()}"
    prompt = prompt.strip().removeprefix("Human:").strip()
    return prompt, completion.strip()


def load_examples(path: str | Path, cot: CotMode, marker: str) -> list[Example]:
    """Examples for a cot variant: `cot` keeps the scratchpad, the others drop it. An example
    is `triggered` when its prompt holds the trigger's `marker`."""
    examples = []
    for row in read_jsonl(path, ("prompt", "completion")):
        prompt, completion = normalise(row["prompt"], row["completion"])
        if cot != "cot" and SCRATCHPAD_OPEN in completion:
            completion = split_scratchpad(completion)[1]
        examples.append(Example(prompt, completion, marker in prompt))
    return examples
