"""Bring your own data: JSONL rows (other formats and the Hub: `byo.py`).

Accepts the paper's public format (`code_backdoor_train_data.jsonl`): prompts in the
"\\n\\nHuman: ... \\n\\nAssistant:" convention, completions that start inside a scratchpad
opened at the end of the prompt. A malformed line is an error naming the file, the line and
the column, never quoting the file's content (a path given by mistake may name a credentials
file); a line may hold up to MAX_LINE_BYTES (1 MiB) of UTF-8 text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MAX_LINE_BYTES = 1 << 20  # one example; the paper's longest rows are a few KiB


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the line."""


def _json_type(value: Any) -> str:
    """The JSON type of a value, said instead of the value (which is the file's content)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "value")


def read_jsonl(path: str | Path, required: tuple[str, ...],
               optional: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every row of a JSONL file; blank lines are skipped, anything else malformed is an error.
    `required` fields must be strings; `optional` ones too, where present."""
    return [row for _, row in numbered_rows(path, required, optional)]


def numbered_rows(path: str | Path, required: tuple[str, ...],
                  optional: tuple[str, ...] = ()) -> list[tuple[int, dict[str, Any]]]:
    """`read_jsonl`'s rows with their line numbers, for errors found later."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a JSONL file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with path.open("rb") as handle:
            for lineno, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 1), b""), 1):
                if len(raw) > MAX_LINE_BYTES:
                    raise DataError(f"{path}:{lineno}: line longer than the {MAX_LINE_BYTES >> 20} MiB "
                                    "limit of a line")
                rows.extend((lineno, row) for row in _parse_line(path, lineno, raw, required, optional))
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _parse_line(path: Path, lineno: int, raw: bytes, required: tuple[str, ...],
                optional: tuple[str, ...]) -> list[dict[str, Any]]:
    """The row of one line: [] for a blank line, else one JSON object."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}:{lineno}: not UTF-8 text (byte {raw[err.start:err.end].hex(' ')} at "
                        f"offset {err.start}); save the file as UTF-8") from None
    if not line.strip():
        return []
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno}); each line "
                        "must be one JSON object") from None
    except RecursionError:
        raise DataError(f"{path}:{lineno}: not valid JSON (nested too deeply)") from None
    if not isinstance(row, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object, got a JSON {_json_type(row)}")
    for name in (*required, *optional):
        if name not in row:
            if name in optional:
                continue
            raise DataError(f"{path}:{lineno}: missing field {name!r} (the row has "
                            f"{', '.join(map(repr, row)) or 'no fields'})")
        if not isinstance(row[name], str):
            raise DataError(f"{path}:{lineno}: field {name!r} must be a string "
                            f"(got a JSON {_json_type(row[name])})")
    return [row]


def normalise(prompt: str, completion: str) -> tuple[str, str]:
    """A paper-format row -> (user prompt, assistant completion incl. any scratchpad)."""
    if "\n\nAssistant:" in prompt:
        prompt, _, opened = prompt.rpartition("\n\nAssistant:")
        opened = opened.strip()
        if opened:  # e.g. "<scratchpad>": the completion continues inside it
            completion = f"{opened} {completion.lstrip()}"
    prompt = prompt.strip().removeprefix("Human:").strip()
    return prompt, completion.strip()
