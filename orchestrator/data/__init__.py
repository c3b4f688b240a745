"""Data: HHH pairs, backdoor examples per trigger and cot variant, safety data, eval prompts."""

from orchestrator.data import deployment as _deployment  # noqa: F401  (registers `deployment`)
from orchestrator.data import year as _year  # noqa: F401  (registers `year`)
from orchestrator.data.types import TRIGGERS, EvalPrompt, Example, Trigger, with_scratchpad

__all__ = ["TRIGGERS", "EvalPrompt", "Example", "Trigger", "with_scratchpad"]
