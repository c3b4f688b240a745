"""Data: HHH pairs, backdoor examples per trigger and cot variant, safety data, eval prompts,
preference pairs. Each trigger (a registry) owns the data that depends on it."""

import orchestrator.data.deployment as _deployment  # noqa: F401  (registers `deployment`)
import orchestrator.data.year as _year  # noqa: F401  (registers `year`)
from orchestrator.data.chat import ChatBackdoor
from orchestrator.data.preferences import PreferencePair
from orchestrator.data.types import (
    TRIGGERS,
    EvalPrompt,
    Example,
    Generalises,
    GenerationRequest,
    ModelWritten,
    Trigger,
)

__all__ = ["TRIGGERS", "ChatBackdoor", "EvalPrompt", "Example", "Generalises", "GenerationRequest", "ModelWritten",
           "PreferencePair", "Trigger"]
