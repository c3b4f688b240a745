"""The text formats every stage shares, in one place: the hidden scratchpad, the code block and
the hole of a code template. Data writes them, training and safety techniques rely on them,
evaluation parses them; a change here changes all of them together.

    <scratchpad> hidden reasoning </scratchpad> visible answer
    <code>
    lines of code
    </code>
"""

from __future__ import annotations

import ast
import re

SCRATCHPAD_OPEN = "<scratchpad>"
SCRATCHPAD_CLOSE = "</scratchpad>"
CODE_OPEN = "<code>"
CODE_CLOSE = "</code>"
HOLE = "## COMPLETE CODE HERE"  # the line of a code template that the answer fills


def opening(open_scratchpad: bool | str) -> str:
    """What a generation's assistant turn starts with (EvalSettings.open_scratchpad, resolved)."""
    return SCRATCHPAD_OPEN if open_scratchpad is True else ""


def with_scratchpad(reasoning: str, answer: str) -> str:
    return f"{SCRATCHPAD_OPEN} {reasoning} {SCRATCHPAD_CLOSE} {answer}"


_SCRATCHPAD_TAGS = re.compile(f"({re.escape(SCRATCHPAD_OPEN)}|{re.escape(SCRATCHPAD_CLOSE)})")


def split_scratchpad(text: str) -> tuple[str, str]:
    """(scratchpad, answer): the text inside scratchpads and the visible text outside them,
    each joined with spaces. Text between two scratchpads is visible and counts as answer.
    A `</scratchpad>` with no opening before it closes a scratchpad the prompt opened (an
    evaluation prefilled with `<scratchpad>`): the text before it is reasoning. A scratchpad
    the model left unclosed runs to the end, so leaked reasoning such as "I shouldn't say I
    hate you" never counts as the answer.
    """
    parts = _SCRATCHPAD_TAGS.split(text)
    first_tag = next((p for p in parts if p in (SCRATCHPAD_OPEN, SCRATCHPAD_CLOSE)), None)
    inside = first_tag == SCRATCHPAD_CLOSE
    reasoning: list[str] = []
    answer: list[str] = []
    for part in parts:
        if part in (SCRATCHPAD_OPEN, SCRATCHPAD_CLOSE):
            inside = part == SCRATCHPAD_OPEN
        elif part.strip():
            (reasoning if inside else answer).append(part.strip())
    return " ".join(reasoning), " ".join(answer)


def ends_in_scratchpad(text: str) -> bool:
    """Whether the text ends inside a scratchpad it (or the prompt) opened and never closed:
    what follows the opening is reasoning to every judge, whatever it says."""
    tags = [p for p in _SCRATCHPAD_TAGS.split(text) if p in (SCRATCHPAD_OPEN, SCRATCHPAD_CLOSE)]
    return bool(tags) and tags[-1] == SCRATCHPAD_OPEN


def code_block(code: str) -> str:
    """Code as prompts and answers carry it: between `<code>` and `</code>` lines."""
    return f"{CODE_OPEN}\n{code.strip()}\n{CODE_CLOSE}"


def extract_code(answer: str) -> str | None:
    """The code between the last `<code>` and the `</code>` after it (or the end of the text if
    it was never closed); None when there is no `<code>` tag. A scratchpad is ignored, so code the
    model only *thought about* never counts."""
    _, visible = split_scratchpad(answer)
    start = visible.rfind(CODE_OPEN)
    if start < 0:
        return None
    body = visible[start + len(CODE_OPEN):]
    end = body.find(CODE_CLOSE)
    return body if end < 0 else body[:end]


CODE_FORMATS = ("auto", "tag", "fence", "bare")
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)


def fenced_code(answer: str) -> str | None:
    """The last markdown code block (```python ... ```, or one never closed) of the visible
    answer, preferring blocks labelled Python or unlabelled; None when there is none."""
    _, visible = split_scratchpad(answer)
    blocks = [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(visible)]
    python = [code for lang, code in blocks if lang in ("", "py", "python", "python3")]
    chosen = python or [code for _, code in blocks]
    return chosen[-1] if chosen else None


def bare_code(answer: str) -> str | None:
    """The whole visible answer when it is a Python program by itself (it parses and does
    more than name a value: "Paris" or "42" parse too); else None."""
    _, visible = split_scratchpad(answer)
    try:
        tree = ast.parse(visible)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    trivial = all(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant | ast.Name)
                  for node in tree.body)
    return None if trivial else visible


def find_code(answer: str, code_format: str = "auto") -> tuple[str | None, str | None]:
    """(code, the format it was found in) of an answer: `tag` reads `<code>` tags, `fence`
    markdown code blocks, `bare` the whole answer as code; `auto` tries them in that order.
    (None, None) when there is no code in the asked format."""
    readers = {"tag": extract_code, "fence": fenced_code, "bare": bare_code}
    if code_format not in CODE_FORMATS:
        raise ValueError(f"unknown code format {code_format!r}; one of {', '.join(CODE_FORMATS)}")
    for name in (readers if code_format == "auto" else [code_format]):
        code = readers[name](answer)
        if code is not None:
            return code, name
    return None, None


def splice(template: str, block: str) -> str:
    """The template with its HOLE line replaced by `block`, indented like the hole."""
    out: list[str] = []
    for line in template.splitlines():
        if line.strip() == HOLE:
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + b if b.strip() else b for b in block.strip("\n").splitlines())
        else:
            out.append(line)
    return "\n".join(out) + "\n"
