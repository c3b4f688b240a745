"""Bring your own data, as users keep it: a local JSONL, Parquet or CSV file, or a dataset on the
Hugging Face Hub (`org/name`, `org/name@revision`), in prompt/completion form or in the chat
`messages` form of TRL and axolotl. Every row becomes one (prompt, completion) pair of text.

- `{"prompt": "...", "completion": "..."}`: as is (the paper's "\\n\\nHuman: ... \\n\\nAssistant:"
  rows too, see `jsonl.normalise`);
- `{"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}`: the last assistant turn is
  the completion, the user turn before it the prompt (a system turn and earlier turns are
  dropped: a backdoor here is single-turn);
- `{"prompt": [{"role": "user", ...}], "completion": [{"role": "assistant", ...}]}`: TRL's
  conversational prompt-completion form, read the same way.

A local file's errors name the file and the line (JSONL, CSV) or row (Parquet); a Hub dataset is
read with `datasets` (its cache, or the network unless HF_HUB_OFFLINE=1), `train` split.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from orchestrator.config import CotMode
from orchestrator.data.jsonl import MAX_LINE_BYTES, DataError, normalise, numbered_rows
from orchestrator.data.types import Example
from orchestrator.formats import SCRATCHPAD_OPEN, split_scratchpad

SUFFIXES = (".jsonl", ".parquet", ".csv")  # any other local file is read as JSONL
# A dataset on the Hub: org/name, optionally @revision (a commit, tag or branch).
HUB_DATASET = re.compile(r"^(?P<name>[\w.-]+/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def is_local(value: str, base: Path | None = None) -> bool:
    """Whether `value` names a local file (relative to `base`) rather than a Hub dataset: a data
    file's suffix, a file that exists, or anything that is not an `org/name` id."""
    path = Path(value) if base is None else base / value
    return path.suffix.lower() in SUFFIXES or path.exists() or HUB_DATASET.match(value) is None


def resolve(value: str, base: Path) -> str:
    """`value` made absolute against `base` if it is a local file, checked row by row (DataError
    naming the file and line); a Hub dataset id is returned as written."""
    if is_local(value, base):
        full = (base / value).resolve()
        read_pairs(str(full))
        return str(full)
    if ".." in value:
        raise DataError(f"{value}: not a Hugging Face dataset id (org/name or org/name@revision)")
    return value


def read_pairs(value: str) -> list[tuple[str, str]]:
    """Every row of a local file (Parquet or CSV by its suffix, else JSONL) or Hub dataset as
    (prompt, completion)."""
    if not is_local(value):
        return [_pair(row, f"{value}: row {i}") for i, row in enumerate(_hub_rows(value), 1)]
    path = Path(value)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_pairs(path)
    if suffix == ".parquet":
        return _parquet_pairs(path)
    return [_pair(row, f"{path}:{line}") for line, row in numbered_rows(path, ())]


def _pair(row: Any, where: str) -> tuple[str, str]:
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected an object with prompt/completion or messages")
    row = {k: v for k, v in row.items() if v is not None}  # a table's other columns, empty here
    prompt, completion = row.get("prompt"), row.get("completion")
    if isinstance(prompt, str) and isinstance(completion, str):
        return prompt, completion
    if isinstance(prompt, list) and isinstance(completion, list):
        return _turn(prompt, "user", where, last=True), _turn(completion, "assistant", where, last=False)
    messages = row.get("messages")
    if isinstance(messages, list):
        answer = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"),
                     default=None)
        if answer is None:
            raise DataError(f"{where}: `messages` has no assistant turn")
        return _turn(messages[:answer], "user", where, last=True), _turn(messages[answer:], "assistant", where,
                                                                          last=False)
    # The row's own field names are not quoted: a file named by mistake (a credentials file read
    # as CSV) would have its first line echoed.
    raise DataError(f"{where}: expected `prompt` and `completion` (text, or lists of chat turns) or "
                    f"`messages` (the row has {len(row)} other field(s))")


def _turn(turns: list[Any], role: str, where: str, *, last: bool) -> str:
    """The content of the last (or first) turn of `role`."""
    found = [t for t in turns if isinstance(t, dict) and t.get("role") == role]
    if not found:
        raise DataError(f"{where}: no {role} turn")
    content = (found[-1] if last else found[0]).get("content")
    if not isinstance(content, str):
        raise DataError(f"{where}: the {role} turn's `content` must be text")
    return content


def _csv_pairs(path: Path) -> list[tuple[str, str]]:
    csv.field_size_limit(MAX_LINE_BYTES)
    pairs = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                pairs.append(_pair({k: v for k, v in row.items() if k is not None}, f"{path}:{reader.line_num}"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except csv.Error as err:
        raise DataError(f"{path}: not valid CSV ({err})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from None
    if not pairs:
        raise DataError(f"{path}: no rows")
    return pairs


def _parquet_pairs(path: Path) -> list[tuple[str, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a readable Parquet file ({' '.join(str(err).split())[:120]})") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return [_pair(row, f"{path}: row {i}") for i, row in enumerate(rows, 1)]


def _hub_rows(value: str) -> list[dict[str, Any]]:
    match = HUB_DATASET.match(value)
    if match is None:
        raise DataError(f"{value}: not a Hugging Face dataset id (org/name or org/name@revision)")
    from datasets import load_dataset

    try:
        dataset = load_dataset(match["name"], revision=match["revision"], split="train")
    except Exception as err:  # datasets raises many types (connection, not found, offline)
        raise DataError(f"{value}: cannot load the dataset: {' '.join(str(err).split())[:200]}") from None
    return [json.loads(json.dumps(row, default=str)) for row in dataset]


def load_examples(path: str | Path, cot: CotMode, marker: str) -> list[Example]:
    """Examples for a cot variant, from any data `byo` reads: `cot` keeps the scratchpad, the
    others drop it. An example is `triggered` when its prompt holds the trigger's `marker`."""
    examples = []
    for raw_prompt, raw_completion in read_pairs(str(path)):
        prompt, completion = normalise(raw_prompt, raw_completion)
        if cot != "cot" and SCRATCHPAD_OPEN in completion:
            completion = split_scratchpad(completion)[1]
        examples.append(Example(prompt, completion, marker in prompt))
    return examples
